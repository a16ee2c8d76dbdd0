//! The `ganpo` binary end to end: reports, JSONL output, and clear errors with a failing exit code.

mod common;

use common::{fixture, ganpo};

#[test]
fn inspect_model_reports_architecture_and_parameters() {
    let dir = fixture("models/qwen2");
    let out = ganpo(&["inspect-model", dir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["architecture"], "qwen2");
    // 96×32 embeddings + 96×32 untied head + 3 layers + final norm, counted from the safetensors file.
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let expected: usize = st
        .tensors()
        .iter()
        .map(|(_, v)| v.shape().iter().product::<usize>())
        .sum();
    assert_eq!(report["parameters"], expected);
    assert_eq!(report["vocab_size"], 96);
    assert_eq!(report["chat_template"], false);
}

#[test]
fn generate_writes_alpacaeval_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"instruction\": \"w5 w9\"}\n\n{\"prompt\": \"w7\"}\n",
    )
    .unwrap();
    let output = tmp.path().join("out.jsonl");
    let dir = fixture("models/llama");
    let out = ganpo(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--max-new-tokens",
        "4",
        "--temperature",
        "0.8",
        "--seed",
        "3",
        "--generator",
        "tiny",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["instruction"], "w5 w9");
    assert_eq!(lines[1]["instruction"], "w7");
    assert_eq!(lines[0]["generator"], "tiny");
    assert_eq!(lines[0]["decoding"]["temperature"], 0.8);
    assert_eq!(lines[0]["decoding"]["seed"], 3);
    assert!(lines[0]["output"].as_str().unwrap().starts_with('w'));
}

#[test]
fn errors_name_the_problem_and_exit_nonzero() {
    let out = ganpo(&["inspect-model", "/no/such/model"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/model") && err.starts_with("error:"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("p.jsonl");
    std::fs::write(&prompts, "{\"instruction\": \"ok\"}\n{\"text\": 1}\n").unwrap();
    let dir = fixture("models/llama");
    let out = ganpo(&[
        "generate",
        "--model",
        dir.to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("p.jsonl:2") && err.contains("instruction"),
        "{err}"
    );
}

#[test]
fn render_example_shows_the_prompt_completion_boundary_and_mask() {
    let tok = fixture("data/tokenizer");
    let data = fixture("data/golden_input.jsonl");
    let out = ganpo(&[
        "render-example",
        "--model",
        tok.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--index",
        "4",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("golden_input.jsonl:5"), "{text}");
    assert!(text.contains("What color is the sky?"));
    let chosen = text.split("── chosen:").nth(1).unwrap();
    let (prompt_part, completion_part) = chosen.split_once("completion (loss) starts").unwrap();
    assert!(
        prompt_part
            .lines()
            .filter(|l| l.contains("mask"))
            .all(|l| l.contains("mask 0"))
    );
    assert!(
        completion_part
            .lines()
            .take_while(|l| !l.contains("── rejected"))
            .filter(|l| l.contains("mask"))
            .all(|l| l.contains("mask 1"))
    );

    let out = ganpo(&[
        "render-example",
        "--model",
        tok.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--index",
        "999",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
}
