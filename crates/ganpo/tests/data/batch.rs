//! `[chosen; rejected]` batches (shapes, padding, masks, tensors) and the data config.

use candle_core::{DType, Device};
use ganpo::data::{Batch, DataConfig, TokenizedPair, TruncationMode};

fn pair(prompt: &[u32], chosen: &[u32], rejected: &[u32]) -> TokenizedPair {
    let sequence = |completion: &[u32]| ganpo::data::Sequence {
        input_ids: [prompt, completion].concat(),
        prompt_len: prompt.len(),
    };
    TokenizedPair {
        location: "x:1".into(),
        chosen: sequence(chosen),
        rejected: sequence(rejected),
    }
}

#[test]
fn batches_stack_chosen_then_rejected_and_pad_on_the_right() {
    let pairs = [
        pair(&[10, 11], &[20], &[30, 31, 32]),
        pair(&[12], &[21, 22], &[33]),
    ];
    let batch = Batch::collate(&pairs, 0).unwrap();
    assert_eq!(batch.pairs(), 2);
    assert_eq!(batch.shape(), (4, 5));
    #[rustfmt::skip]
    let ids = [
        10, 11, 20, 0, 0,  // pair 0 chosen
        12, 21, 22, 0, 0,  // pair 1 chosen
        10, 11, 30, 31, 32, // pair 0 rejected
        12, 33, 0, 0, 0,   // pair 1 rejected
    ];
    assert_eq!(batch.input_ids(), ids);
    #[rustfmt::skip]
    let attention = [1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0];
    assert_eq!(batch.attention_mask(), attention);
    #[rustfmt::skip]
    let loss = [0., 0., 1., 0., 0., 0., 1., 1., 0., 0., 0., 0., 1., 1., 1., 0., 1., 0., 0., 0.];
    assert_eq!(batch.loss_mask(), loss);
    assert_eq!(batch.prompt_lens(), [2, 1, 2, 1]);
    assert_eq!(batch.completion_lens(), [1, 2, 3, 1]);
    assert_eq!(batch.row(2), Some(&ids[10..15]));
    assert_eq!(batch.row(4), None);

    let tensors = batch.to_tensors(&Device::Cpu).unwrap();
    assert_eq!(tensors.input_ids.dims(), [4, 5]);
    assert_eq!(tensors.input_ids.dtype(), DType::U32);
    assert_eq!(tensors.attention_mask.dtype(), DType::U32);
    assert_eq!(tensors.loss_mask.dtype(), DType::F32);
    assert_eq!(
        tensors
            .input_ids
            .flatten_all()
            .unwrap()
            .to_vec1::<u32>()
            .unwrap(),
        ids
    );
    assert_eq!(
        tensors
            .loss_mask
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        loss
    );

    // A padding id other than 0 is used as given.
    let batch = Batch::collate(&pairs[..1], 7).unwrap();
    assert_eq!(batch.input_ids(), [10, 11, 20, 7, 7, 10, 11, 30, 31, 32]);
    assert!(Batch::collate(&[], 0).is_err());
}

#[test]
fn data_config_uses_trl_names_and_defaults_and_rejects_the_rest() {
    let config: DataConfig = toml::from_str("").unwrap();
    assert_eq!(config, DataConfig::default());
    assert_eq!(
        (
            config.max_length,
            config.max_prompt_length,
            config.max_completion_length
        ),
        (Some(1024), Some(512), None)
    );
    assert_eq!(config.truncation_mode, TruncationMode::KeepEnd);
    let err = toml::from_str::<DataConfig>("max_seq_length = 10").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `max_seq_length`"),
        "{err}"
    );
    let err = toml::from_str::<DataConfig>("truncation_mode = \"keep_middle\"").unwrap_err();
    assert!(err.to_string().contains("keep_middle"), "{err}");
    for bad in [
        "max_length = 1",
        "max_prompt_length = 0",
        "max_completion_length = 0",
    ] {
        let config: DataConfig = toml::from_str(bad).unwrap();
        assert!(config.validate().is_err(), "{bad}");
    }
}
