//! `compat = "authors"`: the discriminators step only on optimizer steps whose index satisfies
//! `(step + 1) % gradient_accumulation_steps == 0` (the authors' gate, docs/deviations.md row 3),
//! with the gradients of every micro-batch since summed into that one update; those pending
//! gradients survive a checkpoint, so resuming between gated steps is exact.

mod common;

use candle_core::{Device, Tensor, Var};
use common::config::ConfigText;
use common::{run, run_until};
use ganpo::config::train::TrainConfig;
use ganpo::data::{Batch, BatchTensors};
use ganpo::train::metrics::Metrics;
use ganpo::train::setup::load_datasets;
use ganpo::train::trainer::Trainer;

fn config(out: &std::path::Path) -> TrainConfig {
    ConfigText::new(out)
        .training(
            "max_steps = 2\nper_device_train_batch_size = 4\ngradient_accumulation_steps = 2\n\
             learning_rate = 1e-3\nshuffle = false",
        )
        .tables(
            "[ganpo]\nlambda = 1.0\ncompat = \"authors\"\npooling = \"unmasked\"\n\
             [ganpo.discriminator]\nwidth = 32\ndepth = 1\nheads = 4\nmax_positions = 64",
        )
        .build()
}

fn snapshot(vars: &[(String, Var)]) -> Vec<(String, Tensor)> {
    vars.iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().copy().unwrap()))
        .collect()
}

/// Names of the variables whose values differ from `before`.
fn changed(before: &[(String, Tensor)], vars: &[(String, Var)]) -> Vec<String> {
    before
        .iter()
        .zip(vars)
        .filter(|((_, b), (_, v))| {
            let diff = (b - v.as_tensor()).unwrap().abs().unwrap();
            diff.max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0
        })
        .map(|((n, _), _)| n.clone())
        .collect()
}

/// D⁺'s and D⁻'s variables.
fn disc_vars(t: &Trainer) -> [Vec<(String, Var)>; 2] {
    let g = t.ganpo.as_ref().unwrap();
    [g.plus.named_vars(), g.minus.named_vars()]
}

fn disc_snapshot(t: &Trainer) -> [Vec<(String, Tensor)>; 2] {
    disc_vars(t).map(|v| snapshot(&v))
}

/// How many variables of D⁺ and of D⁻ differ from `before`.
fn disc_changed(before: &[Vec<(String, Tensor)>; 2], t: &Trainer) -> [usize; 2] {
    let now = disc_vars(t);
    [0, 1].map(|i| changed(&before[i], &now[i]).len())
}

#[test]
fn discriminators_step_only_on_gated_optimizer_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let mut trainer = Trainer::new(cfg.clone()).unwrap();
    trainer.set_total_steps(2);
    assert!(trainer.authors_compat());
    let (train, _) = load_datasets(&cfg, &trainer).unwrap();
    // One optimizer step = two micro-batches of 4 pairs, in file order.
    let (pad, device) = (trainer.tokenizer.pad_id(), trainer.device.clone());
    let micro = |step: usize| -> Vec<BatchTensors> {
        (0..2)
            .map(|i| {
                let start = step * 8 + i * 4;
                Batch::collate(&train.pairs[start..start + 4], pad)
                    .unwrap()
                    .to_tensors(&device)
                    .unwrap()
            })
            .collect()
    };
    let counts = disc_vars(&trainer).map(|v| v.len());
    assert!(counts[0] > 0 && counts[1] > 0);

    // Step index 0: (0 + 1) % 2 != 0, so the discriminators keep their weights, although their
    // losses were computed (and logged) and the policy moved.
    let disc_before = disc_snapshot(&trainer);
    let policy_before = snapshot(trainer.policy.vars());
    let m = trainer.train_step(&micro(0), false).unwrap();
    assert!(m.contains_key("disc/loss_chosen"), "{m:?}");
    assert_eq!(disc_changed(&disc_before, &trainer), [0, 0]);
    assert!(!changed(&policy_before, trainer.policy.vars()).is_empty());

    // Step index 1: (1 + 1) % 2 == 0, so both discriminators step, with gradients from both
    // optimizer steps' micro-batches: nearly every variable of each moves.
    trainer.train_step(&micro(1), false).unwrap();
    let moved = disc_changed(&disc_before, &trainer);
    for (i, name) in ["D⁺", "D⁻"].iter().enumerate() {
        assert!(
            moved[i] * 2 > counts[i],
            "{name}: only {} of {} variables moved",
            moved[i],
            counts[i]
        );
    }
}

/// With accumulation 2 the gradients of odd steps wait for the next even step's update; a run
/// interrupted after step 3 keeps them in its checkpoint, so resuming there reproduces the
/// uninterrupted run bit for bit.
#[test]
fn resume_with_pending_discriminator_gradients_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let with = |dir: &str| {
        let mut c = config(&tmp.path().join(dir));
        c.training.max_steps = Some(6);
        c.training.logging_steps = 1;
        c.training.save_steps = 0;
        c
    };
    let (full, straight) = run(with("a"), None);
    let (first, _) = run_until(with("b"), None, Some(3));
    let ckpt = tmp.path().join("b/checkpoint-3");
    for file in [
        "disc_chosen_pending.safetensors",
        "disc_rejected_pending.safetensors",
    ] {
        let pending = candle_core::safetensors::load(ckpt.join(file), &Device::Cpu).unwrap();
        let norm: f32 = pending
            .values()
            .map(|t| {
                t.sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            })
            .sum();
        assert!(
            !pending.is_empty() && norm > 0.0,
            "{file}: step 3's gradients must be pending"
        );
    }
    let (second, resumed) = run(with("b"), Some(&ckpt));
    let joined: Vec<&Metrics> = first.iter().chain(&second).collect();
    assert_eq!(joined.len(), 6);
    for (i, (a, b)) in full.iter().zip(joined).enumerate() {
        assert_eq!(a, b, "step {}: metrics differ after resume", i + 1);
    }
    let [a, b] = [disc_vars(&straight), disc_vars(&resumed)];
    for (side_a, side_b) in a.iter().zip(&b) {
        assert!(changed(&snapshot(side_a), side_b).is_empty());
    }
}

/// `disc_steps` has no meaning in the authors' step; setting it is an error naming the key.
#[test]
fn disc_steps_with_authors_compat_is_a_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let text = toml::to_string(&config(tmp.path())).unwrap();
    let err = TrainConfig::from_toml(&text, &["ganpo.disc_steps=2".into()], "test")
        .expect_err("disc_steps = 2 with compat must fail")
        .to_string();
    assert!(
        err.contains("disc_steps") && err.contains("compat"),
        "{err}"
    );
}
