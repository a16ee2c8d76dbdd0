//! # ganpo: offline preference optimization with latent adversarial regularization
//!
//! The pipeline, one module per stage:
//!
//! 1. [`data`]: preference records (`prompt`, `chosen`, `rejected`) from JSONL or Parquet, plain text or
//!    chat messages, tokenized with TRL's legacy DPO semantics and collated into
//!    `[chosen; rejected]` batches with attention and completion (loss) masks.
//! 2. [`tokenize`]: Hugging Face tokenizers and chat templates (rendered with `minijinja`).
//! 3. [`model`]: training-first decoders of the Llama family (Llama, Qwen2, Mistral, Gemma, Gemma-2)
//!    loaded from Hugging Face directories or GGUF files, returning logits and last hidden states.
//! 4. [`logps`]: the one place where labels are shifted and masks applied: per-sequence summed
//!    completion log-probs and token counts.
//! 5. [`losses`]: offline preference losses (DPO and its variants, SimPO, CPO, ORPO, ...) as pure
//!    functions of those per-sequence log-probs and counts, configured by one tagged enum.
//! 6. [`ganpo`]: the latent adversarial regularizer: discriminators over hidden-state sequences,
//!    their running-mean baselines and the relativistic discriminator and generator losses.
//! 7. [`optim`] and [`train`]: AdamW, schedules, the straight-line training step, the outer loop and
//!    complete checkpoints; [`config`] is the strict TOML run configuration.
//! 8. [`generate`], [`eval`], [`judge`]: decoding with a KV cache, KL and latent diagnostics, the
//!    judge trait and win rates.
//!
//! [`cpu`] sets up flush-to-zero, the compute thread pools and the allocator; [`decoder_guard`]
//! turns third-party Parquet decoder panics into errors; [`sysinfo`] reads resident memory.
//!
//! The `ganpo` command, the built-in benchmark (`ganpo demo`), the sentiment study, the step
//! benchmark, plots and the concrete judges live in the `ganpo-cli` crate of this workspace, on top
//! of this library.
#![warn(missing_docs)]

pub mod config;
pub mod cpu;
pub mod data;
pub mod decoder_guard;
pub mod error;
pub mod eval;
pub mod ganpo;
pub mod generate;
pub mod judge;
pub mod kernels;
pub mod logps;
pub mod losses;
pub mod model;
pub mod optim;
pub mod sysinfo;
pub mod tokenize;
pub mod train;

pub use error::{Error, Result};
