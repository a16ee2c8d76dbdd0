//! Output files are checked before the work that fills them starts, so that a typo in `--output`
//! fails in a second instead of after a long evaluation or benchmark.

use std::path::Path;

use anyhow::{Context, bail};

/// Fails unless `path` can be written: its directory exists and the file can be created or opened
/// for writing. An existing file is left as it is; a file created for the check is removed.
pub fn check_writable(path: &Path, flag: &str) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!("{flag} {} is a directory; give a file name", path.display());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent
        && !dir.is_dir()
    {
        bail!(
            "{flag} {}: directory {} does not exist; create it first",
            path.display(),
            dir.display()
        );
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{flag} {} cannot be written", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
