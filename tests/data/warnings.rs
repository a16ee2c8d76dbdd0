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
