//! Run configuration: a strict TOML file plus `--set key=value` overrides, resolved once.

pub mod overrides;
pub mod train;
