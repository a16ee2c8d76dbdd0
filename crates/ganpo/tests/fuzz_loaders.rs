//! Seeded mutation fuzzing of the loaders a user feeds: preference data (JSONL), the TOML config
//! with `--set` overrides, and model directories (`config.json`, `model.safetensors`). Each input
//! must load or fail with an error that names where (the file, `file:line`, or the `--set`); no
//! input may panic. Bounded: `GANPO_FUZZ_ITERS` (default 150) inputs per loader, seed
//! `GANPO_FUZZ_SEED` (default 0), so CI runs it in seconds and a failure replays exactly.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use common::fixture;
use ganpo::config::train::TrainConfig;
use ganpo::data::{DataConfig, PreferenceDataset, diagnose, read_records};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn iters() -> usize {
    std::env::var("GANPO_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

fn rng(salt: u64) -> ChaCha8Rng {
    let seed: u64 = std::env::var("GANPO_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(salt))
}

const PIECES: [&str; 24] = [
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\\",
    "null",
    "true",
    "-1",
    "0",
    "1e999",
    "NaN",
    "\u{0}",
    "é",
    "😀",
    "\n",
    " ",
    "\"\\ud800\"",
    "[{\"role\": 1}]",
    "{\"role\": \"user\"}",
    "[]",
    "{}",
];

/// One random edit of `text`: replace, insert, delete or duplicate a span, or cut the end.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len().max(1);
    let (a, b) = {
        let a = rng.random_range(0..n);
        (a, (a + rng.random_range(0..8)).min(chars.len()))
    };
    let a = a.min(chars.len());
    let piece = PIECES[rng.random_range(0..PIECES.len())];
    let head: String = chars[..a].iter().collect();
    let span: String = chars[a..b].iter().collect();
    let tail: String = chars[b..].iter().collect();
    match rng.random_range(0..5) {
        0 => format!("{head}{piece}{tail}"),
        1 => format!("{head}{piece}{span}{tail}"),
        2 => format!("{head}{tail}"),
        3 => format!("{head}{span}{span}{tail}"),
        _ => head,
    }
}

/// Runs `f`, failing the test (with the input) if it panics.
fn no_panic<T>(what: &str, input: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("{what} panicked on input:\n{input}"),
    }
}

#[test]
fn data_files_load_or_name_the_file() {
    let seed = std::fs::read_to_string(fixture("train/train.jsonl")).unwrap();
    let seed: Vec<&str> = seed.lines().take(6).collect();
    let chat = r#"{"chosen": [{"role": "user", "content": "w1"}, {"role": "assistant", "content": "w2"}], "rejected": [{"role": "user", "content": "w1"}, {"role": "assistant", "content": "w3"}]}"#;
    let base = format!("{}\n{chat}\n", seed.join("\n"));
    let tok = ganpo::tokenize::Tokenizer::from_hf_dir(&fixture("models/llama")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fuzz.jsonl");
    let mut rng = rng(1);
    for _ in 0..iters() {
        let mut text = base.clone();
        for _ in 0..rng.random_range(1..4) {
            text = mutate(&text, &mut rng);
        }
        std::fs::write(&path, &text).unwrap();
        let config = DataConfig {
            max_length: Some(rng.random_range(2..40)),
            ..DataConfig::default()
        };
        let loaded = no_panic("loading data", &text, || {
            PreferenceDataset::load(&path, &tok, &config)
        });
        if let Err(e) = loaded {
            let e = e.to_string();
            assert!(
                e.contains("fuzz.jsonl"),
                "error without the file: {e}\n{text}"
            );
        }
        if let Ok(records) = read_records(&path) {
            no_panic("check-data", &text, || {
                diagnose("fuzz.jsonl", records, &tok, &config, &[])
            });
        }
    }
}

const VALUES: [&str; 16] = [
    "-1",
    "0",
    "1e309",
    "nan",
    "inf",
    "\"x\"",
    "[]",
    "{}",
    "true",
    "18446744073709551616",
    "\"\"",
    "-0.0",
    "0.5",
    "1.0",
    "9223372036854775807",
    "{ type = \"ipo\" }",
];

const KEYS: [&str; 16] = [
    "training.learning_rate",
    "training.per_device_train_batch_size",
    "training.gradient_accumulation_steps",
    "training.num_train_epochs",
    "training.max_steps",
    "training.warmup_ratio",
    "training.output_dir",
    "optimizer.adam_beta1",
    "optimizer.adam_epsilon",
    "data.max_length",
    "data.max_prompt_length",
    "loss.objective",
    "loss.objective.beta",
    "ganpo.lambda",
    "ganpo.discriminator.heads",
    "ganpo.disc_learning_rate",
];

#[test]
fn configs_load_or_name_the_line_or_the_set() {
    let base = format!(
        "[model]\npath = \"m\"\n[data]\ntrain_file = \"t.jsonl\"\nmax_length = 64\n\
         [loss.objective]\ntype = \"sigmoid\"\nbeta = 0.1\n[ganpo]\nlambda = 1.0\n\
         [ganpo.discriminator]\nwidth = 32\nheads = 4\n[training]\noutput_dir = \"o\"\n\
         per_device_train_batch_size = 4\ngradient_accumulation_steps = 2\nlearning_rate = 1e-6\n\
         [optimizer]\nadam_beta1 = 0.9\n{}",
        ""
    );
    let mut rng = rng(2);
    for _ in 0..iters() {
        let mut lines: Vec<String> = base.lines().map(String::from).collect();
        for _ in 0..rng.random_range(1..3) {
            let i = rng.random_range(0..lines.len());
            let value = VALUES[rng.random_range(0..VALUES.len())];
            match rng.random_range(0..4) {
                0 => {
                    if let Some((k, _)) = lines[i].split_once(" = ") {
                        lines[i] = format!("{k} = {value}");
                    }
                }
                1 => {
                    lines.remove(i);
                }
                2 => lines[i] = mutate(&lines[i], &mut rng),
                _ => lines.insert(i, lines[i].clone()),
            }
        }
        let text = lines.join("\n");
        let sets: Vec<String> = (0..rng.random_range(0..2))
            .map(|_| {
                let key = KEYS[rng.random_range(0..KEYS.len())];
                format!("{key}={}", VALUES[rng.random_range(0..VALUES.len())])
            })
            .collect();
        let shown = format!("{text}\n--set {sets:?}");
        let parsed = no_panic("config", &shown, || {
            TrainConfig::from_toml(&text, &sets, "fuzz.toml")
        });
        match parsed {
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("fuzz.toml") || e.contains("--set") || e.contains("override"),
                    "error without its origin: {e}\n{shown}"
                );
            }
            Ok(cfg) => {
                no_panic("total_steps", &shown, || {
                    ganpo::train::setup::total_steps(&cfg, 64)
                });
            }
        }
    }
}

fn copy_model(to: &Path) {
    let from = fixture("models/llama");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn model_directories_load_or_name_the_path() {
    use ganpo::generate::{GenerationConfig, generate};
    use ganpo::model::{Trainability, load_model};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fuzzmodel");
    std::fs::create_dir(&dir).unwrap();
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("models/llama/config.json")).unwrap(),
    )
    .unwrap();
    let weights = std::fs::read(fixture("models/llama/model.safetensors")).unwrap();
    let keys: Vec<String> = config.as_object().unwrap().keys().cloned().collect();
    let json_values = [
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(1u64 << 40),
        serde_json::json!(3),
        serde_json::json!(0.5),
        serde_json::json!("x"),
        serde_json::json!(null),
        serde_json::json!([]),
        serde_json::json!({}),
    ];
    let mut rng = rng(3);
    for _ in 0..iters() / 3 {
        copy_model(&dir);
        let what = if rng.random_bool(0.6) {
            let mut c = config.clone();
            let key = &keys[rng.random_range(0..keys.len())];
            let value = json_values[rng.random_range(0..json_values.len())].clone();
            c[key] = value.clone();
            std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
            format!("config.json {key} = {value}")
        } else {
            let mut w = weights.clone();
            if rng.random_bool(0.5) {
                w.truncate(rng.random_range(0..w.len()));
            } else {
                // The 8-byte length and the JSON header hold the shapes and offsets.
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..w.len().min(2048));
                    w[i] = rng.random();
                }
            }
            std::fs::write(dir.join("model.safetensors"), &w).unwrap();
            "model.safetensors corrupted".to_string()
        };
        let loaded = no_panic("loading a model", &what, || {
            load_model(
                &dir,
                Trainability::Frozen,
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
            )
        });
        match loaded {
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("fuzzmodel"),
                    "error without the path: {e} ({what})"
                );
            }
            Ok(m) => {
                let config = GenerationConfig {
                    max_new_tokens: 2,
                    ..GenerationConfig::default()
                };
                let _ = no_panic("generating", &what, || {
                    generate(&m.model, &m.tokenizer, &[vec![1, 5, 7]], &config)
                });
            }
        }
    }
}

/// One random byte-level edit of `bytes`: overwrite a few bytes (biased to the headers at both
/// ends, where lengths and offsets live), or cut the file.
fn mutate_bytes(bytes: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if rng.random_bool(0.2) {
        b.truncate(rng.random_range(0..b.len()));
        return b;
    }
    for _ in 0..rng.random_range(1..5) {
        let n = b.len();
        let i = match rng.random_range(0..3) {
            0 => rng.random_range(0..n.min(512)),
            1 => n - 1 - rng.random_range(0..n.min(512)),
            _ => rng.random_range(0..n),
        };
        b[i] = if rng.random_bool(0.5) {
            rng.random()
        } else {
            0xff
        };
    }
    b
}

#[test]
fn parquet_files_load_or_name_the_file() {
    let tok = ganpo::tokenize::Tokenizer::from_hf_dir(&fixture("models/llama")).unwrap();
    let seeds: Vec<Vec<u8>> = ["plain.parquet", "chat.parquet", "ultrafeedback.parquet"]
        .iter()
        .map(|f| std::fs::read(fixture("data").join(f)).unwrap())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fuzz.parquet");
    let mut rng = rng(4);
    for i in 0..iters() {
        let bytes = mutate_bytes(&seeds[i % seeds.len()], &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        let loaded = no_panic("loading parquet", &format!("iteration {i}"), || {
            PreferenceDataset::load(&path, &tok, &DataConfig::default())
        });
        if let Err(e) = loaded {
            let e = e.to_string();
            assert!(e.contains("fuzz.parquet"), "error without the file: {e}");
        }
    }
}

#[test]
fn gguf_files_load_or_name_the_file() {
    use ganpo::model::{Trainability, load_model};

    let seeds: Vec<Vec<u8>> = ["llama_q8_0.gguf", "llama_f32.gguf"]
        .iter()
        .map(|f| std::fs::read(fixture("gguf").join(f)).unwrap())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fuzz.gguf");
    let mut rng = rng(5);
    for i in 0..iters() {
        let bytes = mutate_bytes(&seeds[i % seeds.len()], &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        let loaded = no_panic("loading gguf", &format!("iteration {i}"), || {
            load_model(
                &path,
                Trainability::Frozen,
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
            )
        });
        if let Err(e) = loaded {
            let e = e.to_string();
            assert!(e.contains("fuzz.gguf"), "error without the file: {e}");
        }
    }
}
