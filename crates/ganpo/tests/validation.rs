//! Every bad config value is refused before any work starts, with a message that names the key,
//! where it was set (the file's line or the `--set`) and what to do; relative paths follow one rule.

mod common;

use common::fixture;
use ganpo::config::train::TrainConfig;

fn good() -> String {
    format!(
        "[model]\npath = \"{}\"\n[data]\ntrain_file = \"{}\"\n[training]\noutput_dir = \"out\"\n",
        fixture("models/llama").display(),
        fixture("train/train.jsonl").display(),
    )
}

/// The error of `good()` plus `extra` lines and `sets`, as text.
fn err(extra: &str, sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match TrainConfig::from_toml(&format!("{}{extra}", good()), &sets, "run.toml") {
        Ok(_) => panic!("accepted: {extra} {sets:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_good_config_is_accepted() {
    TrainConfig::from_toml(&good(), &[], "run.toml").unwrap();
}

#[test]
fn every_optimizer_and_loop_value_is_validated_naming_its_key() {
    let cases = [
        ("optimizer.adam_beta1", "1.0"),
        ("optimizer.adam_beta1", "-0.1"),
        ("optimizer.adam_beta2", "1.5"),
        ("optimizer.adam_epsilon", "-1"),
        ("optimizer.adam_epsilon", "0.0"),
        ("optimizer.adam_epsilon", "inf"),
        ("optimizer.weight_decay", "-0.5"),
        ("optimizer.weight_decay", "nan"),
        ("training.learning_rate", "0.0"),
        ("training.max_grad_norm", "nan"),
        ("training.warmup_ratio", "1.0"),
        ("training.max_steps", "0"),
        ("training.per_device_eval_batch_size", "0"),
        ("training.eval_steps", "5"),
        ("ganpo.disc_learning_rate", "0.0"),
        ("ganpo.disc_learning_rate", "-1e-6"),
        ("ganpo.disc_weight_decay", "-0.01"),
        ("ganpo.lambda", "nan"),
        ("ganpo.momentum", "1.0"),
        ("ganpo.discriminator.max_positions", "1000000000000"),
        ("ganpo.discriminator.width", "100000000000"),
        ("ganpo.discriminator.depth", "100000000"),
    ];
    for (key, value) in cases {
        let set = format!("{key}={value}");
        let e = err("", &[&set]);
        assert!(e.contains(key), "{set}: {e}");
        assert!(e.contains(&format!("--set {set}")), "{set}: {e}");
        // The same value in the file names the file instead.
        let (section, name) = key.split_once('.').unwrap();
        // good() ends inside [training].
        let header = if section == "training" {
            String::new()
        } else {
            format!("[{section}]\n")
        };
        let e = err(&format!("{header}{name} = {value}\n"), &[]);
        // The discriminator's size check names the table and each of its sizes.
        let (table, last) = key.rsplit_once('.').unwrap();
        let named = e.contains(key) || (e.contains(&format!("{table}:")) && e.contains(last));
        assert!(
            e.contains("run.toml") && named && !e.contains("--set"),
            "{key} in the file: {e}"
        );
    }
}

#[test]
fn huge_batch_products_are_refused_instead_of_wrapping() {
    let e = err(
        "",
        &[
            "training.per_device_train_batch_size=4611686018427387904",
            "training.gradient_accumulation_steps=4",
        ],
    );
    assert!(e.contains("per_device_train_batch_size"), "{e}");
    // total_steps itself never panics, even on an unvalidated config.
    let mut cfg = TrainConfig::from_toml(&good(), &[], "run.toml").unwrap();
    cfg.training.per_device_train_batch_size = usize::MAX;
    cfg.training.gradient_accumulation_steps = 4;
    cfg.training.num_train_epochs = usize::MAX;
    assert_eq!(ganpo::train::setup::total_steps(&cfg, 10), u64::MAX);
}

#[test]
fn empty_output_dir_and_negative_mix_weights_are_refused() {
    for key in [
        "training.output_dir",
        "model.path",
        "model.reference",
        "data.eval_file",
        "ganpo.init_from",
    ] {
        let set = format!("{key}=");
        let e = err("", &[&set]);
        assert!(e.contains(key) && e.contains("--set"), "{e}");
    }
    let e = err(
        "[[loss.mix]]\nweight = -1.0\nobjective = { type = \"sigmoid\" }\n",
        &[],
    );
    assert!(e.contains("loss.mix") && e.contains("-1"), "{e}");
    let e = err(
        "[loss]\nrpo_alpha = -1.0\n[loss.objective]\ntype = \"sigmoid\"\n",
        &[],
    );
    assert!(
        e.contains("loss.rpo_alpha") && e.contains("run.toml"),
        "{e}"
    );
    let e = err(
        "[[loss.mix]]\nweight = 0.0\nobjective = { type = \"sigmoid\" }\n",
        &[],
    );
    assert!(
        e.contains("loss.mix") && e.contains("every weight is 0"),
        "{e}"
    );
}

#[test]
fn type_errors_name_the_key_and_the_line_or_the_set() {
    // Line 7 of the file: good() has 6 lines.
    let e = err("learning_rate = \"fast\"\n", &[]);
    assert!(
        e.contains("run.toml:7") && e.contains("training.learning_rate") && e.contains("fast"),
        "{e}"
    );
    let e = err("", &["training.learning_rate=fast"]);
    assert!(
        e.contains("--set training.learning_rate=fast") && e.contains("`training.learning_rate`"),
        "{e}"
    );
    let e = err("", &["training.seed=-1"]);
    assert!(e.contains("--set training.seed=-1"), "{e}");
    // An unknown key names the --set that introduced it, not the file.
    for set in ["foo.bar=1", "training.learning_rat=1"] {
        let e = err("", &[set]);
        assert!(e.starts_with(&format!("config error: --set {set}")), "{e}");
    }
    let e = err("[trainin]\n", &["training.seed=1"]);
    assert!(e.contains("run.toml:7") && e.contains("trainin"), "{e}");
}

#[test]
fn relative_paths_follow_the_config_file_and_set_paths_the_current_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("configs");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("run.toml");
    std::fs::write(
        &file,
        "[model]\npath = \"../models/m\"\n[data]\ntrain_file = \"train.jsonl\"\n[training]\noutput_dir = \"runs/a\"\n",
    )
    .unwrap();
    let cfg = TrainConfig::load(&file, &[]).unwrap();
    assert_eq!(
        cfg.data.train_file,
        std::path::absolute(dir.join("train.jsonl")).unwrap()
    );
    assert_eq!(
        cfg.model.path,
        std::path::absolute(dir.join("../models/m")).unwrap()
    );
    assert_eq!(
        cfg.training.output_dir,
        std::path::absolute(dir.join("runs/a")).unwrap()
    );
    let cfg = TrainConfig::load(&file, &["data.eval_file=held/out.jsonl".into()]).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        cfg.data.eval_file.as_deref(),
        Some(cwd.join("held/out.jsonl").as_path())
    );
    assert_eq!(
        cfg.data.train_file,
        std::path::absolute(dir.join("train.jsonl")).unwrap()
    );
    // The resolved config saved with a checkpoint reads back unchanged from anywhere.
    let saved = tmp.path().join("elsewhere.toml");
    std::fs::write(&saved, cfg.to_toml()).unwrap();
    assert_eq!(TrainConfig::load(&saved, &[]).unwrap(), cfg);
}

#[test]
fn missing_inputs_and_a_file_as_output_dir_name_the_key_before_loading() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = TrainConfig::from_toml(&good(), &[], "run.toml").unwrap();
    cfg.check_paths_exist().unwrap();
    let mut missing = cfg.clone();
    missing.data.eval_file = Some(tmp.path().join("nope.jsonl"));
    let e = missing.check_paths_exist().unwrap_err().to_string();
    assert!(
        e.contains("data.eval_file") && e.contains("nope.jsonl"),
        "{e}"
    );
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let mut out = cfg;
    out.training.output_dir = file;
    let e = out.check_paths_exist().unwrap_err().to_string();
    assert!(
        e.contains("training.output_dir") && e.contains("not a directory"),
        "{e}"
    );
}
