//! Bad flag values of `generate`, `eval` and `bench` fail up front with a message naming the flag:
//! out-of-range sampling settings (negative numbers are values, not flags), too many new tokens
//! for the model's positions, unwritable outputs, and a model whose weights hold NaN.

mod common;

use common::fixture;
use common::ganpo_fails as fails;

fn model() -> String {
    fixture("models/llama").display().to_string()
}

#[test]
fn sampling_flags_out_of_range_are_refused() {
    let m = model();
    let base = ["generate", "--model", m.as_str(), "--prompt", "w1 w2"];
    for (flag, value) in [
        ("--top-p", "1.5"),
        ("--top-p", "7"),
        ("--top-p", "nan"),
        ("--top-p", "0"),
        ("--temperature", "-1"),
        ("--temperature", "inf"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        let err = fails(&args);
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(
            !err.contains("unexpected argument"),
            "{flag} {value}: {err}"
        );
    }
}

#[test]
fn too_many_new_tokens_name_the_flag_and_the_limit() {
    let m = model();
    // The fixture has 64 positions.
    let err = fails(&[
        "generate",
        "--model",
        &m,
        "--prompt",
        "w1 w2",
        "--max-new-tokens",
        "500",
    ]);
    assert!(
        err.contains("--max-new-tokens") && err.contains("max_position_embeddings (64)"),
        "{err}"
    );
}

#[test]
fn unwritable_outputs_fail_before_any_work() {
    let m = model();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/dir/out.json");
    let missing = missing.to_str().unwrap();
    let prompts = tmp.path().join("p.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"w1\"}\n").unwrap();
    let p = prompts.to_str().unwrap();
    for args in [
        vec![
            "generate", "--model", &m, "--prompt", "w1", "--output", missing,
        ],
        vec![
            "eval",
            "--policy",
            &m,
            "--reference",
            &m,
            "--prompts",
            p,
            "--output",
            missing,
        ],
        vec!["bench", "--shape", "tiny", "--output", missing],
    ] {
        let err = fails(&args);
        assert!(
            err.contains("--output") && err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
    let dir = tmp.path().to_str().unwrap();
    let err = fails(&["bench", "--shape", "tiny", "--output", dir]);
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn bench_with_zero_pairs_names_the_flag() {
    for (args, flag) in [
        (["--batch-pairs", "0"], "--batch-pairs"),
        (["--batch-pairs", "100000000000"], "--batch-pairs"),
        (["--seq-len", "1"], "--seq-len"),
        (["--threads", "0"], "--threads"),
    ] {
        let mut all = vec!["bench", "--shape", "tiny"];
        all.extend(args);
        let err = fails(&all);
        assert!(
            err.contains(flag) && !err.contains("per_device") && !err.contains("data."),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_model_with_nan_weights_does_not_generate() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture("models/llama");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let device = candle_core::Device::Cpu;
    let mut tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &device).unwrap();
    let name = tensors
        .keys()
        .find(|k| k.contains("embed_tokens"))
        .unwrap()
        .clone();
    let nan = (tensors[&name].clone() * f64::NAN).unwrap();
    tensors.insert(name, nan);
    candle_core::safetensors::save(&tensors, tmp.path().join("model.safetensors")).unwrap();
    let err = fails(&[
        "generate",
        "--model",
        tmp.path().to_str().unwrap(),
        "--prompt",
        "w1 w2",
        "--max-new-tokens",
        "3",
    ]);
    assert!(err.contains("NaN or infinite"), "{err}");
}

#[test]
fn data_limits_of_eval_and_render_name_their_flags() {
    let m = model();
    let data = fixture("train/eval.jsonl");
    let d = data.to_str().unwrap();
    for (args, flag) in [
        (
            vec![
                "eval",
                "--policy",
                &m,
                "--reference",
                &m,
                "--data",
                d,
                "--max-length",
                "1",
            ],
            "--max-length",
        ),
        (
            vec![
                "eval",
                "--policy",
                &m,
                "--reference",
                &m,
                "--data",
                d,
                "--max-prompts",
                "0",
            ],
            "--max-prompts",
        ),
        (
            vec![
                "render-example",
                "--model",
                &m,
                "--data",
                d,
                "--max-length",
                "0",
            ],
            "--max-length",
        ),
    ] {
        let err = fails(&args);
        assert!(
            err.contains(flag) && !err.contains("data.max"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn negative_values_are_values_and_are_refused_by_their_flag() {
    let m = model();
    let err = fails(&[
        "eval",
        "--policy",
        &m,
        "--reference",
        &m,
        "--prompts",
        "x",
        "--temperatures",
        "-1,0",
    ]);
    assert!(err.contains("--temperatures: -1"), "{err}");
    let err = fails(&["generate", "--model", &m, "--prompt", "w1", "--seed", "-1"]);
    assert!(err.contains("--seed"), "{err}");
}
