//! `ganpo bench`: times the real training step ([`Trainer::train_step`] with its per-phase clock
//! on) for DPO and DPO + GANPO on a given model or a randomly initialized one of a known shape,
//! and puts the times next to an analytic FLOP count and an f32 matmul peak measured in the same
//! process. `tools/bench/torch_step.py` measures the same step in PyTorch with the same field
//! names; `docs/performance.md` has the conventions and the measurements.
//!
//! [`Trainer::train_step`]: ganpo::train::trainer::Trainer::train_step

pub mod batch;
pub mod flops;
pub mod matmul;
pub mod report;
pub mod run;
pub mod shape;

pub use report::{BenchReport, ModeReport, ModelInfo};
pub use run::{BenchConfig, BenchMode, ModelSource, run_bench};
pub use shape::BenchShape;
