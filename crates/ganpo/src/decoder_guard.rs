//! A boundary around third-party decoders of user files (Parquet) that panic on some corrupt
//! inputs instead of returning an error: the panic is caught and becomes an error naming the file.
//! The binary installs [`install_quiet_hook`] so that a caught decoder panic prints nothing but
//! that error; every other panic still reports as usual.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    /// Whether this thread is inside [`guard`], whose panics are reported as errors.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `decode`, turning a panic into `Err(message)`.
pub fn guard<T>(decode: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let was = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(decode));
    GUARDED.with(|g| g.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown decoder failure".into())
    })
}

/// Installs a panic hook that stays silent for panics caught by [`guard`] and defers to the
/// previous hook for every other panic. For binaries; call once at start-up.
pub fn install_quiet_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(Cell::get) {
            previous(info);
        }
    }));
}
