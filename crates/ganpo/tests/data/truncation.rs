//! `max_length` truncation (`keep_end` / `keep_start`), dropped pairs and their counts, EOS, and
//! TRL's implicit-prompt extraction on edge cases.

use std::path::Path;

use ganpo::data::{
    DataConfig, DropReason, Example, Field, PreferenceDataset, Record, RenderedExample,
    TokenizedRow, TruncationMode, concatenate, tokenize_row,
};
use ganpo::tokenize::Tokenizer;

use super::{golden, golden_records, tokenizer};

fn row(prompt: usize, chosen: usize, rejected: usize) -> TokenizedRow {
    let ids = |start: u32, n: usize| (start..start + n as u32).collect::<Vec<_>>();
    TokenizedRow {
        prompt_input_ids: ids(100, prompt),
        chosen_input_ids: ids(200, chosen),
        rejected_input_ids: ids(300, rejected),
        prompt_truncated: false,
        completion_truncated: false,
    }
}

fn config(max_length: usize, mode: TruncationMode) -> DataConfig {
    DataConfig {
        max_length: Some(max_length),
        max_prompt_length: None,
        max_completion_length: None,
        truncation_mode: mode,
    }
}

#[test]
fn keep_end_cuts_the_prompt_start_and_keep_start_the_completion_end() {
    let r = row(4, 3, 1);
    let (chosen, rejected) = concatenate(&r, &config(5, TruncationMode::KeepEnd)).unwrap();
    assert_eq!(chosen.input_ids, [102, 103, 200, 201, 202]);
    assert_eq!((chosen.prompt_len, chosen.completion_len()), (2, 3));
    // The shorter row fits and is left alone.
    assert_eq!(rejected.input_ids, [100, 101, 102, 103, 300]);
    assert_eq!(rejected.prompt_len, 4);

    let (chosen, rejected) = concatenate(&r, &config(5, TruncationMode::KeepStart)).unwrap();
    assert_eq!(chosen.input_ids, [100, 101, 102, 103, 200]);
    assert_eq!((chosen.prompt_len, chosen.completion_len()), (4, 1));
    assert_eq!(rejected.input_ids, [100, 101, 102, 103, 300]);

    // No limit: nothing is cut.
    let unlimited = DataConfig {
        max_length: None,
        ..config(5, TruncationMode::KeepEnd)
    };
    let (chosen, _) = concatenate(&r, &unlimited).unwrap();
    assert_eq!(chosen.input_ids.len(), 7);
}

#[test]
fn pairs_that_cannot_fit_are_dropped_with_the_reason() {
    assert_eq!(
        concatenate(&row(4, 5, 2), &config(5, TruncationMode::KeepEnd)),
        Err(DropReason::PromptTruncatedAway)
    );
    assert_eq!(
        concatenate(&row(5, 2, 2), &config(5, TruncationMode::KeepStart)),
        Err(DropReason::CompletionTruncatedAway)
    );
    assert_eq!(
        concatenate(&row(0, 2, 2), &config(5, TruncationMode::KeepEnd)),
        Err(DropReason::EmptyPrompt)
    );
}

#[test]
fn drops_are_counted_and_reported() {
    let golden = golden();
    let tokenizer = tokenizer(&golden);
    let config = &golden
        .configs
        .iter()
        .find(|c| c.name == "keep_start_unbounded_parts")
        .unwrap();
    let dataset =
        PreferenceDataset::from_records(golden_records(&golden), &tokenizer, &config.config)
            .unwrap();
    let summary = &dataset.summary;
    assert_eq!(summary.dropped_for(DropReason::CompletionTruncatedAway), 5);
    assert_eq!(summary.dropped_for(DropReason::PromptTruncatedAway), 0);
    assert_eq!(summary.kept, 8);
    assert_eq!(dataset.len(), 8);
    assert_eq!(summary.length_truncated, 13 - 3 - 1);
    let report = summary.to_string();
    assert!(
        report.contains("13 records: 8 pairs kept, 5 dropped"),
        "{report}"
    );
    assert!(
        report.contains("dropped 5 because keep_start truncation"),
        "{report}"
    );
    assert!(report.contains("golden_input.jsonl:6,"), "{report}");

    // The per-part limits are counted too.
    let short = &golden
        .configs
        .iter()
        .find(|c| c.name == "keep_end_short")
        .unwrap();
    let dataset =
        PreferenceDataset::from_records(golden_records(&golden), &tokenizer, &short.config)
            .unwrap();
    let expected_prompts = short
        .examples
        .iter()
        .filter(|e| e.tokenize_row.prompt_input_ids.len() == 20)
        .count();
    assert!(expected_prompts > 0);
    assert_eq!(dataset.summary.prompt_truncated, expected_prompts);
    assert!(dataset.summary.completion_truncated > 0);
}

/// A whitespace-only prompt is a valid string but encodes to nothing with a whitespace
/// pre-tokenizer: dropped as `EmptyPrompt`. When everything is dropped, loading fails.
#[test]
fn empty_prompts_are_dropped_and_an_all_dropped_dataset_is_an_error() {
    let llama = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/llama");
    let tokenizer = Tokenizer::from_hf_dir(&llama).unwrap();
    let record = |line: usize, prompt: &str| Record {
        location: format!("t.jsonl:{line}"),
        prompt: Some(Field::Text(prompt.into())),
        chosen: Field::Text("w5 w6".into()),
        rejected: Field::Text("w7".into()),
    };
    let config = DataConfig::default();
    let records = vec![record(1, "w3 w4"), record(2, "   ")];
    let dataset = PreferenceDataset::from_records(records, &tokenizer, &config).unwrap();
    assert_eq!(dataset.summary.dropped_for(DropReason::EmptyPrompt), 1);
    assert_eq!(dataset.summary.dropped[0].location, "t.jsonl:2");
    // Plain text: no BOS, EOS appended to the completion.
    let eos = tokenizer.special_tokens().eos.as_ref().unwrap().id;
    assert_eq!(dataset.pairs[0].chosen.input_ids, [3, 4, 5, 6, eos]);
    assert_eq!(dataset.pairs[0].rejected.input_ids, [3, 4, 7, eos]);

    let err = PreferenceDataset::from_records(vec![record(2, "   ")], &tokenizer, &config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("every example was dropped") && err.contains("t.jsonl:2"),
        "{err}"
    );
}

#[test]
fn a_tokenizer_without_eos_is_an_error() {
    let llama = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/llama");
    let full = Tokenizer::from_hf_dir(&llama).unwrap();
    let mut special = full.special_tokens().clone();
    special.eos = None;
    let tokenizer =
        Tokenizer::from_parts(full.inner().clone(), special, None, serde_json::json!({}));
    let rendered = RenderedExample {
        prompt: "w3".into(),
        chosen: "w4".into(),
        rejected: "w5".into(),
    };
    let err = tokenize_row(&rendered, &tokenizer, &DataConfig::default()).unwrap_err();
    assert!(err.to_string().contains("no eos_token"), "{err}");
}

#[test]
fn implicit_prompts_follow_trl_extract_prompt() {
    let text = |s: &str| Field::Text(s.into());
    let record = |chosen: Field, rejected: Field| Record {
        location: "x:1".into(),
        prompt: None,
        chosen,
        rejected,
    };
    // Identical strings: TRL's loop ends on the last index, leaving one character as completion.
    let example = record(text("same"), text("same")).into_example().unwrap();
    assert_eq!(
        example,
        Example::Plain {
            prompt: "sam".into(),
            chosen: "e".into(),
            rejected: "e".into(),
        }
    );
    // Characters, not bytes: the shared prefix ends inside no UTF-8 sequence.
    let example = record(text("café noir"), text("café crème"))
        .into_example()
        .unwrap();
    assert_eq!(
        example,
        Example::Plain {
            prompt: "café".into(),
            chosen: " noir".into(),
            rejected: " crème".into(),
        }
    );
}
