//! Ctrl-C for long commands: the first press raises a flag the work checks at its next safe
//! point (a checkpoint, the end of a phase); a second press exits at once (status 130).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

/// Installs the handler and returns the flag; `what_happens` tells the user what the first press
/// does, e.g. "finishing this step and writing a checkpoint".
pub fn stop_flag(what_happens: &'static str) -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: {what_happens} (press Ctrl-C again to abort)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}
