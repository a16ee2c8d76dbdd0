//! One writer per output directory: `ganpo train` holds `OUTPUT_DIR/.lock` (created exclusively,
//! holding its PID) for the whole run, so a second run on the same directory stops with the
//! holder's PID instead of interleaving metrics and overwriting checkpoints. A lock left by a
//! process that no longer exists (a kill -9) is taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The lock file's name inside the output directory.
pub const LOCK_FILE: &str = ".lock";

/// The held lock; dropping it removes the file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

/// Whether process `pid` exists (signal 0 checks without sending anything).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that `pid` exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

impl RunLock {
    /// Takes the lock of `output_dir` (created if needed). Fails, naming the holder's PID, when a
    /// live process holds it; takes over a lock whose process is gone.
    pub fn acquire(output_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(output_dir)
            .map_err(|e| Error::io(format!("creating {}", output_dir.display()), e))?;
        let path = output_dir.join(LOCK_FILE);
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if alive(pid) => {
                            return Err(Error::Training(format!(
                                "{} is in use by another ganpo run (PID {pid}, see {}); wait for it to finish, stop it, or choose another training.output_dir",
                                output_dir.display(),
                                path.display()
                            )));
                        }
                        // Gone (or unreadable, e.g. a half-written lock): take it over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(Error::io(format!("creating lock {}", path.display()), e));
                }
            }
        }
        Err(Error::Training(format!(
            "could not take the lock {}; another run keeps creating it",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
