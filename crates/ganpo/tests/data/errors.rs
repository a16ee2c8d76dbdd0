//! Reader and record errors: each names `file:line` (JSONL) or `file:row N` / the column (Parquet)
//! and the field.

use std::path::PathBuf;

use ganpo::data::{DataConfig, PreferenceDataset, read_records};

use super::{fixtures, golden, tokenizer};

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
        bad_type.contains("column `rejected` has type `int64`"),
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
        bad_struct.contains("column `chosen` has type `list<struct<role: string, text: string>>`"),
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

/// Records are tokenized in parallel, yet the error reported is the first bad record in the file.
#[test]
fn the_first_bad_record_in_file_order_is_reported() {
    let bad = r#"{"chosen": "blue", "rejected": "green"}"#;
    let text = format!("{GOOD}\n{}{bad}\n", format!("{GOOD}\n").repeat(200)) + &format!("{bad}\n");
    let dir = tempfile::tempdir().unwrap();
    let path = write_jsonl(&dir, "train.jsonl", &text);
    let golden = golden();
    let err = PreferenceDataset::load(&path, &tokenizer(&golden), &DataConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}:202: ", path.display())),
        "{err}"
    );
}

#[test]
fn a_key_given_twice_is_an_error_not_the_last_value() {
    let (err, file) = jsonl_error(&format!(
        "{GOOD}\n{{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": \"r\", \"prompt\": \"q\"}}\n"
    ));
    assert!(
        err.starts_with(&format!("{file}:2: the key `prompt` appears twice")),
        "{err}"
    );
}
