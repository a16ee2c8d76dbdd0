//! Optimization: AdamW with saveable moments, global-norm gradient clipping, and learning-rate
//! schedules with warmup, matching PyTorch's `AdamW`, `clip_grad_norm_` and transformers' schedulers.

mod adamw;
mod clip;
mod schedule;

pub use adamw::{AdamW, AdamWConfig, excluded_from_weight_decay};
pub use clip::{clip_grad_norm, global_grad_norm};
pub use schedule::{Schedule, ScheduleKind};
