//! The README's commands and examples are the real ones: its test command is exactly what CI runs,
//! its data example is `examples/preferences.jsonl` and loads (plain and chat records), and its
//! SmolLM2 config is `examples/smollm2_ganpo.toml` and parses.

use std::path::Path;

use ganpo::config::train::TrainConfig;
use ganpo::data::{Example, PreferenceDataset, read_records};
use ganpo::tokenize::Tokenizer;

/// The repository root, two levels above this crate (`crates/ganpo-cli`).
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The body of the README's only fenced block of language `lang`.
fn fenced(lang: &str) -> String {
    let text = readme();
    let open = format!("```{lang}\n");
    let mut blocks = text.split(&open).skip(1);
    let body = blocks
        .next()
        .unwrap_or_else(|| panic!("README has no ```{lang} block"));
    assert!(
        blocks.next().is_none(),
        "README has more than one ```{lang} block"
    );
    body.split("```").next().unwrap().to_owned()
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let command = ci.lines().last().unwrap().trim();
    assert!(
        command.starts_with("cargo "),
        "last line of .ci/run is the test command: {command}"
    );
    assert!(
        readme().contains(&format!("```sh\n{command}\n```")),
        "README must show `{command}` as the test command"
    );
}

#[test]
fn the_readme_data_example_loads_as_plain_and_chat_records() {
    let path = root().join("examples/preferences.jsonl");
    let file = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        fenced("jsonl"),
        file,
        "README's example is examples/preferences.jsonl"
    );
    let records = read_records(&path).unwrap();
    assert_eq!(records.len(), 5);
    let examples: Vec<Example> = records
        .into_iter()
        .map(|r| r.into_example().unwrap())
        .collect();
    let chat = examples
        .iter()
        .filter(|e| matches!(e, Example::Chat { .. }))
        .count();
    assert!(chat >= 2 && examples.len() - chat >= 2, "{examples:?}");
    // Through the whole pipeline (chat template, tokenization, limits) with nothing dropped.
    let tokenizer = Tokenizer::from_hf_dir(&root().join("tests/fixtures/data/tokenizer")).unwrap();
    let config = TrainConfig::load(&root().join("examples/smollm2_ganpo.toml"), &[]).unwrap();
    let dataset = PreferenceDataset::load(&path, &tokenizer, &config.data.data_config()).unwrap();
    assert_eq!(dataset.len(), 5, "{}", dataset.summary);
}

#[test]
fn the_readme_smollm2_config_is_the_example_file_and_parses() {
    let path = root().join("examples/smollm2_ganpo.toml");
    let file = std::fs::read_to_string(&path).unwrap();
    let body: String = file
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        fenced("toml"),
        body,
        "README's config is examples/smollm2_ganpo.toml"
    );
    let gguf = "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    let config = TrainConfig::load(&path, &[format!("model.path={gguf}")]).unwrap();
    assert_eq!(config.model.path, Path::new(gguf));
    assert!(config.ganpo.is_some(), "the example trains DPO + GANPO");
    assert!(
        config.data.train_file.exists(),
        "{:?}",
        config.data.train_file
    );
    // Relative to the config's folder: the README's `runs/smollm2_ganpo/final`.
    assert!(
        config
            .training
            .output_dir
            .ends_with("examples/../runs/smollm2_ganpo")
    );
}
