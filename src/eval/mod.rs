//! Evaluation: KL to the reference, latent-space divergence diagnostics.

pub mod kl;
pub mod mmd;
