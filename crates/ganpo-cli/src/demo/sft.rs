//! Supervised fine-tuning of the demo model from scratch: next-token cross-entropy on the chat-
//! rendered answers of task examples (the prompt is context, not loss), with ganpo's own AdamW,
//! schedule and log-prob code paths.

use candle_core::{DType, Device};
use ganpo::Result;
use ganpo::data::BatchTensors;
use ganpo::logps::sequence_logps;
use ganpo::model::config::{Activation, Architecture, AttentionKind, ModelConfig};
use ganpo::model::init::random_weights;
use ganpo::model::{CausalLm, Trainability, Weights};
use ganpo::optim::{AdamW, AdamWConfig, Schedule, ScheduleKind, clip_grad_norm};
use ganpo::tokenize::{Message, Tokenizer};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::task::TaskExample;

/// SFT settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SftConfig {
    /// Optimizer steps.
    pub steps: u64,
    /// Examples per step.
    pub batch_size: usize,
    /// Peak learning rate (cosine decay, 5% warmup).
    pub learning_rate: f64,
    /// Data order seed.
    pub seed: u64,
}

/// The demo decoder: a small Llama sized for a 2-core CPU.
pub fn demo_model_config(vocab_size: usize, tokenizer: &Tokenizer) -> ModelConfig {
    let special = tokenizer.special_tokens();
    ModelConfig {
        architecture: Architecture::Llama,
        vocab_size,
        hidden_size: 96,
        intermediate_size: 256,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 24,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 128,
        tie_word_embeddings: true,
        qkv_bias: false,
        o_bias: false,
        mlp_bias: false,
        hidden_act: Activation::Silu,
        sliding_window: None,
        layer_types: vec![AttentionKind::Full; 3],
        attn_logit_softcapping: None,
        final_logit_softcapping: None,
        query_pre_attn_scalar: 24.0,
        bos_token_id: special.bos.as_ref().map(|t| t.id),
        eos_token_id: special.eos.iter().map(|t| t.id).collect(),
        pad_token_id: special.pad.as_ref().map(|t| t.id),
    }
}

/// A freshly initialized trainable demo model.
pub fn init_demo_model(config: ModelConfig, seed: u64, device: &Device) -> Result<CausalLm> {
    let tensors = random_weights(&config, 0.02, seed, device)?;
    let weights = Weights::new(
        tensors,
        std::path::Path::new("<demo init>"),
        Trainability::Trainable,
        DType::F32,
        device,
    );
    CausalLm::from_weights(config, weights, DType::F32, device)
}

/// Token ids of `prompt → answer` as a chat, and how many of them are prompt.
pub fn encode_example(tokenizer: &Tokenizer, example: &TaskExample) -> Result<(Vec<u32>, usize)> {
    let user = [Message::new("user", example.prompt.clone())];
    let prompt = tokenizer.apply_chat_template(&user, true)?;
    let mut ids = tokenizer.encode(&prompt, false)?;
    let prompt_len = ids.len();
    ids.extend(tokenizer.encode(&example.answer, false)?);
    if let Some(eos) = &tokenizer.special_tokens().eos {
        ids.push(eos.id);
    }
    Ok((ids, prompt_len))
}

/// Trains `model` on `examples`; returns the loss (mean NLL per answer token) of every step.
pub fn train_sft(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    examples: &[TaskExample],
    config: SftConfig,
) -> Result<Vec<f64>> {
    let encoded: Vec<(Vec<u32>, usize)> = examples
        .iter()
        .map(|e| encode_example(tokenizer, e))
        .collect::<Result<_>>()?;
    let device = model.device().clone();
    let mut optimizer = AdamW::new(
        model.vars(),
        AdamWConfig {
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
    )?;
    let schedule = Schedule {
        learning_rate: config.learning_rate,
        kind: ScheduleKind::Cosine,
        warmup_steps: Schedule::warmup_from_ratio(0.05, config.steps),
        total_steps: config.steps,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    let mut cursor = order.len();
    let pad = tokenizer.pad_id();
    let mut losses = Vec::with_capacity(config.steps as usize);
    for step in 0..config.steps {
        let mut batch = Vec::with_capacity(config.batch_size);
        while batch.len() < config.batch_size {
            if cursor == order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            batch.push(&encoded[order[cursor]]);
            cursor += 1;
        }
        let rows: Vec<(&[u32], usize)> =
            batch.iter().map(|(ids, p)| (ids.as_slice(), *p)).collect();
        let b = BatchTensors::from_rows(&rows, pad, &device)?;
        let out = model.forward(&b.input_ids, &b.attention_mask)?;
        let seq = sequence_logps(&out.logits, &b.input_ids, &b.loss_mask)?;
        // Token-mean NLL over the batch, as TRL's SFT loss.
        let loss =
            (seq.logps.sum_all()?.neg()? / seq.counts.sum_all()?.to_scalar::<f32>()? as f64)?;
        losses.push(loss.to_scalar::<f32>()? as f64);
        let mut grads = model.backward(&loss)?;
        clip_grad_norm(&mut grads, model.vars(), Some(1.0))?;
        optimizer.step(&grads, schedule.lr(step))?;
    }
    Ok(losses)
}
