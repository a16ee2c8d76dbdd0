//! The demo model's tokenizer: a byte-level BPE trained with the `tokenizers` crate on the task's
//! text, with ChatML special tokens and a ChatML chat template, so the demo runs through the same
//! tokenizer and template code paths as a real instruct model.

use ganpo::tokenize::{ChatTemplate, SpecialToken, SpecialTokens, Tokenizer};
use ganpo::{Error, Result};
use tokenizers::AddedToken;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainer};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

/// Beginning of a chat turn (also the BOS token, as in SmolLM2).
pub const IM_START: &str = "<|im_start|>";
/// End of a chat turn (also EOS).
pub const IM_END: &str = "<|im_end|>";
/// Padding.
pub const PAD: &str = "<|pad|>";

/// ChatML, as SmolLM2 and Qwen2.5 use it.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Trains a byte-level BPE of about `vocab_size` tokens on `corpus`.
pub fn train_tokenizer(corpus: &[String], vocab_size: usize) -> Result<Tokenizer> {
    let specials = [IM_START, IM_END, PAD];
    let mut inner = tokenizers::Tokenizer::new(BPE::default());
    inner.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    inner.with_decoder(Some(ByteLevel::default()));
    inner.with_post_processor(Some(ByteLevel::default().trim_offsets(false)));
    let mut trainer: TrainerWrapper = BpeTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(
            specials
                .iter()
                .map(|s| AddedToken::from(s.to_string(), true))
                .collect(),
        )
        .build()
        .into();
    inner
        .train(&mut trainer, corpus.iter())
        .map_err(|e| Error::Tokenizer(format!("training the demo tokenizer: {e}")))?;
    let id = |text: &str| -> Result<SpecialToken> {
        let id = inner
            .token_to_id(text)
            .ok_or_else(|| Error::Tokenizer(format!("{text} missing after training")))?;
        Ok(SpecialToken {
            text: text.to_string(),
            id,
        })
    };
    let special = SpecialTokens {
        bos: Some(id(IM_START)?),
        eos: Some(id(IM_END)?),
        pad: Some(id(PAD)?),
        unk: None,
    };
    let config = serde_json::json!({
        "add_bos_token": false,
        "model_max_length": 512,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    Ok(Tokenizer::from_parts(
        inner,
        special,
        Some(ChatTemplate::new(CHATML_TEMPLATE)?),
        config,
    ))
}
