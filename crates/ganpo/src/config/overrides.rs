//! `--set key.path=value` overrides applied to a TOML document before it is deserialized, so
//! overrides go through exactly the same strict validation as the file.

use crate::{Error, Result};

/// Parses the right-hand side of an override as a TOML value (`0.1`, `true`, `"text"`, `[1, 2]`),
/// falling back to a plain string for bare words (`--set loss.type=ipo`).
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

/// Applies `key.path=value` overrides to `doc`, creating intermediate tables as needed.
pub fn apply_overrides(doc: &mut toml::Table, overrides: &[String]) -> Result<()> {
    for item in overrides {
        let (key, raw) = item.split_once('=').ok_or_else(|| {
            Error::Config(format!(
                "override `{item}` is not `key=value` (e.g. --set training.learning_rate=1e-6)"
            ))
        })?;
        let path: Vec<&str> = key.trim().split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(Error::Config(format!(
                "override `{item}` has an empty key segment"
            )));
        }
        let (last, parents) = path
            .split_last()
            .expect("split yields at least one segment");
        let mut table = &mut *doc;
        for (depth, part) in parents.iter().enumerate() {
            let entry = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| {
                Error::Config(format!(
                    "override `{item}`: `{}` is a value, not a table",
                    path[..=depth].join(".")
                ))
            })?;
        }
        table.insert(last.to_string(), parse_value(raw.trim()));
    }
    Ok(())
}
