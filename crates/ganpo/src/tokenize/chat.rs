//! A conversation as transformers' `apply_chat_template` takes it: messages in the open JSON format
//! (string or structured content, `tool_calls`, `reasoning_content`, ...), tool schemas, documents and
//! extra template variables, normalized the way transformers normalizes them before rendering.

use serde_json::{Map, Value};

use super::Message;
use crate::{Error, Result};

/// The names a message's reasoning comes under; transformers copies the first non-null one into
/// `thinking` (first key) and `reasoning_content` (`_alias_reasoning_fields`).
const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "thinking", "reasoning"];

/// Template variables that transformers passes itself; extra variables may not reuse them.
const RESERVED: [&str; 4] = ["messages", "tools", "documents", "add_generation_prompt"];

/// Everything a chat template sees besides the special tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chat {
    /// The messages: JSON objects with at least `role`; `content` is a string or a list of parts.
    pub messages: Vec<Value>,
    /// Append the header that opens the assistant's turn.
    pub add_generation_prompt: bool,
    /// Tool (function) JSON schemas, or `None` (the template then sees `tools` as `none`).
    pub tools: Option<Vec<Value>>,
    /// Documents for retrieval-augmented templates, or `None`.
    pub documents: Option<Vec<Value>>,
    /// Extra template variables (transformers' `**kwargs`), e.g. `date_string`, `builtin_tools`,
    /// `enable_thinking`. They override the special-token variables of the same name.
    pub kwargs: Map<String, Value>,
}

impl Chat {
    /// A chat of plain role/content messages.
    pub fn from_messages(messages: &[Message], add_generation_prompt: bool) -> Self {
        let messages = messages
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("role".into(), Value::String(m.role.clone()));
                o.insert("content".into(), Value::String(m.content.clone()));
                Value::Object(o)
            })
            .collect();
        Chat {
            messages,
            add_generation_prompt,
            ..Chat::default()
        }
    }

    /// Adds tool schemas.
    pub fn with_tools(mut self, tools: Vec<Value>) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Adds one extra template variable.
    pub fn with_kwarg(mut self, name: impl Into<String>, value: Value) -> Self {
        self.kwargs.insert(name.into(), value);
        self
    }

    /// The messages as the template sees them: keys whose value is `null` dropped (transformers'
    /// `_normalize_chat_messages`), then reasoning aliased (`_alias_reasoning_fields`).
    pub(super) fn normalized_messages(&self) -> Result<Vec<Value>> {
        if self.messages.is_empty() {
            return Err(Error::Tokenizer(
                "cannot apply a chat template to an empty conversation".into(),
            ));
        }
        if let Some(name) = self.kwargs.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(Error::Tokenizer(format!(
                "extra chat template variable `{name}` clashes with the variable transformers sets itself"
            )));
        }
        self.messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                let Value::Object(fields) = message else {
                    return Err(Error::Tokenizer(format!(
                        "chat message {i} must be a JSON object with a `role`, got {message}"
                    )));
                };
                let fields: Map<String, Value> = fields
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Ok(Value::Object(alias_reasoning(fields)))
            })
            .collect()
    }
}

/// `{"thinking": r, **message, "reasoning_content": r}` when the message carries reasoning `r`.
fn alias_reasoning(message: Map<String, Value>) -> Map<String, Value> {
    let Some(reasoning) = REASONING_FIELDS
        .iter()
        .find_map(|k| message.get(*k).filter(|v| !v.is_null()).cloned())
    else {
        return message;
    };
    let mut out = Map::new();
    out.insert("thinking".into(), reasoning.clone());
    for (k, v) in message {
        out.insert(k, v);
    }
    out.insert("reasoning_content".into(), reasoning);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nulls_are_dropped_and_reasoning_is_aliased_in_python_key_order() {
        let chat = Chat {
            messages: vec![
                json!({"role": "assistant", "content": "A", "reasoning": "R", "tool_calls": null}),
            ],
            ..Chat::default()
        };
        let normalized = chat.normalized_messages().unwrap();
        let keys: Vec<&String> = normalized[0].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "thinking",
                "role",
                "content",
                "reasoning",
                "reasoning_content"
            ]
        );
    }

    #[test]
    fn malformed_chats_are_rejected() {
        assert!(Chat::default().normalized_messages().is_err());
        let not_object = Chat {
            messages: vec![json!("hello")],
            ..Chat::default()
        };
        assert!(not_object.normalized_messages().is_err());
        let clash = Chat::from_messages(&[Message::new("user", "x")], false)
            .with_kwarg("messages", json!([]));
        assert!(clash.normalized_messages().is_err());
    }
}
