//! Byte-level BPE from GGUF metadata (`tokenizer.ggml.model = "gpt2"`: GPT-2, Llama 3, SmolLM,
//! Qwen2 ...): the vocabulary is already spelled in GPT-2's byte alphabet and the merges are
//! stored, so the model is a plain `tokenizers` BPE behind the family's pre-tokenizer.

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::models::bpe::{BPE, Vocab};

use super::file::GgufFile;
use super::pre_tokenizer::PreFamily;
use crate::{Error, Result};

/// The tokenizer (without added tokens or post-processor) and whether llama.cpp adds BOS by
/// default for this pre-tokenizer family.
pub fn build(file: &GgufFile, tokens: &[&str]) -> Result<(tokenizers::Tokenizer, bool)> {
    let err = |m: String| Error::model(file.path(), m);
    let merges = file
        .get_str_array("tokenizer.ggml.merges")?
        .ok_or_else(|| err("missing `tokenizer.ggml.merges` (needed for BPE)".into()))?;
    let family = PreFamily::parse(file.get_str("tokenizer.ggml.pre")?).map_err(&err)?;
    let merges = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| {
                    err(format!(
                        "merge {i} `{m}` is not two tokens separated by a space"
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab(tokens), merges)
        .ignore_merges(family.ignore_merges())
        .build()
        .map_err(|e| err(format!("invalid BPE vocabulary or merges: {e}")))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(family.pre_tokenizer().map_err(&err)?));
    inner.with_decoder(Some(ByteLevel::default()));
    Ok((inner, family.adds_bos_by_default()))
}

/// Token → id. Later duplicates win, as in llama.cpp's `token_to_id` and transformers' vocab dict.
pub fn vocab(tokens: &[&str]) -> Vocab {
    tokens
        .iter()
        .enumerate()
        .map(|(id, t)| ((*t).to_owned(), id as u32))
        .collect()
}
