//! # ganpo-cli: the `ganpo` command and the experiments built on the library
//!
//! The [`ganpo`] library trains and evaluates; this crate adds what a user runs on top of it:
//!
//! - [`cli`]: the command-line arguments, one function per subcommand (`src/main.rs` is the thin
//!   binary: parse → run → exit code).
//! - [`demo`]: the built-in benchmark (`ganpo demo`): its task, tokenizer, arms, pre-registered
//!   claims and report.
//! - [`study`]: the real-model sentiment study (`ganpo study sentiment`).
//! - [`bench`]: times the real training step (per phase, with achieved GFLOP/s and peak memory) on
//!   a given or randomly initialized model (`ganpo bench`).
//! - [`plot`]: PNG charts of training curves and evaluation sweeps (`ganpo plot`, the demo's
//!   figures).
//! - [`judge`]: the concrete judges (the demo task's rule checker, VADER sentiment) for the
//!   library's [`ganpo::judge::Judge`] trait.
#![warn(missing_docs)]

pub mod bench;
pub mod cli;
pub mod demo;
pub mod judge;
pub mod plot;
pub mod study;
