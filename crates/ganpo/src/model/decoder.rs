//! The decoder: embeddings, a stack of pre-norm transformer layers, the final norm and the LM
//! head. One implementation covers Llama, Qwen2, Mistral, Gemma and Gemma-2; the differences are
//! data in [`ModelConfig`].

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use super::attention::{Attention, AttentionMasks};
use super::config::{Architecture, AttentionKind, ModelConfig};
use super::layers::{Linear, Mlp, RmsNorm};
use super::recompute::checkpointed_layer;
use super::rotary::Rotary;
use super::weights::{LoadedParams, Weights};
use crate::kernels::{self, ParamGrads, RecomputedGrads, detach_all};
use crate::{Error, Result};

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// Next-token logits, `[batch, seq, vocab]`.
    pub logits: Tensor,
    /// Output of the final norm (Hugging Face's `hidden_states[-1]`), `[batch, seq, hidden]`.
    pub last_hidden: Tensor,
}

/// One decoder layer: attention and MLP blocks with pre-norms (and Gemma-2's post-norms).
#[derive(Debug, Clone)]
pub struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    /// Gemma-2 only: norm before the MLP (its `post_attention_layernorm` normalizes the attention
    /// output instead of the MLP input).
    pre_feedforward_layernorm: Option<RmsNorm>,
    post_feedforward_layernorm: Option<RmsNorm>,
    mlp: Mlp,
}

impl DecoderLayer {
    fn load(w: &mut Weights, index: usize, config: &ModelConfig) -> Result<Self> {
        let p = format!("model.layers.{index}");
        let d = config.hidden_size;
        let add_one = config.architecture.norm_adds_one();
        let norm = |w: &mut Weights, name: &str| {
            RmsNorm::load(w, &format!("{p}.{name}"), d, config.rms_norm_eps, add_one)
        };
        let gemma2 = config.architecture == Architecture::Gemma2;
        Ok(DecoderLayer {
            input_layernorm: norm(w, "input_layernorm")?,
            self_attn: Attention::load(
                w,
                &format!("{p}.self_attn"),
                config,
                config.layer_types[index],
            )?,
            post_attention_layernorm: norm(w, "post_attention_layernorm")?,
            pre_feedforward_layernorm: if gemma2 {
                Some(norm(w, "pre_feedforward_layernorm")?)
            } else {
                None
            },
            post_feedforward_layernorm: if gemma2 {
                Some(norm(w, "post_feedforward_layernorm")?)
            } else {
                None
            },
            mlp: Mlp::load(
                w,
                &format!("{p}.mlp"),
                d,
                config.intermediate_size,
                config.mlp_bias,
                config.hidden_act,
            )?,
        })
    }

    /// The projections that may carry LoRA adapters, with their Hugging Face names relative to
    /// the layer (`self_attn.q_proj`, ..., `mlp.down_proj`).
    pub(crate) fn projections_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let attn = self.self_attn.projections_mut().into_iter();
        let mlp = self.mlp.projections_mut().into_iter();
        attn.map(|(n, l)| (format!("self_attn.{n}"), l))
            .chain(mlp.map(|(n, l)| (format!("mlp.{n}"), l)))
            .collect()
    }

    /// The layer's attention block.
    pub fn attention(&self) -> &Attention {
        &self.self_attn
    }

    /// Applies the MLP half of the layer to `x`, the residual stream after attention.
    pub fn mlp_block(&self, x: &Tensor) -> Result<Tensor> {
        self.mlp_half(x, None)
    }

    /// [`DecoderLayer::mlp_block`]; without MLP biases, as one op ([`kernels::mlp_block`], with
    /// Gemma-2's pre- and post-norms) whose weight gradients go to `grads`.
    fn mlp_half(&self, x: &Tensor, grads: Option<&ParamGrads>) -> Result<Tensor> {
        let (norm, post) = match (
            &self.pre_feedforward_layernorm,
            &self.post_feedforward_layernorm,
        ) {
            (Some(pre), Some(post)) => (pre, Some(post)),
            _ => (&self.post_attention_layernorm, None),
        };
        match self.mlp.block(norm, post) {
            Some(block) => kernels::mlp_block(x, &block, grads),
            None => {
                let m = self.mlp.forward(&norm.forward(x)?)?;
                match post {
                    Some(post) => Ok((x + post.forward(&m)?)?),
                    None => Ok((x + m)?),
                }
            }
        }
    }

    /// Adds the attention output `attn` (already projected) to the residual stream `x`.
    pub fn attention_residual(&self, x: &Tensor, attn: &Tensor) -> Result<Tensor> {
        if self.pre_feedforward_layernorm.is_some() {
            // Gemma-2 normalizes the attention output before the residual add.
            Ok((x + self.post_attention_layernorm.forward(attn)?)?)
        } else {
            Ok((x + attn)?)
        }
    }

    /// The layer's input norm.
    pub fn input_norm(&self, x: &Tensor) -> Result<Tensor> {
        self.input_layernorm.forward(x)
    }

    /// The layer on `x`; the fused blocks' weight gradients go to `grads` (a trainable model's).
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        rotary: &Rotary,
        masks: &AttentionMasks,
        grads: Option<&ParamGrads>,
    ) -> Result<Tensor> {
        let x = match self.pre_feedforward_layernorm {
            // Gemma-2 normalizes the attention output before the residual add.
            Some(_) => {
                let normed = self.input_layernorm.forward(x)?;
                let attn = self.self_attn.forward(&normed, rotary, masks)?;
                self.attention_residual(x, &attn)?
            }
            None => self
                .self_attn
                .forward_block(x, &self.input_layernorm, rotary, masks, grads)?,
        };
        self.mlp_half(&x, grads)
    }
}

/// A causal language model of the Llama family.
pub struct CausalLm {
    pub(super) config: ModelConfig,
    pub(super) embed_tokens: Tensor,
    pub(super) layers: Vec<DecoderLayer>,
    pub(super) norm: RmsNorm,
    pub(super) lm_head: Linear,
    pub(super) rotary: Rotary,
    pub(super) params: LoadedParams,
    /// Set when gradient checkpointing is on: where recomputed layers put their parameter gradients.
    pub(super) recompute: Option<RecomputedGrads>,
    /// Set for a trainable model: where the fused blocks put their weights' gradients.
    pub(super) block_grads: Option<ParamGrads>,
    /// Set when LoRA adapters are attached ([`super::lora`]).
    pub(super) lora: Option<super::lora::LoraSpec>,
    pub(super) dtype: DType,
    pub(super) device: Device,
}

impl std::fmt::Debug for CausalLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CausalLm")
            .field("architecture", &self.config.architecture)
            .field("layers", &self.layers.len())
            .field("trainable_tensors", &self.params.vars.len())
            .field("gradient_checkpointing", &self.recompute.is_some())
            .finish()
    }
}

impl CausalLm {
    /// Builds the model from checked weights (see [`Weights`]); fails if any weight is missing,
    /// misshapen or left over.
    pub fn from_weights(
        config: ModelConfig,
        mut w: Weights,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let (v, d) = (config.vocab_size, config.hidden_size);
        let embed_tokens = w.get("model.embed_tokens.weight", &[v, d])?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| DecoderLayer::load(&mut w, i, &config))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(
            &mut w,
            "model.norm",
            d,
            config.rms_norm_eps,
            config.architecture.norm_adds_one(),
        )?;
        let lm_head = if config.tie_word_embeddings {
            // Some tied checkpoints also store the head; it must equal the embedding, so skip it.
            w.ignore("lm_head.weight");
            Linear::from_weight(embed_tokens.clone())
        } else {
            Linear::load(&mut w, "lm_head", d, v, false)?
        };
        let positions = config.max_position_embeddings.max(1);
        let rotary = Rotary::new(&config, positions, DType::F32, device)?;
        let params = w.finish()?;
        let block_grads = (!params.vars.is_empty()).then(ParamGrads::default);
        Ok(CausalLm {
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
            rotary,
            params,
            recompute: None,
            block_grads,
            lora: None,
            dtype,
            device: device.clone(),
        })
    }

    /// The resolved configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The trainable variables with their Hugging Face names (empty for a frozen model).
    pub fn vars(&self) -> &[(String, Var)] {
        &self.params.vars
    }

    /// Every parameter with its Hugging Face name, in load order (what saving writes).
    pub fn named_parameters(&self) -> &[(String, Tensor)] {
        &self.params.named
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device holding the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The decoder layers.
    pub fn layers(&self) -> &[DecoderLayer] {
        &self.layers
    }

    /// Rotary tables.
    pub fn rotary(&self) -> &Rotary {
        &self.rotary
    }

    /// Token embeddings for `input_ids` (`[batch, seq]`, u32), scaled by √d for Gemma. Rows of the
    /// pad token are detached, as `nn.Embedding(padding_idx=pad_token_id)` gives them no gradient.
    pub fn embed(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let flat = input_ids.flatten_all()?;
        let mut x = self.embed_tokens.index_select(&flat, 0)?;
        if let Some(pad) = self
            .config
            .pad_token_id
            .filter(|_| !self.params.vars.is_empty())
        {
            let is_pad = flat.eq(pad)?.unsqueeze(1)?.broadcast_as(x.shape())?;
            x = is_pad.where_cond(&x.detach(), &x)?;
        }
        let mut x = x.reshape((b, t, self.config.hidden_size))?;
        if self.config.architecture.scales_embeddings() {
            // transformers rounds √d to the activation dtype before multiplying.
            let normalizer = Tensor::new(&[(self.config.hidden_size as f64).sqrt()], &self.device)?
                .to_dtype(x.dtype())?;
            x = x.broadcast_mul(&normalizer)?;
        }
        Ok(x)
    }

    /// Final norm, then LM head (with Gemma-2's final soft-capping). Returns `(last_hidden, logits)`.
    pub fn head(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let last_hidden = self.norm.forward(x)?;
        let mut logits = self.lm_head.forward(&last_hidden)?;
        if let Some(cap) = self.config.final_logit_softcapping {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok((last_hidden, logits))
    }

    /// Teacher-forced forward pass over `input_ids` (`[batch, seq]`, u32) with `attention_mask`
    /// (`[batch, seq]`, 1 for real tokens, 0 for padding; any integer or float dtype). Padding may
    /// be on either side; positions count from the start of each row. Keeps no state between calls.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<ModelOutput> {
        let (last_hidden, logits) = self.head(&self.trunk(input_ids, attention_mask)?)?;
        Ok(ModelOutput {
            logits,
            last_hidden,
        })
    }

    /// The forward pass up to and including the final norm (Hugging Face's `hidden_states[-1]`),
    /// without the LM head: training computes log-probs from it with
    /// [`crate::logps::sequence_logps_from_hidden`], which never materializes the full logits.
    pub fn forward_hidden(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        self.norm.forward(&self.trunk(input_ids, attention_mask)?)
    }

    /// Embeddings and decoder layers: the residual stream before the final norm.
    fn trunk(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let (_, t) = input_ids.dims2()?;
        if attention_mask.dims() != input_ids.dims() {
            return Err(Error::Config(format!(
                "attention_mask shape {:?} does not match input_ids shape {:?}",
                attention_mask.dims(),
                input_ids.dims()
            )));
        }
        if t > self.rotary.max_positions() {
            return Err(Error::Config(format!(
                "sequence length {t} exceeds the model's max_position_embeddings ({})",
                self.rotary.max_positions()
            )));
        }
        // Weight gradients left in the store mean a backward pass did not come through
        // `CausalLm::backward`: the optimizer would have missed them. Reported once (the store is
        // emptied, so the next forward runs).
        if let Some(blocks) = &self.block_grads
            && blocks.pending()? > 0
        {
            blocks.clear()?;
            return Err(Error::Training(
                "decoder weight gradients from an earlier backward pass were never collected: \
                 back-propagate losses of this model with `CausalLm::backward`, not \
                 `Tensor::backward`"
                    .into(),
            ));
        }
        let mask_rows: Vec<Vec<u32>> = attention_mask.to_dtype(DType::U32)?.to_vec2()?;
        let sliding = self
            .config
            .layer_types
            .contains(&AttentionKind::Sliding)
            .then_some(())
            .and(self.config.sliding_window);
        let masks = AttentionMasks::new(&mask_rows, sliding, self.dtype, &self.device)?;
        let mut x = self.embed(input_ids)?;
        for layer in &self.layers {
            x = match &self.recompute {
                Some(grads) => checkpointed_layer(
                    layer,
                    &x,
                    &self.rotary,
                    &masks,
                    grads,
                    self.block_grads.as_ref(),
                )?,
                None => layer.forward(&x, &self.rotary, &masks, self.block_grads.as_ref())?,
            };
        }
        Ok(x)
    }

    /// Turns activation recomputation per decoder layer on or off (a no-op for a frozen model,
    /// which keeps no activations anyway). With it on, a forward keeps only each layer's input
    /// and output for backward and recomputes the rest during backward: less memory for about
    /// one more forward pass of time. Gradients must then come from [`CausalLm::backward`].
    pub fn set_gradient_checkpointing(&mut self, on: bool) {
        self.recompute = (on && !self.params.vars.is_empty()).then(RecomputedGrads::default);
    }

    /// Whether activation recomputation is on.
    pub fn gradient_checkpointing(&self) -> bool {
        self.recompute.is_some()
    }

    /// `loss.backward()` with every gradient detached (so the forward activations are freed as
    /// soon as the graph is dropped, not when the gradients are), plus the parameter gradients that
    /// the plain backward pass does not return: those of the fused decoder blocks (written to a
    /// store by their ops, see [`kernels::ParamGrads`]) and of layers recomputed under gradient
    /// checkpointing. Use this for every loss that depends on this model's forward.
    pub fn backward(&self, loss: &Tensor) -> Result<GradStore> {
        // Drop anything left by a backward pass that did not come through here.
        if let Some(blocks) = &self.block_grads {
            blocks.clear()?;
        }
        if let Some(recomputed) = &self.recompute {
            recomputed.take()?;
        }
        let mut grads = detach_all(loss.backward()?);
        if let Some(layers) = self
            .recompute
            .as_ref()
            .map(RecomputedGrads::take)
            .transpose()?
            .flatten()
        {
            grads.extend(layers)?;
        }
        if let Some(blocks) = &self.block_grads {
            blocks.drain_into(&mut grads)?;
        }
        Ok(grads)
    }

    /// The LM head's `[vocab, hidden]` weight (the embedding when tied).
    pub fn lm_head_weight(&self) -> &Tensor {
        self.lm_head.weight()
    }
}
