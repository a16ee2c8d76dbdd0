//! Atomic, rotated checkpoint directories.
//!
//! A checkpoint (and the final model) is written into a hidden temporary directory inside the
//! output directory and renamed to `checkpoint-<step>` (`final`) only when complete; old
//! checkpoints are renamed to a temporary name before they are deleted; the parent directory is
//! flushed after each rename. So a crash, a kill or Ctrl-C never leaves a partial directory under a
//! real name, and the temporaries it may leave are removed when the next run starts. After each
//! save only the newest `keep_last` checkpoints are kept.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Prefix of checkpoint directory names.
pub const PREFIX: &str = "checkpoint-";
/// Prefix of the temporary directories (new, replaced and doomed checkpoints and final models).
const TMP: &str = ".tmp-";

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
    let final_path = publish_dir(output_dir, &format!("{PREFIX}{step}"), write)?;
    if keep_last > 0 {
        let all = list_checkpoints(output_dir)?;
        for (_, old) in all.iter().take(all.len().saturating_sub(keep_last)) {
            remove_published(output_dir, old)?;
        }
    }
    Ok(final_path)
}

/// Writes directory `output_dir/name` atomically: `write` fills a hidden temporary directory,
/// whose files are flushed, then it is renamed to `name` and the parent directory is flushed so
/// the rename survives a power loss. An existing `name` is first renamed away and deleted only
/// after the new one is in place, so at every instant `name` is absent or complete. On error the
/// temporary directory is removed and `name` is untouched.
pub fn publish_dir(
    output_dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(output_dir)
        .map_err(io(format!("creating {}", output_dir.display())))?;
    let final_path = output_dir.join(name);
    let pid = std::process::id();
    let tmp = output_dir.join(format!("{TMP}new-{name}-{pid}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(format!("removing stale {}", tmp.display())))?;
    }
    std::fs::create_dir(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir_files(&tmp)?;
    // Re-saving the same name (e.g. Ctrl-C right after a scheduled save, or a rerun's `final`).
    let old = output_dir.join(format!("{TMP}old-{name}-{pid}"));
    let replaced = final_path.exists();
    if replaced {
        std::fs::rename(&final_path, &old)
            .map_err(io(format!("moving {} aside", final_path.display())))?;
    }
    std::fs::rename(&tmp, &final_path)
        .map_err(io(format!("renaming {} into place", tmp.display())))?;
    sync_dir(output_dir)?;
    if replaced {
        std::fs::remove_dir_all(&old).map_err(io(format!("removing {}", old.display())))?;
    }
    Ok(final_path)
}

/// Writes the file `path` atomically: `bytes` go to a hidden temporary file beside it, which is
/// flushed and renamed over `path`, and the directory is flushed; so `path` is at every instant
/// absent, its old content or the complete new content, whatever crashes when.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!("{TMP}file-{name}-{}", std::process::id()));
    let written = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    sync_dir(&dir)
}

/// Deletes a published directory without ever leaving it half-deleted under its real name: it is
/// renamed to a temporary name (and the rename flushed) before its files are removed.
fn remove_published(output_dir: &Path, dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let doomed = output_dir.join(format!("{TMP}delete-{name}-{}", std::process::id()));
    std::fs::rename(dir, &doomed)
        .map_err(io(format!("moving old checkpoint {} aside", dir.display())))?;
    sync_dir(output_dir)?;
    std::fs::remove_dir_all(&doomed)
        .map_err(io(format!("removing old checkpoint {}", doomed.display())))
}

/// Removes the temporary directories an interrupted run left in `output_dir` (new checkpoints or
/// final models never renamed into place, old ones half deleted). Call it only while holding the
/// output directory's lock, so no other run's temporaries are touched. Returns how many.
pub fn remove_stale_temporaries(output_dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(output_dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io(format!("listing {}", output_dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TMP) && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path())
                .map_err(io(format!("removing stale {}", entry.path().display())))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the checkpoints and final model of an earlier run in `output_dir` (for
/// `overwrite_output_dir = true`): left in place, a newer-numbered old checkpoint would outrank the
/// new run's in rotation and in `--resume`. Each is moved aside before deletion. Returns how many.
pub fn remove_previous_run(output_dir: &Path) -> Result<usize> {
    let mut dirs: Vec<PathBuf> = list_checkpoints(output_dir)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let final_dir = output_dir.join("final");
    if final_dir.is_dir() {
        dirs.push(final_dir);
    }
    for dir in &dirs {
        remove_published(output_dir, dir)?;
    }
    Ok(dirs.len())
}

/// Flushes directory `dir` itself (its entries: renames, creations) to disk.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
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
            sync_dir(&path)?;
        }
    }
    sync_dir(dir)
}
