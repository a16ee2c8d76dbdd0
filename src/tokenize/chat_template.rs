//! Hugging Face chat templates (Jinja) rendered with `minijinja`, with the helpers that
//! transformers' `apply_chat_template` provides: `raise_exception`, Python string methods,
//! `bos_token` / `eos_token`, `add_generation_prompt`.

use serde::{Deserialize, Serialize};

use super::SpecialTokens;
use crate::{Error, Result};

/// One chat message.
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
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
}

const TEMPLATE_NAME: &str = "chat_template";

fn raise_exception(message: String) -> std::result::Result<String, minijinja::Error> {
    Err(minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        message,
    ))
}

impl ChatTemplate {
    /// Compiles a template, checking its syntax now rather than at first use.
    pub fn new(source: impl Into<String>) -> Result<Self> {
        let template = ChatTemplate {
            source: source.into(),
        };
        template.environment()?;
        Ok(template)
    }

    /// The template's Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    fn environment(&self) -> Result<minijinja::Environment<'_>> {
        let mut env = minijinja::Environment::new();
        // Python semantics for `.strip()`, `.startswith()`, `.items()` and the like.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        // transformers renders chat templates with trim_blocks and lstrip_blocks.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| Error::Tokenizer(format!("chat template syntax: {e}")))?;
        env.set_syntax(syntax);
        env.add_template(TEMPLATE_NAME, &self.source)
            .map_err(|e| Error::Tokenizer(format!("chat template does not compile: {e}")))?;
        Ok(env)
    }

    /// Renders the conversation; with `add_generation_prompt` the template appends the header
    /// that starts the assistant's turn.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        special: &SpecialTokens,
    ) -> Result<String> {
        let env = self.environment()?;
        let template = env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::Tokenizer(format!("chat template: {e}")))?;
        let text = |t: &Option<super::SpecialToken>| {
            t.as_ref().map(|t| t.text.clone()).unwrap_or_default()
        };
        template
            .render(minijinja::context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => add_generation_prompt,
                bos_token => text(&special.bos),
                eos_token => text(&special.eos),
                pad_token => text(&special.pad),
                unk_token => text(&special.unk),
            })
            .map_err(|e| Error::Tokenizer(format!("chat template failed to render: {e}")))
    }
}
