//! SentencePiece BPE from GGUF metadata (`tokenizer.ggml.model = "llama"`: Llama 1/2, Mistral
//! v0.1, TinyLlama, Phi-3 ...), rebuilt as the `tokenizer.json` of those models spells it:
//! spaces become `▁` with one `▁` prepended (normalizer `Prepend` + `Replace`), BPE with byte
//! fallback (`<0x0A>` for characters not in the vocabulary), and the reverse in the decoder.
//!
//! GGUF stores scores instead of merges. SentencePiece merges, at each step, the adjacent pair
//! whose concatenation is the highest-scoring token (llama.cpp's `llm_tokenizer_spm`); the same
//! result comes from BPE with every `(left, right)` split of every token as a merge, ranked by
//! the merged token's score — the list transformers' `generate_merges` builds, in its order.

use std::collections::HashMap;

use tokenizers::DecoderWrapper;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};

use super::byte_level::vocab;
use super::file::GgufFile;
use crate::{Error, Result};

/// SentencePiece's word-boundary mark.
const SPACE: &str = "\u{2581}";

/// The tokenizer (without added tokens or post-processor) and whether BOS is added by default
/// (it is for SentencePiece vocabularies, in llama.cpp and in the Llama tokenizers).
pub fn build(file: &GgufFile, tokens: &[&str]) -> Result<(tokenizers::Tokenizer, bool)> {
    let err = |m: String| Error::model(file.path(), m);
    let scores = file
        .get_f32_array("tokenizer.ggml.scores")?
        .ok_or_else(|| err("missing `tokenizer.ggml.scores` (needed for SentencePiece)".into()))?;
    if scores.len() != tokens.len() {
        return Err(err(format!(
            "`tokenizer.ggml.scores` has {} entries for {} tokens",
            scores.len(),
            tokens.len()
        )));
    }
    let merges = match file.get_str_array("tokenizer.ggml.merges")? {
        Some(stored) => stored
            .iter()
            .filter_map(|m| m.split_once(' '))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect(),
        None => merges_from_scores(tokens, &scores),
    };
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab(tokens), merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(id) = file.get_usize("tokenizer.ggml.unknown_token_id")?
        && let Some(unk) = tokens.get(id)
    {
        builder = builder.unk_token((*unk).to_owned());
    }
    let bpe = builder
        .build()
        .map_err(|e| err(format!("invalid SentencePiece vocabulary: {e}")))?;
    let add_prefix = file
        .get_bool("tokenizer.ggml.add_space_prefix")?
        .unwrap_or(true);
    let replace = |from: &str, to: &str| {
        Replace::new(from, to).map_err(|e| err(format!("cannot build the normalizer: {e}")))
    };
    let mut inner = tokenizers::Tokenizer::new(bpe);
    let mut normalizers = Vec::new();
    let mut decoders: Vec<DecoderWrapper> = vec![
        replace(SPACE, " ")?.into(),
        ByteFallback::new().into(),
        Fuse::new().into(),
    ];
    if add_prefix {
        normalizers.push(Prepend::new(SPACE.to_owned()).into());
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    normalizers.push(replace(" ", SPACE)?.into());
    inner
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| err(format!("cannot set the normalizer: {e}")))?;
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok((inner, true))
}

/// Every split `(left, right)` of every token into two tokens, ranked by the merged token's score
/// (then longer left, longer right, then vocabulary order), as transformers' `generate_merges`.
pub fn merges_from_scores(tokens: &[&str], scores: &[f32]) -> Vec<(String, String)> {
    let ids: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    struct Merge<'a> {
        score: f32,
        left: &'a str,
        right: &'a str,
        left_chars: usize,
        right_chars: usize,
    }
    let mut merges = Vec::new();
    for (token, &score) in tokens.iter().zip(scores) {
        let mut local: Vec<(usize, usize, Merge)> = token
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (left, right) = token.split_at(at);
                Some((
                    *ids.get(left)?,
                    *ids.get(right)?,
                    Merge {
                        score,
                        left,
                        right,
                        left_chars: left.chars().count(),
                        right_chars: right.chars().count(),
                    },
                ))
            })
            .collect();
        local.sort_by_key(|(l, r, _)| (*l, *r));
        merges.extend(local.into_iter().map(|(_, _, m)| m));
    }
    // Stable sort, descending: ties keep the order above, as Python's `sorted(reverse=True)`.
    merges.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.left_chars.cmp(&a.left_chars))
            .then(b.right_chars.cmp(&a.right_chars))
    });
    merges
        .into_iter()
        .map(|m| (m.left.to_owned(), m.right.to_owned()))
        .collect()
}
