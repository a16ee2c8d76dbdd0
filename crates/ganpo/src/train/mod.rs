//! Training: the preference step, its forward half, gradient accumulation, checkpoint
//! directories, data order, metrics and per-phase step timing.

pub mod adapter;
pub(crate) mod authors_step;
pub mod checkpoint;
pub mod checkpoint_dir;
pub mod data_order;
pub(crate) mod diagnostics;
pub(crate) mod disc_update;
pub mod evaluate;
pub(crate) mod finite_weights;
pub mod forward;
pub mod grad_accum;
pub mod metrics;
pub(crate) mod pair_metrics;
pub mod phases;
pub mod position_limits;
pub mod run;
pub mod run_lock;
pub mod setup;
pub mod step;
pub(crate) mod step_parts;
pub mod to_completion;
pub mod trainer;
