//! Run configuration: a strict TOML file plus `--set key=value` overrides, resolved once.

pub mod diff;
pub mod lora;
pub mod overrides;
pub mod paths;
pub(crate) mod source;
pub mod train;
pub(crate) mod validate;
