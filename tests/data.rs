//! Data pipeline tests: golden parity with TRL 0.23.1's legacy DPO preprocessing (fixture written by
//! `tools/golden/trl_data.py`), Parquet layouts, every reader error, truncation, drops and batches.
//!
//! The golden comparisons are exact (token ids and 0/1 masks): there is nothing numeric to round.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use ganpo::data::{
    Batch, DataConfig, DropReason, Example, Field, PreferenceDataset, Record, RenderedExample,
    TokenizedPair, TokenizedRow, TruncationMode, concatenate, read_records, tokenize_row,
};
use ganpo::tokenize::Tokenizer;
use serde::Deserialize;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data")
}

#[derive(Deserialize)]
struct Golden {
    header: Header,
    input: String,
    tokenizer: String,
    parquet: std::collections::BTreeMap<String, Vec<usize>>,
    configs: Vec<GoldenConfig>,
}

#[derive(Deserialize)]
struct Header {
    trl: String,
    pad_id: u32,
    eos_id: u32,
}

#[derive(Deserialize)]
struct GoldenConfig {
    name: String,
    config: DataConfig,
    examples: Vec<GoldenExample>,
    batch: GoldenBatch,
}

#[derive(Deserialize)]
struct GoldenExample {
    line: usize,
    rendered: GoldenRendered,
    tokenize_row: GoldenRow,
    chosen: GoldenSequence,
    rejected: GoldenSequence,
    dropped: Option<String>,
}

#[derive(Deserialize)]
struct GoldenRendered {
    prompt: String,
    chosen: String,
    rejected: String,
}

#[derive(Deserialize)]
struct GoldenRow {
    prompt_input_ids: Vec<u32>,
    chosen_input_ids: Vec<u32>,
    rejected_input_ids: Vec<u32>,
}

#[derive(Deserialize)]
struct GoldenSequence {
    input_ids: Vec<u32>,
    loss_mask: Vec<u32>,
}

#[derive(Deserialize)]
struct GoldenBatch {
    input_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
    loss_mask: Vec<Vec<u32>>,
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(fixtures().join("golden_trl.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tokenizer(golden: &Golden) -> Tokenizer {
    Tokenizer::from_hf_dir(&fixtures().join(&golden.tokenizer)).unwrap()
}

fn golden_records(golden: &Golden) -> Vec<Record> {
    read_records(&fixtures().join(&golden.input)).unwrap()
}

fn drop_name(reason: DropReason) -> String {
    serde_json::to_value(reason)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn loss_mask(sequence: &ganpo::data::Sequence) -> Vec<u32> {
    (0..sequence.input_ids.len())
        .map(|i| u32::from(i >= sequence.prompt_len))
        .collect()
}

#[test]
fn golden_fixture_is_from_the_pinned_trl() {
    let golden = golden();
    assert_eq!(golden.header.trl, "0.23.1");
    let tokenizer = tokenizer(&golden);
    assert_eq!(tokenizer.pad_id(), golden.header.pad_id);
    assert_eq!(
        tokenizer.special_tokens().eos.as_ref().map(|t| t.id),
        Some(golden.header.eos_id)
    );
}

/// Every stage of every example, under every config, matches TRL: the rendered text
/// (`maybe_extract_prompt` + `maybe_apply_chat_template`), `tokenize_row`'s ids, and the
/// sequences and loss masks after `concatenated_forward`'s `max_length` truncation.
#[test]
fn every_stage_matches_trl() {
    let golden = golden();
    let tokenizer = tokenizer(&golden);
    let records = golden_records(&golden);
    assert_eq!(records.len(), golden.configs[0].examples.len());
    for config in &golden.configs {
        config.config.validate().unwrap();
        for (record, expected) in records.iter().zip(&config.examples) {
            let at = format!("{} line {}", config.name, expected.line);
            assert!(
                record.location.ends_with(&format!(":{}", expected.line)),
                "{at}"
            );
            let rendered = record
                .clone()
                .into_example()
                .and_then(|e| e.render(&tokenizer, &record.location))
                .unwrap();
            let want = &expected.rendered;
            assert_eq!(
                rendered,
                RenderedExample {
                    prompt: want.prompt.clone(),
                    chosen: want.chosen.clone(),
                    rejected: want.rejected.clone(),
                },
                "{at}: rendered text"
            );
            let row = tokenize_row(&rendered, &tokenizer, &config.config).unwrap();
            let want = &expected.tokenize_row;
            assert_eq!(
                row.prompt_input_ids, want.prompt_input_ids,
                "{at}: prompt ids"
            );
            assert_eq!(
                row.chosen_input_ids, want.chosen_input_ids,
                "{at}: chosen ids"
            );
            assert_eq!(
                row.rejected_input_ids, want.rejected_input_ids,
                "{at}: rejected ids"
            );
            match concatenate(&row, &config.config) {
                Ok((chosen, rejected)) => {
                    assert_eq!(
                        expected.dropped, None,
                        "{at}: kept, but the fixture drops it"
                    );
                    for (got, want) in
                        [(&chosen, &expected.chosen), (&rejected, &expected.rejected)]
                    {
                        assert_eq!(got.input_ids, want.input_ids, "{at}: sequence ids");
                        assert_eq!(loss_mask(got), want.loss_mask, "{at}: loss mask");
                    }
                }
                Err(reason) => {
                    assert_eq!(
                        expected.dropped,
                        Some(drop_name(reason)),
                        "{at}: drop reason"
                    )
                }
            }
        }
    }
}

/// The collated batch of the kept pairs equals what TRL's collator and `concatenated_forward`
/// hand the model (ids including padding, attention mask, loss mask).
#[test]
fn collated_batches_match_trl() {
    let golden = golden();
    let tokenizer = tokenizer(&golden);
    for config in &golden.configs {
        let dataset =
            PreferenceDataset::from_records(golden_records(&golden), &tokenizer, &config.config)
                .unwrap();
        let batch = Batch::collate(&dataset.pairs, tokenizer.pad_id()).unwrap();
        let want = &config.batch;
        let (rows, t) = batch.shape();
        assert_eq!(
            (rows, t),
            (want.input_ids.len(), want.input_ids[0].len()),
            "{}",
            config.name
        );
        let flat = |m: &Vec<Vec<u32>>| m.concat();
        assert_eq!(batch.input_ids(), flat(&want.input_ids), "{}", config.name);
        assert_eq!(
            batch.attention_mask(),
            flat(&want.attention_mask),
            "{}",
            config.name
        );
        let loss: Vec<u32> = batch.loss_mask().iter().map(|&x| x as u32).collect();
        assert_eq!(loss, flat(&want.loss_mask), "{}", config.name);

        let dropped: Vec<(usize, String)> = config
            .examples
            .iter()
            .filter_map(|e| e.dropped.clone().map(|d| (e.line, d)))
            .collect();
        let summary = &dataset.summary;
        assert_eq!(summary.records, config.examples.len());
        assert_eq!(summary.kept + summary.dropped.len(), summary.records);
        let got: Vec<(usize, String)> = summary
            .dropped
            .iter()
            .map(|d| {
                let line = d.location.rsplit(':').next().unwrap().parse().unwrap();
                (line, drop_name(d.reason))
            })
            .collect();
        assert_eq!(got, dropped, "{}", config.name);
    }
}

#[test]
fn parquet_layouts_read_like_jsonl() {
    let golden = golden();
    let tokenizer = tokenizer(&golden);
    let jsonl = golden_records(&golden);
    let config = &golden.configs[1];
    for (file, lines) in &golden.parquet {
        let path = fixtures().join(file);
        let records = read_records(&path).unwrap();
        assert_eq!(records.len(), lines.len(), "{file}");
        for (row, (record, &line)) in records.iter().zip(lines).enumerate() {
            let want = &jsonl[line - 1];
            assert_eq!(record.location, format!("{}:row {row}", path.display()));
            assert_eq!(
                (&record.prompt, &record.chosen, &record.rejected),
                (&want.prompt, &want.chosen, &want.rejected),
                "{file} row {row}"
            );
        }
        let dataset = PreferenceDataset::load(&path, &tokenizer, &config.config).unwrap();
        for pair in &dataset.pairs {
            let row: usize = pair.location.rsplit(' ').next().unwrap().parse().unwrap();
            let expected = &config.examples[lines[row] - 1];
            assert_eq!(
                pair.chosen.input_ids, expected.chosen.input_ids,
                "{file} row {row}"
            );
            assert_eq!(
                pair.rejected.input_ids, expected.rejected.input_ids,
                "{file} row {row}"
            );
        }
    }
}

fn write_jsonl(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads `text` as a JSONL file and returns the error message.
fn jsonl_error(text: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_jsonl(&dir, "train.jsonl", text);
    let err = read_records(&path).expect_err("should fail").to_string();
    (err, path.display().to_string())
}

const GOOD: &str = r#"{"prompt": "p", "chosen": "c", "rejected": "r"}"#;

#[test]
fn malformed_json_names_the_line_and_column() {
    let (err, file) = jsonl_error(&format!("{GOOD}\n{{\"prompt\": \"p\", \"chosen\": }}\n"));
    assert!(
        err.starts_with(&format!("{file}:2: invalid JSON at column 27")),
        "{err}"
    );
    assert!(!err.contains("at line 1"), "{err}");
}

#[test]
fn missing_empty_and_mistyped_fields_are_named() {
    let cases = [
        (
            r#"{"prompt": "p", "rejected": "r"}"#,
            "missing field `chosen`",
        ),
        (
            r#"{"prompt": "p", "chosen": "c"}"#,
            "missing field `rejected`",
        ),
        (
            r#"{"prompt": "", "chosen": "c", "rejected": "r"}"#,
            "field `prompt` is an empty string",
        ),
        (
            r#"{"prompt": "p", "chosen": 42, "rejected": "r"}"#,
            "field `chosen` is a number (42)",
        ),
        (
            r#"{"prompt": null, "chosen": "c", "rejected": "r"}"#,
            "field `prompt` is null",
        ),
        (
            r#"{"prompt": "p", "chosen": "c", "rejected": []}"#,
            "field `rejected` is an empty list",
        ),
        (
            r#"{"chosen": [{"role": "user"}], "rejected": "r"}"#,
            "`chosen[0]` has no `content`",
        ),
        (
            r#"{"chosen": [{"role": "user", "content": "a"}], "rejected": [{"role": "user", "content": [{"type": "text"}]}]}"#,
            "`rejected[0].content` is a list",
        ),
        (
            r#"{"chosen": ["hi"], "rejected": "r"}"#,
            "`chosen[0]` is a string (\"hi\")",
        ),
        (r#"["p", "c", "r"]"#, "expected a JSON object"),
    ];
    for (line, message) in cases {
        // The bad record is on line 3, after a blank line that is skipped.
        let (err, file) = jsonl_error(&format!("{GOOD}\n\n{line}\n"));
        assert!(err.starts_with(&format!("{file}:3: ")), "{err}");
        assert!(err.contains(message), "expected `{message}` in: {err}");
    }
}

#[test]
fn empty_and_blank_files_are_errors() {
    for text in ["", "\n  \n\n"] {
        let (err, file) = jsonl_error(text);
        assert!(
            err.starts_with(&format!("{file}: contains no records")),
            "{err}"
        );
    }
}

#[test]
fn invalid_utf8_and_unknown_extensions_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.jsonl");
    std::fs::write(
        &path,
        [GOOD.as_bytes(), b"\n{\"prompt\": \"\xff\"}\n"].concat(),
    )
    .unwrap();
    let err = read_records(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
    assert!(err.contains("UTF-8"), "{err}");
    let err = read_records(&dir.path().join("train.csv"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown data file type"), "{err}");
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_jsonl(&dir, "bom.jsonl", &format!("\u{feff}{GOOD}\n"));
    assert_eq!(read_records(&path).unwrap().len(), 1);
}

fn example_error(line: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_jsonl(&dir, "train.jsonl", &format!("{GOOD}\n{line}\n"));
    let golden = golden();
    let config = DataConfig::default();
    let err = PreferenceDataset::load(&path, &tokenizer(&golden), &config).unwrap_err();
    let err = err.to_string();
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
    err
}

#[test]
fn inconsistent_records_are_errors_naming_the_line() {
    let err = example_error(
        r#"{"prompt": "p", "chosen": "c", "rejected": [{"role": "assistant", "content": "r"}]}"#,
    );
    assert!(
        err.contains("`chosen` is a string but `rejected` is a list of messages"),
        "{err}"
    );
    let err = example_error(
        r#"{"prompt": [{"role": "user", "content": "p"}], "chosen": "c", "rejected": "r"}"#,
    );
    assert!(
        err.contains("`prompt` is a list of messages but `chosen` and `rejected` are strings"),
        "{err}"
    );
    let err = example_error(r#"{"chosen": "blue", "rejected": "green"}"#);
    assert!(err.contains("share no leading text"), "{err}");
    let err = example_error(
        r#"{"chosen": [{"role": "user", "content": "a"}], "rejected": [{"role": "user", "content": "b"}]}"#,
    );
    assert!(err.contains("share no leading text"), "{err}");
    let err = example_error(
        r#"{"prompt": [{"role": "system", "content": "s"}], "chosen": [{"role": "assistant", "content": "c"}], "rejected": [{"role": "assistant", "content": "r"}]}"#,
    );
    assert!(err.contains("last message has role `system`"), "{err}");
    let err = example_error(
        r#"{"prompt": [{"role": "tool", "content": "s"}, {"role": "user", "content": "u"}], "chosen": [{"role": "assistant", "content": "c"}], "rejected": [{"role": "assistant", "content": "r"}]}"#,
    );
    assert!(err.contains("unknown role tool"), "{err}");
}

#[test]
fn parquet_errors_name_the_column_or_row() {
    let file = |name: &str| fixtures().join(name);
    let err = |name: &str| read_records(&file(name)).unwrap_err().to_string();
    let bad_type = err("bad_type.parquet");
    assert!(
        bad_type.contains("column `rejected` has type `Int64`"),
        "{bad_type}"
    );
    let null = err("null_cell.parquet");
    let at = format!("{}:row 3: ", file("null_cell.parquet").display());
    assert!(
        null.starts_with(&at) && null.contains("field `rejected` is null"),
        "{null}"
    );
    let bad_struct = err("bad_struct.parquet");
    assert!(
        bad_struct.contains("column `chosen` has type `List("),
        "{bad_struct}"
    );
    let missing = err("missing_column.parquet");
    assert!(
        missing.contains("no `rejected` column (found: prompt, chosen)"),
        "{missing}"
    );
    assert!(err("empty.parquet").contains("contains no rows"));
    let dir = tempfile::tempdir().unwrap();
    let fake = write_jsonl(&dir, "fake.parquet", GOOD);
    let fake = read_records(&fake).unwrap_err().to_string();
    assert!(fake.contains("cannot read as Parquet"), "{fake}");
}

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
    let llama = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/llama");
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
    let llama = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/llama");
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

fn pair(prompt: &[u32], chosen: &[u32], rejected: &[u32]) -> TokenizedPair {
    let sequence = |completion: &[u32]| ganpo::data::Sequence {
        input_ids: [prompt, completion].concat(),
        prompt_len: prompt.len(),
    };
    TokenizedPair {
        location: "x:1".into(),
        chosen: sequence(chosen),
        rejected: sequence(rejected),
    }
}

#[test]
fn batches_stack_chosen_then_rejected_and_pad_on_the_right() {
    let pairs = [
        pair(&[10, 11], &[20], &[30, 31, 32]),
        pair(&[12], &[21, 22], &[33]),
    ];
    let batch = Batch::collate(&pairs, 0).unwrap();
    assert_eq!(batch.pairs(), 2);
    assert_eq!(batch.shape(), (4, 5));
    #[rustfmt::skip]
    let ids = [
        10, 11, 20, 0, 0,  // pair 0 chosen
        12, 21, 22, 0, 0,  // pair 1 chosen
        10, 11, 30, 31, 32, // pair 0 rejected
        12, 33, 0, 0, 0,   // pair 1 rejected
    ];
    assert_eq!(batch.input_ids(), ids);
    #[rustfmt::skip]
    let attention = [1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0];
    assert_eq!(batch.attention_mask(), attention);
    #[rustfmt::skip]
    let loss = [0., 0., 1., 0., 0., 0., 1., 1., 0., 0., 0., 0., 1., 1., 1., 0., 1., 0., 0., 0.];
    assert_eq!(batch.loss_mask(), loss);
    assert_eq!(batch.prompt_lens(), [2, 1, 2, 1]);
    assert_eq!(batch.completion_lens(), [1, 2, 3, 1]);
    assert_eq!(batch.row(2), Some(&ids[10..15]));
    assert_eq!(batch.row(4), None);

    let tensors = batch.to_tensors(&Device::Cpu).unwrap();
    assert_eq!(tensors.input_ids.dims(), [4, 5]);
    assert_eq!(tensors.input_ids.dtype(), DType::U32);
    assert_eq!(tensors.attention_mask.dtype(), DType::U32);
    assert_eq!(tensors.loss_mask.dtype(), DType::F32);
    assert_eq!(
        tensors
            .input_ids
            .flatten_all()
            .unwrap()
            .to_vec1::<u32>()
            .unwrap(),
        ids
    );
    assert_eq!(
        tensors
            .loss_mask
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        loss
    );

    // A padding id other than 0 is used as given.
    let batch = Batch::collate(&pairs[..1], 7).unwrap();
    assert_eq!(batch.input_ids(), [10, 11, 20, 7, 7, 10, 11, 30, 31, 32]);
    assert!(Batch::collate(&[], 0).is_err());
}

#[test]
fn data_config_uses_trl_names_and_defaults_and_rejects_the_rest() {
    let config: DataConfig = toml::from_str("").unwrap();
    assert_eq!(config, DataConfig::default());
    assert_eq!(
        (
            config.max_length,
            config.max_prompt_length,
            config.max_completion_length
        ),
        (Some(1024), Some(512), None)
    );
    assert_eq!(config.truncation_mode, TruncationMode::KeepEnd);
    let err = toml::from_str::<DataConfig>("max_seq_length = 10").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `max_seq_length`"),
        "{err}"
    );
    let err = toml::from_str::<DataConfig>("truncation_mode = \"keep_middle\"").unwrap_err();
    assert!(err.to_string().contains("keep_middle"), "{err}");
    for bad in [
        "max_length = 1",
        "max_prompt_length = 0",
        "max_completion_length = 0",
    ] {
        let config: DataConfig = toml::from_str(bad).unwrap();
        assert!(config.validate().is_err(), "{bad}");
    }
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
