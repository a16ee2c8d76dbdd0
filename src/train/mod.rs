//! Training: the preference step, its forward half, gradient accumulation, checkpoint
//! directories, data order and metrics.

pub mod checkpoint;
pub mod checkpoint_dir;
pub mod data_order;
pub mod forward;
pub mod grad_accum;
pub mod metrics;
pub mod run;
pub mod step;
pub mod trainer;
