//! Rendering an example as text: plain text as is; conversations through the chat template, as
//! TRL's `maybe_apply_chat_template` (trl 0.23.1, `trl/data_utils.py`) does, including
//! transformers' `continue_final_message` (transformers 5.x, `utils/chat_template_utils.py`).

use super::prompt::Example;
use crate::tokenize::{Message, Tokenizer};
use crate::{Error, Result};

/// An example's prompt and completions as the text that gets tokenized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedExample {
    /// The prompt text (for conversations: the template's rendering, with the generation prompt).
    pub prompt: String,
    /// The preferred completion text.
    pub chosen: String,
    /// The dispreferred completion text.
    pub rejected: String,
}

/// transformers' marker appended to the final message to find where it ends after rendering.
const CONTINUE_TAG: &str = "CONTINUE_FINAL_MESSAGE_TAG ";

impl Example {
    /// Renders the example as text; `location` names the record in errors.
    ///
    /// Conversations follow TRL's `apply_chat_template` for preference data:
    /// 1. the prompt is rendered with `add_generation_prompt=True` when its last message is from
    ///    the `user`, or with `continue_final_message=True` when it is from the `assistant` (the
    ///    completion continues that message); any other last role is an error;
    /// 2. `prompt + chosen` and `prompt + rejected` are rendered without a generation prompt;
    /// 3. the prompt is cut to its longest common (character) prefix with `prompt + chosen`, the
    ///    chosen completion is the rest of `prompt + chosen`; then the same with `prompt + rejected`.
    ///
    /// Step 3 is a no-op for most templates; it matters when the generation prompt differs from the
    /// rendered assistant header (DeepSeek-R1's `<think>`). As in TRL, when the second cut shortens
    /// the prompt further, the chosen completion keeps the start computed by the first cut.
    pub fn render(&self, tokenizer: &Tokenizer, location: &str) -> Result<RenderedExample> {
        let (prompt, chosen, rejected) = match self {
            Example::Plain {
                prompt,
                chosen,
                rejected,
            } => {
                return Ok(RenderedExample {
                    prompt: prompt.clone(),
                    chosen: chosen.clone(),
                    rejected: rejected.clone(),
                });
            }
            Example::Chat {
                prompt,
                chosen,
                rejected,
            } => (prompt, chosen, rejected),
        };
        let in_record = |e: Error| match e {
            Error::Data { .. } => e,
            other => Error::data(location, other.to_string()),
        };
        let last_role = prompt.last().map(|m| m.role.as_str());
        let rendered_prompt = match last_role {
            Some("user") => tokenizer.apply_chat_template(prompt, true),
            Some("assistant") => continue_final_message(tokenizer, prompt, location),
            other => Err(Error::data(
                location,
                format!(
                    "the prompt's last message has role `{}`; it must be `user` (or `assistant`, to be \
                     continued by the completions)",
                    other.unwrap_or("<none>")
                ),
            )),
        }
        .map_err(in_record)?;
        let full = |completion: &[Message]| {
            let messages: Vec<Message> = prompt.iter().chain(completion).cloned().collect();
            tokenizer
                .apply_chat_template(&messages, false)
                .map_err(in_record)
        };
        let prompt_chosen = full(chosen)?;
        let prompt_text = common_prefix(&rendered_prompt, &prompt_chosen);
        let chosen_text = prompt_chosen[prompt_text.len()..].to_owned();
        let prompt_rejected = full(rejected)?;
        let prompt_text = common_prefix(prompt_text, &prompt_rejected);
        let rejected_text = prompt_rejected[prompt_text.len()..].to_owned();
        Ok(RenderedExample {
            prompt: prompt_text.to_owned(),
            chosen: chosen_text,
            rejected: rejected_text,
        })
    }
}

/// The longest common prefix of `a` and `b`, compared character by character; a prefix of `a`.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let end = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i);
    &a[..end]
}

/// transformers' `continue_final_message=True`: renders the conversation without a generation
/// prompt and ends the text right after the final message's content, so a completion continues
/// it. The content gets a marker appended; the rendering is cut where the marker starts, and
/// trailing whitespace is dropped when the template trimmed the content (the marker's space is gone).
fn continue_final_message(
    tokenizer: &Tokenizer,
    messages: &[Message],
    location: &str,
) -> Result<String> {
    let template = tokenizer.chat_template().map(|t| t.source()).unwrap_or("");
    if !template.contains("content") {
        return Err(Error::data(
            location,
            "the prompt ends with an `assistant` message to continue, but the chat template never reads \
             `content`; end the prompt with a `user` message",
        ));
    }
    let mut tagged = messages.to_vec();
    let final_content = match tagged.last_mut() {
        Some(last) => {
            let content = last.content.clone();
            last.content.push_str(CONTINUE_TAG);
            content
        }
        None => return Err(Error::data(location, "the prompt has no messages")),
    };
    let rendered = tokenizer.apply_chat_template(&tagged, false)?;
    let marker = CONTINUE_TAG.trim();
    let tag_at = match rendered.rfind(marker) {
        Some(at) if rendered.contains(final_content.trim()) => at,
        _ => {
            return Err(Error::data(
                location,
                format!(
                    "the prompt's final `assistant` message does not appear in the rendered chat, so it \
                     cannot be continued (the chat template drops part of it): {rendered:?}"
                ),
            ));
        }
    };
    let kept = &rendered[..tag_at];
    if rendered[tag_at..].starts_with(CONTINUE_TAG) {
        Ok(kept.to_owned())
    } else {
        Ok(kept.trim_end().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::{common_prefix, continue_final_message};
    use crate::tokenize::{ChatTemplate, Message, SpecialTokens, Tokenizer};

    #[test]
    fn common_prefix_compares_characters() {
        assert_eq!(common_prefix("café au", "café ol"), "café ");
        assert_eq!(common_prefix("ab", "abc"), "ab");
        assert_eq!(common_prefix("abc", "ab"), "ab");
        assert_eq!(common_prefix("é", "è"), "");
    }

    /// Expected strings from transformers 5.24:
    /// `tok.apply_chat_template(messages, chat_template=t, tokenize=False, continue_final_message=True)`
    /// with `messages = [user "hi", assistant "The quick\n"]`.
    #[test]
    fn continue_final_message_matches_transformers() {
        let messages = [
            Message::new("user", "hi"),
            Message::new("assistant", "The quick\n"),
        ];
        let cases = [
            // The template trims the content and no space follows: the trailing newline goes.
            (
                "{% for m in messages %}[{{ m.role }}] {{ m.content | trim }}\n<end>\n{% endfor %}",
                "[user] hi\n<end>\n[assistant] The quick",
            ),
            // A space follows the trimmed content, so the marker looks untouched: text kept as is.
            (
                "{% for m in messages %}[{{ m.role }}] {{ m.content | trim }} <end>\n{% endfor %}",
                "[user] hi <end>\n[assistant] The quick\n",
            ),
            (
                "{% for m in messages %}[{{ m.role }}] {{ m.content }}<end>\n{% endfor %}",
                "[user] hi<end>\n[assistant] The quick\n",
            ),
        ];
        for (template, expected) in cases {
            let tokenizer = Tokenizer::from_parts(
                tokenizers::Tokenizer::new(tokenizers::models::wordlevel::WordLevel::default()),
                SpecialTokens::default(),
                Some(ChatTemplate::new(template).unwrap()),
                serde_json::json!({}),
            );
            let rendered = continue_final_message(&tokenizer, &messages, "x:1").unwrap();
            assert_eq!(rendered, expected, "{template}");
        }
    }
}
