//! The pre-tokenizer a byte-level BPE vocabulary was trained with, chosen from
//! `tokenizer.ggml.pre` as llama.cpp does (`llama-vocab.cpp`), expressed as the
//! `tokenizers` pre-tokenizer the model's own `tokenizer.json` uses.
//!
//! llama.cpp hard-codes one list of split regexes per family; where it rewrites a regex for
//! `std::regex` (`(?i:'s|…)` → `'[sS]|…`) we keep the original `tokenizer.json` form, which is
//! what the model was trained with and what `fancy-regex` accepts.

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

/// Llama 3's split regex (`tokenizer.json` of Meta-Llama-3).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's split regex (`tokenizer.json` of Qwen2): like Llama 3 but one digit per piece.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A family of `tokenizer.ggml.pre` values that split text the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreFamily {
    /// GPT-2's regex inside the byte-level step (`gpt-2`, `phi-2`, `mpt`, `olmo`, `jais`, ...).
    Gpt2,
    /// Every digit on its own, then GPT-2's regex (`smollm`, `starcoder`, `refact`,
    /// `command-r`, `codeshell`, `exaone`, `minerva-7b`): `Digits(individual)` + `ByteLevel`.
    DigitsGpt2,
    /// Llama 3 (`llama-bpe`, `llama3`, `llama-v3`, `falcon3`); merges are skipped for words
    /// already in the vocabulary (`ignore_merges`) and BOS is added by default.
    Llama3,
    /// Qwen2 (`qwen2`, `stablelm2`, `megrez`, `deepseek-r1-qwen`).
    Qwen2,
}

/// Every `tokenizer.ggml.pre` value ganpo knows, with its family.
const KNOWN: &[(&str, PreFamily)] = &[
    ("gpt-2", PreFamily::Gpt2),
    ("phi-2", PreFamily::Gpt2),
    ("jina-es", PreFamily::Gpt2),
    ("jina-de", PreFamily::Gpt2),
    ("jina-v1-en", PreFamily::Gpt2),
    ("jina-v2-es", PreFamily::Gpt2),
    ("jina-v2-de", PreFamily::Gpt2),
    ("jina-v2-code", PreFamily::Gpt2),
    ("roberta-bpe", PreFamily::Gpt2),
    ("gigachat", PreFamily::Gpt2),
    ("mpt", PreFamily::Gpt2),
    ("olmo", PreFamily::Gpt2),
    ("jais", PreFamily::Gpt2),
    ("smollm", PreFamily::DigitsGpt2),
    ("starcoder", PreFamily::DigitsGpt2),
    ("refact", PreFamily::DigitsGpt2),
    ("command-r", PreFamily::DigitsGpt2),
    ("codeshell", PreFamily::DigitsGpt2),
    ("exaone", PreFamily::DigitsGpt2),
    ("minerva-7b", PreFamily::DigitsGpt2),
    ("llama-bpe", PreFamily::Llama3),
    ("llama3", PreFamily::Llama3),
    ("llama-v3", PreFamily::Llama3),
    ("falcon3", PreFamily::Llama3),
    ("qwen2", PreFamily::Qwen2),
    ("stablelm2", PreFamily::Qwen2),
    ("megrez", PreFamily::Qwen2),
    ("deepseek-r1-qwen", PreFamily::Qwen2),
];

impl PreFamily {
    /// The family of `tokenizer.ggml.pre`. A file without the key is treated as GPT-2, as
    /// transformers' GGUF loader does (llama.cpp falls back to a generic regex set instead);
    /// an unknown value is an error listing the known ones.
    pub fn parse(pre: Option<&str>) -> std::result::Result<Self, String> {
        let Some(pre) = pre else {
            return Ok(PreFamily::Gpt2);
        };
        KNOWN
            .iter()
            .find(|(name, _)| *name == pre)
            .map(|(_, family)| *family)
            .ok_or_else(|| {
                let names: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
                format!(
                    "unsupported pre-tokenizer `tokenizer.ggml.pre = {pre}`; supported: {}",
                    names.join(", ")
                )
            })
    }

    /// Whether BPE keeps a pre-tokenized word whole when it is already a token.
    pub fn ignore_merges(self) -> bool {
        self == PreFamily::Llama3
    }

    /// Whether llama.cpp adds BOS when the file has no `tokenizer.ggml.add_bos_token`.
    pub fn adds_bos_by_default(self) -> bool {
        self == PreFamily::Llama3
    }

    /// The `tokenizers` pre-tokenizer.
    pub fn pre_tokenizer(self) -> std::result::Result<PreTokenizerWrapper, String> {
        let byte_level = |use_regex| ByteLevel::new(false, true, use_regex);
        let split = |regex: &str| {
            Split::new(
                SplitPattern::Regex(regex.to_owned()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| format!("cannot compile the split regex: {e}"))
        };
        Ok(match self {
            PreFamily::Gpt2 => byte_level(true).into(),
            PreFamily::DigitsGpt2 => {
                Sequence::new(vec![Digits::new(true).into(), byte_level(true).into()]).into()
            }
            PreFamily::Llama3 => {
                Sequence::new(vec![split(LLAMA3_SPLIT)?.into(), byte_level(false).into()]).into()
            }
            PreFamily::Qwen2 => {
                Sequence::new(vec![split(QWEN2_SPLIT)?.into(), byte_level(false).into()]).into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_compiles_and_unknown_names_are_refused() {
        for (_, family) in KNOWN {
            assert!(family.pre_tokenizer().is_ok());
        }
        assert_eq!(PreFamily::parse(Some("smollm")), Ok(PreFamily::DigitsGpt2));
        assert_eq!(PreFamily::parse(None), Ok(PreFamily::Gpt2));
        let err = PreFamily::parse(Some("tekken")).unwrap_err();
        assert!(err.contains("tekken") && err.contains("llama-bpe"), "{err}");
    }
}
