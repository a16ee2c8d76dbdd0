//! Training-first decoders of the Llama family and their checkpoint formats.
//!
//! [`CausalLm::forward`] maps `(input_ids, attention_mask)` to logits and last hidden states with no
//! state kept between calls. A trainable model's parameters are `Var`s; a frozen (reference)
//! model holds plain tensors, so no gradient can reach it.

pub mod attention;
pub mod cached;
pub mod config;
pub mod decoder;
pub mod gguf;
mod hf_config;
pub mod init;
pub mod layers;
pub mod load;
pub mod lora;
pub mod lora_dropout;
pub mod peft;
mod recompute;
pub mod rotary;
pub mod save;
pub mod weights;

pub use cached::KvCache;
pub use config::{Activation, Architecture, AttentionKind, ModelConfig, RopeScaling};
pub use decoder::{CausalLm, ModelOutput};
pub use load::{LoadedModel, load_model};
pub use save::save_hf;
pub use weights::{Trainability, Weights};
