//! Data pipeline tests: golden parity with TRL 0.23.1's legacy DPO preprocessing (fixture written by
//! `tools/golden/trl_data.py`), Parquet layouts, every reader error, truncation, drops and batches.
//!
//! The golden comparisons are exact (token ids and 0/1 masks): there is nothing numeric to round.
//!
//! Split by subject: golden parity here; reader errors in `data/errors.rs`; truncation, drops and
//! prompt extraction in `data/truncation.rs`; batches and the config in `data/batch.rs`.

#[path = "data/batch.rs"]
mod batch;
#[path = "data/errors.rs"]
mod errors;
#[path = "data/truncation.rs"]
mod truncation;
#[path = "data/warnings.rs"]
mod warnings;

use std::path::{Path, PathBuf};

use ganpo::data::{
    Batch, DataConfig, DropReason, PreferenceDataset, Record, RenderedExample, concatenate,
    read_records, tokenize_row,
};
use ganpo::tokenize::Tokenizer;
use serde::Deserialize;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data")
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
