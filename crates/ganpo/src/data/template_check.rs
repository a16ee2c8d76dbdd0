//! Chat-template problems that rendering does not refuse (`ganpo check-data`): a generation prompt
//! that is not how the template starts the assistant turn (the prompt is then cut back to the
//! shared text, as TRL does, and the completion starts with template markup), and a template that
//! drops a completion's content (some templates strip or rewrite assistant turns).

use super::prompt::Example;
use super::record::Record;
use super::warnings::{DataWarning, WarningKind};
use crate::tokenize::Tokenizer;

/// The template warnings of `record` (none for plain text, or when rendering fails: that error is
/// reported elsewhere).
pub fn template_warnings(record: &Record, tokenizer: &Tokenizer) -> Vec<DataWarning> {
    let Ok(example) = record.clone().into_example() else {
        return Vec::new();
    };
    let Example::Chat {
        prompt,
        chosen,
        rejected,
    } = &example
    else {
        return Vec::new();
    };
    let Ok(rendered) = example.render(tokenizer, &record.location) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut warn = |detail: String| {
        out.push(DataWarning {
            location: record.location.clone(),
            kind: WarningKind::ChatTemplate,
            detail,
        })
    };
    if prompt.last().is_some_and(|m| m.role == "user")
        && let Ok(generation) = tokenizer.apply_chat_template(prompt, true)
        && generation.len() > rendered.prompt.len()
    {
        warn(format!(
            "the generation prompt {:?} is not how the template renders the assistant turn; the prompt was cut back to the shared text",
            &generation[rendered.prompt.len()..]
        ));
    }
    for (name, messages, text) in [
        ("chosen", chosen, &rendered.chosen),
        ("rejected", rejected, &rendered.rejected),
    ] {
        if let Some(m) = messages
            .iter()
            .find(|m| !m.content.trim().is_empty() && !text.contains(m.content.trim()))
        {
            warn(format!(
                "the template drops or rewrites the `{name}` message {:?}",
                super::record::preview(&m.content)
            ));
        }
    }
    out
}
