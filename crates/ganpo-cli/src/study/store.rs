//! The study's files on disk: JSON written atomically (complete or absent after a crash) and read
//! back with errors that name the file; the settings a directory was made with, checked on rerun
//! so cached phases are reused only under the same settings.

use std::path::Path;

use ganpo::train::checkpoint_dir::write_file_atomically;
use ganpo::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::StudyConfig;

/// Writes `value` as pretty JSON to `path` atomically (creating its directory).
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Config(format!("serializing {}: {e}", path.display())))?;
    write_file_atomically(path, (text + "\n").as_bytes())
}

/// Reads JSON from `path`, or `None` when it does not exist.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::Config(format!(
            "{} is not what this version of ganpo wrote ({e}); delete it to recompute that part of the study",
            path.display()
        ))
    })
}

/// Writes lines of JSON (one value per line) to `path` atomically.
pub fn save_jsonl<T: Serialize>(path: &Path, values: &[T]) -> Result<()> {
    let mut text = String::new();
    for v in values {
        text += &serde_json::to_string(v)
            .map_err(|e| Error::Config(format!("serializing {}: {e}", path.display())))?;
        text.push('\n');
    }
    write_file_atomically(path, text.as_bytes())
}

/// The settings that cached results depend on (everything but the output directory, the seed
/// count — more seeds extend a study — and whether models are kept).
fn fingerprint(config: &StudyConfig) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(config).map_err(|e| Error::Config(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        for key in ["output", "seeds", "keep_models"] {
            map.remove(key);
        }
    }
    Ok(value)
}

/// Records `config` in `dir/settings.json` on a first run; on a rerun, fails naming the first
/// setting that differs from the one the directory was made with.
pub fn check_settings(dir: &Path, config: &StudyConfig) -> Result<()> {
    let path = dir.join("settings.json");
    let now = fingerprint(config)?;
    match load_json::<serde_json::Value>(&path)? {
        None => save_json(&path, &now),
        Some(before) if before == now => Ok(()),
        Some(before) => {
            let key = now
                .as_object()
                .and_then(|m| m.iter().find(|(k, v)| before.get(k.as_str()) != Some(v)))
                .map_or_else(
                    || "?".to_string(),
                    |(k, v)| {
                        format!(
                            "`{k}` is {v} now, {} before",
                            before.get(k.as_str()).unwrap_or(&serde_json::Value::Null)
                        )
                    },
                );
            Err(Error::Config(format!(
                "{} holds a study made with other settings ({key}); rerun with the same flags to resume it, or pass another --output",
                dir.display()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rerun_under_other_settings_is_refused_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StudyConfig::new(dir.path().into(), "m".into(), "c".into(), true, 1);
        check_settings(dir.path(), &c).unwrap();
        c.seeds = 3;
        check_settings(dir.path(), &c).unwrap();
        c.min_gap = 0.2;
        let err = check_settings(dir.path(), &c).unwrap_err().to_string();
        assert!(err.contains("`min_gap` is 0.2 now, 0.4 before"), "{err}");
    }
}
