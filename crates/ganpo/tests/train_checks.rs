//! Training refuses what would fail late or silently: a record too long for the models' positions
//! (named by file:line, at load), a reference with another vocabulary (at load), a resume whose
//! config changed (naming the keys), a resume cursor past the end of the data, and a step before
//! the run's length sized the learning-rate schedules.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::config::ConfigText;
use common::fixture;
use ganpo::config::train::TrainConfig;
use ganpo::train::setup::RunSetup;
use ganpo::train::setup::load_datasets;
use ganpo::train::trainer::Trainer;

fn config(out: &Path, train: &Path, extra: &str, sets: &[&str]) -> ganpo::Result<TrainConfig> {
    ConfigText::new(out)
        .train_file(train)
        .training(
            "per_device_train_batch_size = 8\nlearning_rate = 1e-3\nsave_steps = 1\nmax_steps = 2",
        )
        .tables(extra)
        .parse(sets)
}

/// Trains `cfg` to the end (from `resume` if given).
fn train(cfg: &TrainConfig, resume: Option<&Path>) -> ganpo::Result<()> {
    let trainer = match resume {
        None => Trainer::new(cfg.clone())?,
        Some(dir) => Trainer::resume(cfg.clone(), dir)?,
    };
    let setup = RunSetup::around(trainer)?;
    let mut log = setup.open_log(resume.is_some())?;
    let RunSetup {
        mut trainer,
        train: data,
        ..
    } = setup;
    let stop = Arc::new(AtomicBool::new(false));
    trainer.run(&data, None, &mut log, stop, |_, _, _| {})?;
    Ok(())
}

#[test]
fn a_record_longer_than_the_discriminator_positions_fails_at_load_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("train.jsonl");
    let long: Vec<String> = (0..30).map(|i| format!("w{}", i % 90)).collect();
    let lines = [
        r#"{"prompt": "w1 w2", "chosen": " w3", "rejected": " w4"}"#.to_string(),
        format!(
            r#"{{"prompt": "w1 w2", "chosen": " {}", "rejected": " w4"}}"#,
            long.join(" ")
        ),
    ];
    std::fs::write(&data, lines.join("\n")).unwrap();
    let ganpo =
        "[ganpo]\n[ganpo.discriminator]\nwidth = 32\ndepth = 1\nheads = 4\nmax_positions = 16\n";
    let cfg = config(&tmp.path().join("out"), &data, ganpo, &[]).unwrap();
    let trainer = Trainer::new(cfg.clone()).unwrap();
    let err = load_datasets(&cfg, &trainer).unwrap_err().to_string();
    assert!(
        err.contains("train.jsonl:2")
            && err.contains("ganpo.discriminator.max_positions (16)")
            && err.contains("data.max_length"),
        "{err}"
    );
}

#[test]
fn a_reference_with_another_vocabulary_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture("models/llama");
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), other.join(f)).unwrap();
    }
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    json["vocab_size"] = 120.into();
    std::fs::write(other.join("config.json"), json.to_string()).unwrap();
    let device = candle_core::Device::Cpu;
    let mut tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &device).unwrap();
    for (name, t) in tensors.iter_mut() {
        if name.contains("embed_tokens") || name.contains("lm_head") {
            let extra = t.narrow(0, 0, 24).unwrap();
            *t = candle_core::Tensor::cat(&[&*t, &extra], 0).unwrap();
        }
    }
    candle_core::safetensors::save(&tensors, other.join("model.safetensors")).unwrap();
    let set = format!("model.reference=\"{}\"", other.display());
    let cfg = config(
        &tmp.path().join("out"),
        &fixture("train/train.jsonl"),
        "",
        &[&set],
    )
    .unwrap();
    let err = Trainer::new(cfg).err().expect("refused").to_string();
    assert!(
        err.contains("model.reference") && err.contains("120") && err.contains("96"),
        "{err}"
    );
}

#[test]
fn resume_names_the_changed_keys_and_refuses_a_cursor_past_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let data = tmp.path().join("train.jsonl");
    let full = std::fs::read_to_string(fixture("train/train.jsonl")).unwrap();
    std::fs::write(&data, &full).unwrap();
    let cfg = config(&out, &data, "", &[]).unwrap();
    train(&cfg, None).unwrap();
    let checkpoint = out.join("checkpoint-1");
    let changed = config(
        &out,
        &data,
        "",
        &["training.seed=7", "optimizer.weight_decay=0.1"],
    )
    .unwrap();
    let err = Trainer::resume(changed, &checkpoint)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("`training.seed` (42 → 7)")
            && err.contains("`optimizer.weight_decay`")
            && !err.contains("learning_rate"),
        "{err}"
    );
    // The checkpoint's cursor is at pair 8; the same file cut to 4 pairs cannot have produced it.
    let short: Vec<&str> = full.lines().take(4).collect();
    std::fs::write(&data, short.join("\n")).unwrap();
    let err = train(&cfg, Some(&checkpoint)).unwrap_err().to_string();
    assert!(
        err.contains("past the end") && err.contains("train.jsonl (4 pairs)"),
        "{err}"
    );
}

#[test]
fn a_trainer_whose_schedules_are_unsized_refuses_to_step() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(
        &tmp.path().join("out"),
        &fixture("train/train.jsonl"),
        "",
        &[],
    )
    .unwrap();
    let mut trainer = Trainer::new(cfg.clone()).unwrap();
    let (train, _) = load_datasets(&cfg, &trainer).unwrap();
    let batch = ganpo::data::Batch::collate(train.pairs.iter().take(2), trainer.tokenizer.pad_id())
        .unwrap()
        .to_tensors(&trainer.device)
        .unwrap();
    let err = trainer
        .train_step(std::slice::from_ref(&batch), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("set_total_steps"), "{err}");
    trainer.set_total_steps(2);
    trainer.train_step(&[batch], false).unwrap();
}
