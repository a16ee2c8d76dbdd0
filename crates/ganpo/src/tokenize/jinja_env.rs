//! The minijinja environment that stands in for transformers' chat-template sandbox
//! (`transformers.utils.chat_template_utils._compile_jinja_template`): `trim_blocks` and
//! `lstrip_blocks`, loop controls, `raise_exception`, `strftime_now`, its `tojson`, Python's `str()`
//! for output, Python string methods, and the `{% generation %}` block.

use minijinja::value::Value;
use minijinja::{Environment, ErrorKind};

use super::py_json::tojson_filter;
use super::py_methods::{trim_filter, unknown_method};
use super::py_values::{join_filter, python_formatter, string_filter};
use super::strftime::CivilDateTime;
use crate::{Error, Result};

/// The name the template is registered under; it appears in render errors.
pub(super) const TEMPLATE_NAME: &str = "chat_template";

/// Where `strftime_now` reads the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Clock {
    /// The current UTC time.
    #[default]
    SystemUtc,
    /// A fixed time, for reproducible renders.
    Fixed(CivilDateTime),
}

impl Clock {
    fn now(self) -> CivilDateTime {
        match self {
            Clock::SystemUtc => CivilDateTime::now_utc(),
            Clock::Fixed(t) => t,
        }
    }
}

/// The message of a template's `raise_exception(...)`, attached to the render error as its source so
/// that the caller can report the template's own words.
#[derive(Debug)]
pub(super) struct Raised(pub String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

fn raise_exception(message: Value) -> std::result::Result<Value, minijinja::Error> {
    let message = message
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| super::py_values::py_str(&message));
    Err(
        minijinja::Error::new(ErrorKind::InvalidOperation, message.clone())
            .with_source(Raised(message)),
    )
}

/// Replaces transformers' `{% generation %}` / `{% endgeneration %}` tags (which mark assistant text for
/// `return_assistant_tokens_mask` and otherwise just render their body) with `{% if true %}` /
/// `{% endif %}`, keeping any whitespace-control marks.
pub(super) fn rewrite_generation_tags(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let body = inner
            .trim_start_matches(['-', '+'])
            .trim_end_matches(['-', '+']);
        let replacement = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(word) => {
                let lead = &inner[..inner.len() - inner.trim_start_matches(['-', '+']).len()];
                let trail = &inner[inner.trim_end_matches(['-', '+']).len()..];
                out.push_str(&format!("{{%{lead} {word} {trail}%}}"));
            }
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Compiles `source` into an environment configured like transformers' sandbox.
pub(super) fn build(source: &str, clock: Clock) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| Error::Tokenizer(format!("chat template syntax: {e}")))?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(unknown_method);
    env.set_formatter(python_formatter);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", move |format: &str| {
        clock.now().strftime(format)
    });
    env.add_filter("tojson", tojson_filter);
    env.add_filter("string", string_filter);
    env.add_filter("trim", trim_filter);
    env.add_filter("join", join_filter);
    env.add_template_owned(TEMPLATE_NAME, rewrite_generation_tags(source))
        .map_err(|e| Error::Tokenizer(format!("chat template does not compile: {e}")))?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_become_plain_blocks() {
        assert_eq!(
            rewrite_generation_tags("a{%- generation %}b{% endgeneration -%}c{% if x %}"),
            "a{%- if true %}b{% endif -%}c{% if x %}"
        );
    }
}
