//! The library's shared test helpers (one copy, in `crates/ganpo/tests/common/`) plus the helpers
//! that run the `ganpo` binary, which only this crate's tests can name.
#![allow(dead_code, unused_imports)]

#[path = "../../../ganpo/tests/common/mod.rs"]
mod shared;

pub use shared::*;

/// Runs the `ganpo` binary with `args`.
pub fn ganpo(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args(args)
        .output()
        .expect("ganpo runs")
}

/// Runs `ganpo args`, expecting it to fail cleanly (an error, not a panic); returns stderr.
pub fn ganpo_fails(args: &[&str]) -> String {
    let out = ganpo(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    stderr
}
