//! The demo model learns the structured-output task from scratch: SFT lowers the loss sharply and
//! greedy answers to held-out prompts score well under the rule judge (but need not be perfect).

use candle_core::Device;
use ganpo::data::{DataConfig, PreferenceDataset};
use ganpo::generate::{GenerationConfig, generate};
use ganpo_cli::demo::pairs::{PairConfig, build_pairs, write_jsonl};
use ganpo_cli::demo::sft::{
    SftConfig, demo_model_config, encode_example, init_demo_model, train_sft,
};
use ganpo_cli::demo::task::sample_tasks;
use ganpo_cli::demo::tokenizer::train_tokenizer;
use ganpo_cli::judge::{Judge, StructuredTaskJudge};

#[test]
fn sft_learns_the_task() {
    let train = sample_tasks(1, 2000);
    let corpus: Vec<String> = train
        .iter()
        .flat_map(|t| [t.prompt.clone(), t.answer.clone()])
        .collect();
    let tok = train_tokenizer(&corpus, 400).unwrap();
    let config = demo_model_config(tok.vocab_size(), &tok);
    let model = init_demo_model(config, 3, &Device::Cpu).unwrap();
    let losses = train_sft(
        &model,
        &tok,
        &train,
        SftConfig {
            steps: 300,
            batch_size: 16,
            learning_rate: 3e-3,
            seed: 0,
        },
    )
    .unwrap();
    let (first, last) = (
        losses[0],
        losses[losses.len() - 10..].iter().sum::<f64>() / 10.0,
    );
    assert!(last < 0.3 * first, "loss {first} → {last}");
    let held_out = sample_tasks(99, 24);
    let prompts: Vec<Vec<u32>> = held_out
        .iter()
        .map(|t| {
            encode_example(&tok, t)
                .map(|(ids, n)| ids[..n].to_vec())
                .unwrap()
        })
        .collect();
    let outs = generate(
        &model,
        &tok,
        &prompts,
        &GenerationConfig {
            max_new_tokens: 32,
            ..Default::default()
        },
    )
    .unwrap();
    let mean: f64 = held_out
        .iter()
        .zip(&outs)
        .map(|(t, o)| StructuredTaskJudge.score(&t.prompt, &o.text).score)
        .sum::<f64>()
        / 24.0;
    eprintln!("SFT losses {first:.3} → {last:.3}; held-out judge score {mean:.3}");
    for (t, o) in held_out.iter().zip(&outs).take(4) {
        eprintln!("{:?} → {:?}", t.prompt, o.text);
    }
    assert!(mean > 0.5, "held-out judge score {mean}");

    // On-policy pairs from the SFT model, readable by the training data pipeline.
    let tasks = sample_tasks(7, 16);
    let cfg = PairConfig {
        samples: 4,
        temperature: 1.0,
        max_new_tokens: 32,
        min_gap: 0.1,
        label_noise: 0.0,
        seed: 5,
    };
    let pairs = build_pairs(&model, &tok, &StructuredTaskJudge, &tasks, cfg).unwrap();
    assert_eq!(pairs.records.len() + pairs.ties_skipped, 16);
    assert!(pairs.records.len() >= 8, "{} pairs", pairs.records.len());
    assert!(
        pairs
            .records
            .iter()
            .all(|r| r.score_chosen >= r.score_rejected + 0.1)
    );
    assert_eq!(
        pairs,
        build_pairs(&model, &tok, &StructuredTaskJudge, &tasks, cfg).unwrap(),
        "seeded"
    );
    let noisy = build_pairs(
        &model,
        &tok,
        &StructuredTaskJudge,
        &tasks,
        PairConfig {
            label_noise: 1.0,
            ..cfg
        },
    )
    .unwrap();
    assert_eq!(noisy.flipped, noisy.records.len());
    assert!(
        noisy
            .records
            .iter()
            .all(|r| r.score_chosen < r.score_rejected)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairs.jsonl");
    write_jsonl(&pairs.records, &path).unwrap();
    let data = PreferenceDataset::load(&path, &tok, &DataConfig::default()).unwrap();
    assert_eq!(data.pairs.len(), pairs.records.len());
}
