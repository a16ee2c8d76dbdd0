//! Trainer invariants on a tiny Llama: DPO starts at ln 2, resume reproduces an uninterrupted run,
//! gradient accumulation equals one large batch (GANPO on), optimizers own disjoint parameters, and
//! a tiny learnable task is learned (held-out reward accuracy far above chance) while the
//! discriminator metrics move.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::config::ConfigText;
use common::{fixture, run, run_until};
use ganpo::config::train::TrainConfig;
use ganpo::train::metrics::{Metrics, MetricsLog};
use ganpo::train::setup::{check_output_dir, load_datasets};
use ganpo::train::trainer::Trainer;

fn config(out: &std::path::Path, extra: &str) -> TrainConfig {
    ConfigText::new(out)
        .data(&format!(
            "eval_file = {:?}",
            fixture("train/eval.jsonl").display().to_string()
        ))
        .training("per_device_train_batch_size = 8\nlearning_rate = 1e-3\nlogging_steps = 1\nsave_steps = 0")
        .training(extra)
        .build()
}

const GANPO: &str = "[ganpo]\nlambda = 1.0\n[ganpo.discriminator]\nwidth = 32\ndepth = 1\nheads = 4\nmax_positions = 64\n";

#[test]
fn dpo_starts_at_ln2_with_zero_rewards() {
    let tmp = tempfile::tempdir().unwrap();
    let (steps, _) = run(config(tmp.path(), "max_steps = 1"), None);
    let m = &steps[0];
    assert!(
        (m["loss"] - std::f64::consts::LN_2).abs() < 1e-6,
        "{}",
        m["loss"]
    );
    assert_eq!(m["rewards/chosen"], 0.0);
    assert_eq!(m["rewards/margins"], 0.0);
    assert!(m["grad_norm"] > 0.0);
}

#[test]
fn resume_reproduces_the_uninterrupted_run_with_ganpo() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = config(&tmp.path().join("a"), &format!("max_steps = 6\n{GANPO}"));
    let (full, _) = run(straight, None);
    // Interrupted after step 3 (as by Ctrl-C), then resumed from the checkpoint it wrote.
    let halves = config(&tmp.path().join("b"), &format!("max_steps = 6\n{GANPO}"));
    let (first, _) = run_until(halves, None, Some(3));
    let ckpt = tmp.path().join("b/checkpoint-3");
    let rest = config(&tmp.path().join("b"), &format!("max_steps = 6\n{GANPO}"));
    let (second, _) = run(rest, Some(&ckpt));
    let resumed: Vec<&Metrics> = first.iter().chain(&second).collect();
    assert_eq!(resumed.len(), 6);
    for (i, (a, b)) in full.iter().zip(resumed).enumerate() {
        for key in [
            "loss",
            "grad_norm",
            "adv/loss",
            "disc/loss_chosen",
            "disc/loss_rejected",
        ] {
            assert_eq!(a[key], b[key], "step {}: {key} differs after resume", i + 1);
        }
    }
}

#[test]
fn gradient_accumulation_equals_one_large_batch_with_ganpo() {
    let tmp = tempfile::tempdir().unwrap();
    // Dropout off: the two runs draw dropout masks for differently padded tensors.
    let ganpo = GANPO.replace("heads = 4", "heads = 4\ndropout = 0.0");
    let one = config(
        &tmp.path().join("one"),
        &format!("max_steps = 3\nshuffle = false\n{ganpo}"),
    );
    let mut four = config(
        &tmp.path().join("four"),
        &format!("max_steps = 3\nshuffle = false\n{ganpo}"),
    );
    four.training.per_device_train_batch_size = 2;
    four.training.gradient_accumulation_steps = 4;
    let (a, ta) = run(one, None);
    let (b, tb) = run(four, None);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        for key in [
            "loss",
            "grad_norm",
            "adv/loss",
            "disc/loss_chosen",
            "rewards/margins",
        ] {
            let (x, y) = (x[key], y[key]);
            // Different padding per micro-batch changes f32 summation order only.
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1e-3),
                "step {}: {key} {x} vs {y}",
                i + 1
            );
        }
    }
    for ((name, va), (_, vb)) in ta.policy.vars().iter().zip(tb.policy.vars()) {
        common::assert_close(vb.as_tensor(), va.as_tensor(), 1e-4, name);
    }
}

#[test]
fn gradient_checkpointing_trains_exactly_like_the_plain_run_with_ganpo() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = config(
        &tmp.path().join("plain"),
        &format!("max_steps = 3\n{GANPO}"),
    );
    let checkpointed = config(
        &tmp.path().join("recompute"),
        &format!("max_steps = 3\ngradient_checkpointing = true\n{GANPO}"),
    );
    assert!(checkpointed.training.gradient_checkpointing);
    let (a, ta) = run(plain, None);
    let (b, tb) = run(checkpointed, None);
    assert!(tb.policy.gradient_checkpointing() && !ta.policy.gradient_checkpointing());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        for key in ["loss", "grad_norm", "adv/loss", "disc/loss_chosen"] {
            let (x, y) = (x[key], y[key]);
            assert!(
                (x - y).abs() <= 1e-6 * x.abs().max(1e-3),
                "step {}: {key} {x} vs {y}",
                i + 1
            );
        }
    }
    for ((name, va), (_, vb)) in ta.policy.vars().iter().zip(tb.policy.vars()) {
        common::assert_close(vb.as_tensor(), va.as_tensor(), 1e-6, name);
    }
}

#[test]
fn each_optimizer_updates_only_its_own_parameters() {
    let tmp = tempfile::tempdir().unwrap();
    // A discriminator learning rate of 0: whatever the policy step does, D⁺ and D⁻ must not move.
    let mut cfg = config(tmp.path(), &format!("max_steps = 2\n{GANPO}"));
    cfg.ganpo.as_mut().unwrap().disc_learning_rate = Some(0.0);
    let mut trainer = Trainer::new(cfg.clone()).unwrap();
    trainer.set_total_steps(2);
    let before_disc = trainer.ganpo.as_ref().unwrap().plus.tensors();
    let before_policy: Vec<Vec<f32>> = trainer
        .policy
        .vars()
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let (train, _) = load_datasets(&cfg, &trainer).unwrap();
    let batch = ganpo::data::Batch::collate(train.pairs.iter().take(8), trainer.tokenizer.pad_id())
        .unwrap()
        .to_tensors(&trainer.device)
        .unwrap();
    trainer.step = 1; // past warmup-free step 0 so the policy learning rate is non-zero
    trainer.train_step(&[batch], false).unwrap();
    let after_disc = trainer.ganpo.as_ref().unwrap().plus.tensors();
    for (k, t) in &before_disc {
        if k.ends_with("_u") || k.ends_with("_v") {
            continue; // power-iteration state advances with every training-mode forward, by design
        }
        let a: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = after_disc[k].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b, "discriminator tensor {k} moved");
    }
    let moved = trainer
        .policy
        .vars()
        .iter()
        .zip(&before_policy)
        .filter(|((_, v), before)| {
            v.as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                != **before
        })
        .count();
    assert_eq!(
        moved,
        trainer.policy.vars().len(),
        "every policy parameter is updated"
    );
}

#[test]
fn tiny_task_is_learned_and_discriminator_metrics_move() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &format!("num_train_epochs = 3\n{GANPO}"));
    let mut trainer = Trainer::new(cfg.clone()).unwrap();
    let (_, eval) = load_datasets(&cfg, &trainer).unwrap();
    let before = trainer.evaluate(&eval.unwrap().pairs).unwrap();
    let (steps, mut trainer) = run(cfg.clone(), None);
    let (_, eval) = load_datasets(&cfg, &trainer).unwrap();
    let after = trainer.evaluate(&eval.unwrap().pairs).unwrap();
    // Policy = reference: all rewards are 0, so no pair is ranked correctly yet.
    assert_eq!(before["eval_rewards/accuracies"], 0.0);
    assert!(
        after["eval_rewards/accuracies"] >= 0.8,
        "held-out accuracy {}",
        after["eval_rewards/accuracies"]
    );
    assert!(after["eval_rewards/margins"] > 0.0);
    let (first, last) = (&steps[0], steps.last().unwrap());
    assert!(last["loss"] < first["loss"]);
    for key in ["disc/mean_plus_policy", "disc/loss_chosen", "adv/loss"] {
        assert_ne!(first[key], last[key], "{key} never moved");
    }
    // The final policy is a normal Hugging Face model directory.
    let final_dir = tmp.path().join("final");
    ganpo::model::load_model(
        &final_dir,
        ganpo::model::Trainability::Frozen,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap();
}

#[test]
fn existing_output_is_never_overwritten_silently() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep.txt"), "x").unwrap();
    let cfg = config(tmp.path(), "max_steps = 1");
    let err = check_output_dir(&cfg, false).unwrap_err().to_string();
    assert!(
        err.contains("not empty") && err.contains("--resume"),
        "{err}"
    );
    assert!(check_output_dir(&cfg, true).is_ok());
}

#[test]
fn example_configs_parse_and_bad_keys_are_rejected() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            TrainConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let good = config(tmp.path(), "").to_toml();
    let err = TrainConfig::from_toml(
        &good.replace("[training]", "[training]\nlearning_rat = 1.0"),
        &[],
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("learning_rat"), "{err}");
    let err = TrainConfig::from_toml(&good, &["training.learning_rate=-1".into()], "x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("learning_rate"), "{err}");
}

#[test]
fn non_finite_loss_stops_the_run_without_updating() {
    use candle_core::{Device, Tensor};
    let tmp = tempfile::tempdir().unwrap();
    // A copy of the tiny model with one NaN in the final norm: every logit becomes NaN.
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(fixture("models/llama")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let mut tensors =
        candle_core::safetensors::load(model.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut norm: Vec<f32> = tensors["model.norm.weight"].to_vec1().unwrap();
    norm[0] = f32::NAN;
    tensors.insert(
        "model.norm.weight".into(),
        Tensor::new(norm, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, model.join("model.safetensors")).unwrap();
    let mut cfg = config(&tmp.path().join("out"), "max_steps = 2");
    cfg.training.save_steps = 1;
    cfg.model.path = model;
    let mut trainer = Trainer::new(cfg.clone()).unwrap();
    trainer.set_total_steps(2);
    let (train, _) = load_datasets(&cfg, &trainer).unwrap();
    let before: Vec<f32> = trainer.policy.vars()[0]
        .1
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    std::fs::create_dir_all(&cfg.training.output_dir).unwrap();
    let mut log = MetricsLog::open(
        &cfg.training.output_dir.join("metrics.jsonl"),
        &serde_json::Value::Null,
        None,
    )
    .unwrap();
    let err = trainer
        .run(
            &train,
            None,
            &mut log,
            Arc::new(AtomicBool::new(false)),
            |_, _, _| {},
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("non-finite loss at optimizer step 1") && err.contains("not updated"),
        "{err}"
    );
    let after: Vec<f32> = trainer.policy.vars()[0]
        .1
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(
        before, after,
        "the policy must not be updated by a non-finite step"
    );
    assert!(
        ganpo::train::checkpoint_dir::list_checkpoints(&cfg.training.output_dir)
            .unwrap()
            .is_empty()
    );
}
