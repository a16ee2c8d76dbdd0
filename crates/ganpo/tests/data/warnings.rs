//! Records that are kept but look wrong are reported: implicit prompts (with the split), blank
//! completions and identical `chosen`/`rejected`; clean records raise nothing.

use ganpo::data::{DataConfig, PreferenceDataset, WarningKind};

use super::{golden, tokenizer};

#[test]
fn suspicious_records_are_warned_about_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.jsonl");
    let chat = |c: &str, r: &str| {
        format!(
            r#"{{"chosen": [{{"role": "user", "content": "hi"}}, {{"role": "assistant", "content": "{c}"}}], "rejected": [{{"role": "user", "content": "hi"}}, {{"role": "assistant", "content": "{r}"}}]}}"#
        )
    };
    let lines = [
        r#"{"prompt": "p", "chosen": "good", "rejected": "bad"}"#.to_string(),
        r#"{"chosen": "The answer is yes", "rejected": "The answer is no"}"#.to_string(),
        r#"{"prompt": "p", "chosen": "   ", "rejected": "bad"}"#.to_string(),
        r#"{"prompt": "p", "chosen": "same", "rejected": "same"}"#.to_string(),
        chat("fine", "  "),
        chat("twin", "twin"),
    ];
    std::fs::write(&path, lines.join("\n")).unwrap();
    let golden = golden();
    let ds = PreferenceDataset::load(&path, &tokenizer(&golden), &DataConfig::default()).unwrap();
    let s = &ds.summary;
    let at = |kind| -> Vec<String> {
        s.warnings
            .iter()
            .filter(|w| w.kind == kind)
            .map(|w| w.location.rsplit(':').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(at(WarningKind::ImplicitPrompt), ["2"]);
    assert_eq!(at(WarningKind::BlankCompletion), ["3", "5"]);
    assert_eq!(at(WarningKind::IdenticalCompletions), ["4", "6"]);
    let implicit = &s.warnings[0];
    assert!(
        implicit.detail.contains("The answer is") && implicit.detail.contains("yes"),
        "the split is shown: {}",
        implicit.detail
    );
    let shown = s.to_string();
    assert!(
        shown.contains("warning: 1 records have no `prompt` field") && shown.contains(":2 ("),
        "{shown}"
    );
    assert_eq!(s.warned_for(WarningKind::IdenticalCompletions), 2);
}

#[test]
fn chat_template_problems_are_reported_by_the_doctor() {
    use ganpo::data::{diagnose, read_records};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.jsonl");
    let msg =
        |role: &str, content: &str| format!(r#"{{"role": "{role}", "content": "{content}"}}"#);
    let record = |system: bool| {
        let sys = if system {
            format!("{}, ", msg("system", "be brief"))
        } else {
            String::new()
        };
        format!(
            r#"{{"prompt": [{sys}{}], "chosen": [{}], "rejected": [{}]}}"#,
            msg("user", "hi"),
            msg("assistant", "hello there"),
            msg("assistant", "go away")
        )
    };
    std::fs::write(&path, [record(true), record(false)].join("\n")).unwrap();
    // The fixture's template adds `<think>` to the generation prompt only without a system turn.
    let golden = golden();
    let tok = tokenizer(&golden);
    let report = diagnose(
        "chat.jsonl",
        read_records(&path).unwrap(),
        &tok,
        &DataConfig::default(),
        &[],
    );
    let flagged: Vec<&str> = report
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::ChatTemplate)
        .map(|w| w.location.as_str())
        .collect();
    assert_eq!(flagged.len(), 1, "{:?}", report.warnings);
    assert!(flagged[0].ends_with(":2"), "{flagged:?}");
    assert!(report.to_string().contains("<think>"), "{report}");

    // A template that rewrites assistant turns drops the completions' content.
    let tok_dir = dir.path().join("tok");
    std::fs::create_dir(&tok_dir).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/data/tokenizer");
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), tok_dir.join(f)).unwrap();
    }
    std::fs::write(
        tok_dir.join("chat_template.jinja"),
        "{% for m in messages %}<|{{ m['role'] }}|>{% if m['role'] == 'assistant' %}[hidden]{% else %}{{ m['content'] }}{% endif %}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
    )
    .unwrap();
    let tok = ganpo::tokenize::Tokenizer::from_hf_dir(&tok_dir).unwrap();
    let report = diagnose(
        "chat.jsonl",
        read_records(&path).unwrap(),
        &tok,
        &DataConfig::default(),
        &[],
    );
    let dropped = report
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::ChatTemplate && w.detail.contains("drops"))
        .count();
    assert_eq!(dropped, 4, "{:?}", report.warnings);
}
