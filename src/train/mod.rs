//! Training infrastructure: checkpoint directories, data order, metrics.

pub mod checkpoint_dir;
pub mod data_order;
pub mod metrics;
