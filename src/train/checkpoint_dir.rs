//! Atomic, rotated checkpoint directories.
//!
//! A checkpoint is written into a hidden temporary directory inside the output directory and
//! renamed to `checkpoint-<step>` only when complete, so a crash or Ctrl-C never leaves a partial
//! checkpoint under a real name. After each save only the newest `keep_last` are kept.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Prefix of checkpoint directory names.
pub const PREFIX: &str = "checkpoint-";
const TMP_PREFIX: &str = ".tmp-checkpoint-";

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(context, e)
}

/// The finished checkpoints under `output_dir`, oldest first, as `(step, path)`.
pub fn list_checkpoints(output_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    if !output_dir.exists() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(output_dir).map_err(io(format!("listing {}", output_dir.display())))?
    {
        let entry = entry.map_err(io(format!("listing {}", output_dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let step = name
            .strip_prefix(PREFIX)
            .and_then(|s| s.parse::<u64>().ok());
        if let (Some(step), true) = (step, entry.path().is_dir()) {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The newest finished checkpoint under `output_dir`, if any.
pub fn latest_checkpoint(output_dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list_checkpoints(output_dir)?.pop().map(|(_, p)| p))
}

/// Writes checkpoint `step` into `output_dir` by calling `write` on a fresh temporary directory,
/// then renames it into place and deletes all but the newest `keep_last` checkpoints
/// (`keep_last = 0` keeps all). Returns the final path. On error the temporary directory is
/// removed and no existing checkpoint is touched.
pub fn save_atomically(
    output_dir: &Path,
    step: u64,
    keep_last: usize,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(output_dir)
        .map_err(io(format!("creating {}", output_dir.display())))?;
    let final_path = output_dir.join(format!("{PREFIX}{step}"));
    let tmp = output_dir.join(format!("{TMP_PREFIX}{step}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(format!("removing stale {}", tmp.display())))?;
    }
    std::fs::create_dir(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir_files(&tmp)?;
    if final_path.exists() {
        // Re-saving the same step (e.g. Ctrl-C right after a scheduled save): replace it.
        std::fs::remove_dir_all(&final_path)
            .map_err(io(format!("replacing {}", final_path.display())))?;
    }
    std::fs::rename(&tmp, &final_path)
        .map_err(io(format!("renaming {} into place", tmp.display())))?;
    if keep_last > 0 {
        let all = list_checkpoints(output_dir)?;
        for (_, old) in all.iter().take(all.len().saturating_sub(keep_last)) {
            std::fs::remove_dir_all(old)
                .map_err(io(format!("removing old checkpoint {}", old.display())))?;
        }
    }
    Ok(final_path)
}

/// Flushes every file of `dir` to disk so the rename publishes complete contents.
fn sync_dir_files(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))? {
        let path = entry
            .map_err(io(format!("listing {}", dir.display())))?
            .path();
        if path.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io(format!("syncing {}", path.display())))?;
        } else if path.is_dir() {
            sync_dir_files(&path)?;
        }
    }
    Ok(())
}
