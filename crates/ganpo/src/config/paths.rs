//! The relative-path rule of a config: a path written in a config file is relative to that file's
//! directory (so a config and its data can move together and the run does not depend on where it
//! is started from); a path given with `--set` is relative to the current directory, as any
//! command-line path is. Both become absolute, so the resolved config saved with a checkpoint
//! means the same thing wherever it is read from.

use std::path::{Path, PathBuf};

/// Every config key holding a file or directory path.
pub const PATH_KEYS: [&str; 7] = [
    "model.path",
    "model.reference",
    "data.train_file",
    "data.eval_file",
    "training.output_dir",
    "ganpo.init_from",
    "lora.init_from",
];

/// `base/p` made absolute (against the current directory when `base` is relative). An empty path
/// stays empty so that validation can name it.
fn absolute(base: &Path, p: &str) -> String {
    if p.is_empty() {
        return String::new();
    }
    let joined: PathBuf = base.join(p);
    std::path::absolute(&joined)
        .unwrap_or(joined)
        .to_string_lossy()
        .into_owned()
}

/// Rewrites the path values of `doc` that `only` accepts (a dotted key) against `base`.
pub(crate) fn resolve_paths(doc: &mut toml::Table, base: &Path, only: impl Fn(&str) -> bool) {
    for key in PATH_KEYS.iter().filter(|k| only(k)) {
        let Some((section, name)) = key.split_once('.') else {
            continue;
        };
        let value = doc
            .get_mut(section)
            .and_then(toml::Value::as_table_mut)
            .and_then(|t| t.get_mut(name));
        if let Some(toml::Value::String(p)) = value {
            *p = absolute(base, p);
        }
    }
}
