//! Where a bad config value came from: a line of the TOML file, or a `--set` override. Turns
//! toml's deserialization errors (which carry a span into the text, or the key path when read from
//! an edited document) into `file:line: key: message` or `--set key=value: message`.

/// The dotted key an override sets (`training.learning_rate` for `training.learning_rate=1e-6`).
fn override_key(item: &str) -> &str {
    item.split_once('=').map_or(item, |(k, _)| k).trim()
}

/// The override that set `key` or a key inside it (or the table holding it), if any; the last one
/// wins, as when applying them.
pub(crate) fn override_for<'a>(key: &str, overrides: &'a [String]) -> Option<&'a str> {
    overrides
        .iter()
        .rev()
        .find(|item| {
            let k = override_key(item);
            k == key
                || key
                    .strip_prefix(k)
                    .is_some_and(|rest| rest.starts_with('.'))
                || k.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .map(String::as_str)
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key path toml reports for an error read from a document (`in `a.b``), if any.
fn key_path(error: &toml::de::Error) -> Option<String> {
    let mut bare = error.clone();
    bare.set_input(None);
    let text = bare.to_string();
    let start = text.find("in `")? + 4;
    let end = text[start..].find('`')? + start;
    Some(text[start..end].to_string())
}

/// toml's message with serde's wording for a type error made plainer.
fn plain(message: &str) -> String {
    message.trim().replace("invalid type: ", "wrong type: ")
}

/// The message for a config (file `origin` holding `text`, then `overrides`) that failed to
/// deserialize with `merged`: blames the `--set` that set the key, else the file's line.
pub(crate) fn describe_toml_error(
    merged: &toml::de::Error,
    text: &str,
    overrides: &[String],
    origin: &str,
) -> String {
    let key = key_path(merged);
    let message = plain(merged.message());
    let hint = "see the README's config reference for every key and its type";
    if let Some(item) = key.as_deref().and_then(|k| override_for(k, overrides)) {
        let key = key.as_deref().unwrap_or_default();
        return format!("--set {item}: `{key}`: {message}; {hint}");
    }
    // Deserializing the file alone gives the span of the bad value (or key) in the text, when
    // the file alone fails the same way (else an override caused it, or hid another problem).
    let spanned = toml::from_str::<super::train::TrainConfig>(text)
        .err()
        .filter(|e| e.message() == merged.message())
        .and_then(|e| e.span().map(|s| (line_of(text, s.start), e)));
    match (spanned, key) {
        (Some((line, e)), key) => {
            let key = key.or_else(|| key_path(&e));
            let at = key.map(|k| format!(" `{k}`:")).unwrap_or_default();
            format!("{origin}:{line}:{at} {}; {hint}", plain(e.message()))
        }
        (None, key) if !overrides.is_empty() => {
            // An unknown key names no path; find the override that introduced it.
            let culprit = overrides.iter().find(|item| {
                override_key(item)
                    .split('.')
                    .any(|segment| message.contains(&format!("`{segment}`")))
            });
            let at = key.map(|k| format!(" `{k}`:")).unwrap_or_default();
            match culprit {
                Some(item) => format!("--set {item}:{at} {message}; {hint}"),
                None => format!(
                    "{origin} with --set {}:{at} {message}; {hint}",
                    overrides.join(" --set ")
                ),
            }
        }
        (None, Some(key)) => format!("{origin}: `{key}`: {message}; {hint}"),
        (None, None) => format!("{origin}: {message}; {hint}"),
    }
}
