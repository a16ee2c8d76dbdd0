//! Hugging Face chat templates (Jinja), rendered with `minijinja` so that the text matches
//! transformers' `apply_chat_template(..., tokenize=False)` byte for byte; see `jinja_env` for the
//! helpers and Python semantics this takes, and tests/chat_templates.rs for the golden comparison.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Environment;
use serde::{Deserialize, Serialize};

use super::SpecialTokens;
use super::chat::Chat;
use super::jinja_env::{self, Clock, Raised, TEMPLATE_NAME};
use super::strftime::CivilDateTime;
use crate::{Error, Result};

/// One chat message with plain-text content (use [`Chat`] for tool calls or structured content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message with the given role and content.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template.
#[derive(Clone)]
pub struct ChatTemplate {
    source: Arc<str>,
    clock: Clock,
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("clock", &self.clock)
            .finish()
    }
}

/// The template's own words when it called `raise_exception(...)`.
fn raised_message(error: &minijinja::Error) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(raised) = e.downcast_ref::<Raised>() {
            return Some(raised.0.clone());
        }
        source = e.source();
    }
    None
}

impl ChatTemplate {
    /// Compiles a template, checking its syntax now rather than at first use.
    pub fn new(source: impl Into<String>) -> Result<Self> {
        let source: Arc<str> = source.into().into();
        let clock = Clock::default();
        let env = Arc::new(jinja_env::build(&source, clock)?);
        Ok(ChatTemplate { source, clock, env })
    }

    /// The same template with `strftime_now` pinned to `time` instead of the current UTC time, so
    /// that templates which stamp today's date (Llama 3.1+) render reproducibly.
    pub fn with_fixed_time(self, time: CivilDateTime) -> Result<Self> {
        let clock = Clock::Fixed(time);
        let env = Arc::new(jinja_env::build(&self.source, clock)?);
        Ok(ChatTemplate {
            source: self.source,
            clock,
            env,
        })
    }

    /// The time `strftime_now` reports, if pinned with [`ChatTemplate::with_fixed_time`].
    pub fn fixed_time(&self) -> Option<CivilDateTime> {
        match self.clock {
            Clock::Fixed(t) => Some(t),
            Clock::SystemUtc => None,
        }
    }

    /// The template's Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the conversation; with `add_generation_prompt` the template appends the header
    /// that starts the assistant's turn.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        special: &SpecialTokens,
    ) -> Result<String> {
        self.render_chat(
            &Chat::from_messages(messages, add_generation_prompt),
            special,
        )
    }

    /// Renders a [`Chat`] (tools, structured messages, extra variables) the way transformers'
    /// `apply_chat_template(..., tokenize=False)` does: the template sees `messages`, `tools`,
    /// `documents`, `add_generation_prompt`, the special tokens that are set (`bos_token`,
    /// `eos_token`, `pad_token`, `unk_token`) and the chat's extra variables.
    ///
    /// A template that rejects the conversation with `raise_exception("...")` (Gemma on a system
    /// message, Mistral on roles that do not alternate) yields an [`Error::Tokenizer`] carrying its
    /// message.
    pub fn render_chat(&self, chat: &Chat, special: &SpecialTokens) -> Result<String> {
        let messages = chat.normalized_messages()?;
        let json = |v: &serde_json::Value| minijinja::Value::from(minijinja::value::Serde(v));
        let json_list = |v: &Option<Vec<serde_json::Value>>| match v {
            Some(items) => minijinja::Value::from(minijinja::value::Serde(items)),
            None => minijinja::Value::from(()),
        };
        let mut context: BTreeMap<String, minijinja::Value> = BTreeMap::new();
        for (name, token) in [
            ("bos_token", &special.bos),
            ("eos_token", &special.eos),
            ("pad_token", &special.pad),
            ("unk_token", &special.unk),
        ] {
            if let Some(token) = token {
                context.insert(name.into(), minijinja::Value::from(token.text.as_str()));
            }
        }
        for (name, value) in &chat.kwargs {
            context.insert(name.clone(), json(value));
        }
        context.insert(
            "messages".into(),
            minijinja::Value::from(minijinja::value::Serde(&messages)),
        );
        context.insert("tools".into(), json_list(&chat.tools));
        context.insert("documents".into(), json_list(&chat.documents));
        context.insert(
            "add_generation_prompt".into(),
            minijinja::Value::from(chat.add_generation_prompt),
        );
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::Tokenizer(format!("chat template: {e}")))?;
        template
            .render(context)
            .map_err(|e| match raised_message(&e) {
                Some(message) => Error::Tokenizer(format!(
                    "the chat template rejected this conversation: {message}"
                )),
                None => Error::Tokenizer(format!("chat template failed to render: {e}")),
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn special() -> SpecialTokens {
        SpecialTokens {
            bos: Some(super::super::SpecialToken {
                text: "<s>".into(),
                id: 1,
            }),
            ..SpecialTokens::default()
        }
    }

    #[test]
    fn raise_exception_surfaces_the_template_message() {
        let t = ChatTemplate::new(
            "{{ raise_exception('Roles must alternate, got ' ~ messages[0].role) }}",
        )
        .unwrap();
        let err = t
            .render(&[Message::new("system", "x")], false, &special())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("rejected this conversation: Roles must alternate, got system"),
            "{text}"
        );
    }

    #[test]
    fn unset_special_tokens_are_undefined_and_tools_are_none() {
        let t = ChatTemplate::new(
            "{{ bos_token is defined }} {{ eos_token is defined }} {{ tools is none }} {{ documents is none }}",
        )
        .unwrap();
        let out = t
            .render(&[Message::new("user", "x")], false, &special())
            .unwrap();
        assert_eq!(out, "True False True True");
    }

    #[test]
    fn compile_and_render_errors_are_tokenizer_errors_naming_the_problem() {
        let err = ChatTemplate::new("{% for m in messages %}").unwrap_err();
        assert!(matches!(err, Error::Tokenizer(_)));
        assert!(err.to_string().contains("does not compile"), "{err}");
        let t = ChatTemplate::new("{{ messages[0].content.missing.deeper }}").unwrap();
        let err = t
            .render(&[Message::new("user", "x")], false, &special())
            .unwrap_err();
        assert!(err.to_string().contains("failed to render"), "{err}");
    }

    #[test]
    fn fixed_time_feeds_strftime_now() {
        let t = ChatTemplate::new("{{ strftime_now('%d %b %Y') }}")
            .unwrap()
            .with_fixed_time(CivilDateTime::new(2024, 7, 26, 0, 0, 0).unwrap())
            .unwrap();
        assert_eq!(
            t.render(&[Message::new("user", "x")], false, &special())
                .unwrap(),
            "26 Jul 2024"
        );
    }

    #[test]
    fn structured_content_and_kwargs_reach_the_template() {
        let t = ChatTemplate::new(
            "{% for part in messages[0].content %}{{ part.text }}{% endfor %}|{{ custom | tojson }}",
        )
        .unwrap();
        let chat = Chat {
            messages: vec![json!({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})],
            ..Chat::default()
        }
        .with_kwarg("custom", json!({"z": 1, "a": [true, null]}));
        assert_eq!(
            t.render_chat(&chat, &special()).unwrap(),
            "ab|{\"z\": 1, \"a\": [true, null]}"
        );
    }
}
