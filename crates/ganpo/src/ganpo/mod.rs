//! GANPO's latent adversarial regularizer (arXiv 2601.22083): discriminators, running means, losses.
//!
//! - [`Discriminator`]: a spectrally normalized transformer scoring hidden-state sequences
//!   ([`config`], [`layout`], [`init`], [`spectral_norm`], [`encoder`], [`pooling_mask`], [`rng`], [`dropout`]).
//! - [`init_from`]: discriminators started from saved weights (the authors' included).
//! - [`losses`]: the quad relativistic discriminator losses and the generator loss, pure functions of
//!   scores and baselines.
//! - [`baselines`]: the six running means the relativistic losses subtract.
//! - [`objective`]: one discriminator step and the generator term, calling the discriminators in the
//!   authors' order.

pub mod baselines;
pub mod config;
pub mod discriminator;
pub mod dropout;
pub mod encoder;
pub mod gelu;
pub mod init;
pub mod init_from;
pub mod layout;
pub mod losses;
pub mod mode;
pub mod objective;
pub mod pooling_mask;
pub mod rng;
pub mod spectral_norm;
mod tensors;

pub use baselines::{Baselines, RunningMeans};
pub use config::DiscriminatorConfig;
pub use discriminator::Discriminator;
pub use losses::{DiscriminatorLosses, DiscriminatorScores, GeneratorLosses};
pub use mode::Mode;
pub use objective::{Latents, discriminator_step, generator_losses, generator_terms};
