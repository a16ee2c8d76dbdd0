//! The tokenizer stored in GGUF metadata (`tokenizer.ggml.*`), rebuilt as a Hugging Face
//! `tokenizers` object with its special tokens, BOS/EOS policy and chat template.
//!
//! Supported: byte-level BPE (`tokenizer.ggml.model = "gpt2"`: Llama 3, SmolLM, Qwen2, GPT-2 ...,
//! see [`byte_level`]) and SentencePiece BPE (`"llama"`: Llama 1/2, Mistral v0.1, TinyLlama ...,
//! see [`sentencepiece`]). Tokens marked control (type 3) or unknown (2) become special added
//! tokens and user-defined ones (type 4) plain added tokens, so all are matched whole in text, as
//! llama.cpp and transformers do.

use serde_json::json;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PostProcessorWrapper};

use super::file::GgufFile;
use super::{byte_level, sentencepiece};
use crate::tokenize::{ChatTemplate, SpecialToken, SpecialTokens, Tokenizer};
use crate::{Error, Result};

/// llama.cpp's token types (`LLAMA_TOKEN_TYPE_*`).
const TOKEN_TYPE_UNKNOWN: i64 = 2;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Builds the tokenizer described by `file`'s metadata.
pub fn tokenizer_from_gguf(file: &GgufFile) -> Result<Tokenizer> {
    let err = |m: String| Error::model(file.path(), m);
    let model = file.get_str("tokenizer.ggml.model")?.ok_or_else(|| {
        err("no tokenizer in this GGUF file (`tokenizer.ggml.model` is missing)".into())
    })?;
    let tokens = file
        .get_str_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| err("missing `tokenizer.ggml.tokens`".into()))?;
    let types = file
        .get_int_array("tokenizer.ggml.token_type")?
        .unwrap_or_default();
    if !types.is_empty() && types.len() != tokens.len() {
        return Err(err(format!(
            "`tokenizer.ggml.token_type` has {} entries for {} tokens",
            types.len(),
            tokens.len()
        )));
    }
    let (mut inner, bos_by_default) = match model {
        "gpt2" => byte_level::build(file, &tokens)?,
        "llama" => sentencepiece::build(file, &tokens)?,
        other => {
            return Err(err(format!(
                "unsupported tokenizer `tokenizer.ggml.model = {other}`; ganpo reads byte-level BPE (`gpt2`) and SentencePiece BPE (`llama`)"
            )));
        }
    };

    // llama.cpp treats the unknown token (SentencePiece's `<unk>`) like a control token, and
    // Llama's tokenizer.json lists it among the special added tokens.
    let added = |wanted: &[i64], special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| wanted.contains(t))
            .map(|(text, _)| AddedToken::from(*text, special).normalized(false))
            .collect()
    };
    inner
        .add_special_tokens(added(&[TOKEN_TYPE_CONTROL, TOKEN_TYPE_UNKNOWN], true))
        .map_err(|e| err(format!("cannot add the control tokens: {e}")))?;
    inner
        .add_tokens(added(&[TOKEN_TYPE_USER_DEFINED], false))
        .map_err(|e| err(format!("cannot add the user-defined tokens: {e}")))?;

    let special_token = |key: &str| -> Result<Option<SpecialToken>> {
        let Some(id) = file.get_usize(key)? else {
            return Ok(None);
        };
        let text = tokens.get(id).ok_or_else(|| {
            err(format!(
                "`{key}` = {id} is outside the vocabulary of {} tokens",
                tokens.len()
            ))
        })?;
        Ok(Some(SpecialToken {
            text: (*text).to_owned(),
            id: id as u32,
        }))
    };
    let special = SpecialTokens {
        bos: special_token("tokenizer.ggml.bos_token_id")?,
        eos: special_token("tokenizer.ggml.eos_token_id")?,
        pad: special_token("tokenizer.ggml.padding_token_id")?,
        unk: special_token("tokenizer.ggml.unknown_token_id")?,
    };
    let add_bos = file
        .get_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(bos_by_default);
    let add_eos = file
        .get_bool("tokenizer.ggml.add_eos_token")?
        .unwrap_or(false);
    if let Some(processor) = template_processor(&special, add_bos, add_eos).map_err(&err)? {
        inner.with_post_processor(Some(processor));
    }

    let chat_template = file
        .get_str("tokenizer.chat_template")?
        .map(|s| ChatTemplate::new(s.to_owned()))
        .transpose()?;
    let config_json = json!({
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        "clean_up_tokenization_spaces": false,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    Ok(Tokenizer::from_parts(
        inner,
        special,
        chat_template,
        config_json,
    ))
}

/// `token` if `wanted`; an error if wanted but the file names no such token.
fn wanted_token<'a>(
    wanted: bool,
    token: &'a Option<SpecialToken>,
    name: &str,
) -> std::result::Result<Option<&'a SpecialToken>, String> {
    match (wanted, token) {
        (false, _) => Ok(None),
        (true, Some(t)) => Ok(Some(t)),
        (true, None) => Err(format!(
            "`tokenizer.ggml.add_{name}_token` is true but there is no `tokenizer.ggml.{name}_token_id`"
        )),
    }
}

/// The post-processor that adds BOS and/or EOS around each sequence (Llama 3's
/// `TemplateProcessing`), or `None` when neither is added.
fn template_processor(
    special: &SpecialTokens,
    add_bos: bool,
    add_eos: bool,
) -> std::result::Result<Option<PostProcessorWrapper>, String> {
    if !add_bos && !add_eos {
        return Ok(None);
    }
    let bos = wanted_token(add_bos, &special.bos, "bos")?;
    let eos = wanted_token(add_eos, &special.eos, "eos")?;
    // `[BOS] $X [EOS]`, every piece tagged with the sequence's type id.
    let sequence = |x: &str, type_id: u32| -> Vec<String> {
        let tag = |t: &SpecialToken| format!("{}:{type_id}", t.text);
        bos.map(tag)
            .into_iter()
            .chain([format!("${x}:{type_id}")])
            .chain(eos.map(tag))
            .collect()
    };
    let mut pair = sequence("A", 0);
    pair.extend(sequence("B", 1));
    let tokens: Vec<(String, u32)> = bos
        .into_iter()
        .chain(eos)
        .map(|t| (t.text.clone(), t.id))
        .collect();
    let processor = TemplateProcessing::builder()
        .try_single(sequence("A", 0))
        .and_then(|b| b.try_pair(pair))
        .map_err(|e| format!("invalid BOS/EOS template: {e}"))?
        .special_tokens(tokens)
        .build()
        .map_err(|e| format!("invalid BOS/EOS template: {e}"))?;
    Ok(Some(processor.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::wordlevel::WordLevel;

    fn token(text: &str, id: u32) -> Option<SpecialToken> {
        Some(SpecialToken {
            text: text.into(),
            id,
        })
    }

    #[test]
    fn bos_and_eos_wrap_each_sequence() -> tokenizers::Result<()> {
        let vocab = [("<s>", 0), ("</s>", 1), ("a", 2), ("b", 3)]
            .into_iter()
            .map(|(t, i)| (t.to_string(), i))
            .collect();
        let mut tok = tokenizers::Tokenizer::new(WordLevel::builder().vocab(vocab).build()?);
        tok.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
        let special = SpecialTokens {
            bos: token("<s>", 0),
            eos: token("</s>", 1),
            ..Default::default()
        };
        tok.with_post_processor(template_processor(&special, true, true)?);
        assert_eq!(tok.encode("a b", true)?.get_ids(), &[0, 2, 3, 1]);
        assert_eq!(tok.encode(("a", "b"), true)?.get_ids(), &[0, 2, 1, 0, 3, 1]);
        tok.with_post_processor(template_processor(&special, false, true)?);
        assert_eq!(tok.encode("a", true)?.get_ids(), &[2, 1]);
        assert!(template_processor(&special, false, false)?.is_none());
        let no_eos = SpecialTokens {
            bos: token("<s>", 0),
            ..Default::default()
        };
        let err = template_processor(&no_eos, true, true).unwrap_err();
        assert!(err.contains("add_eos_token"), "{err}");
        Ok(())
    }
}
