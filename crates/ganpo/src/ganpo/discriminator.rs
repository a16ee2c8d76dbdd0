//! The GANPO discriminator: a small spectrally normalized transformer that maps a sequence of hidden
//! states `[B, T, d]` to one logit per sequence.
//!
//! `SN-Linear(d → width)` → `+ positional embedding` → `depth` pre-LN encoder layers → masked mean
//! pool → `SN-Linear(width → width)` → GELU → `SN-Linear(width → 1)`, as the authors'
//! `TransformerDiscriminator` (arXiv 2601.22083, github.com/enyijiang/GANPO). Its parameters live in
//! their own `VarMap`, so which optimizer updates them is a fact of the data, not of a flag.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use super::config::DiscriminatorConfig;
use super::dropout::DropoutDraws;
use super::encoder::{EncoderLayer, EncoderLayerParams, fused_stack};
use super::gelu::gelu;
use super::init::initial_tensors;
use super::layout::{Role, SPECTRAL_LAYERS, layer_prefix, tensor_specs};
use super::mode::Mode;
use super::pooling_mask::PoolingMask;
use super::rng::{DropoutRng, SplitMix64};
use super::spectral_norm::SpectralLinear;
use super::tensors::{check_keys, read_safetensors, varmap_insert};
use crate::kernels::ParamGrads;
use crate::{Error, Result};

/// One discriminator (the paper's D⁺ or D⁻).
pub struct Discriminator {
    config: DiscriminatorConfig,
    input_dim: usize,
    varmap: VarMap,
    vars: HashMap<String, Var>,
    spectral: [SpectralLinear; 3],
    layers: Vec<EncoderLayer>,
    dropout_rng: DropoutRng,
    /// The encoder parameters' gradients left by backward passes through the fused encoder stack,
    /// until [`Discriminator::take_grads`] moves them into a `GradStore`.
    grad_sink: ParamGrads,
    dtype: DType,
    device: Device,
}

impl Discriminator {
    /// A freshly initialized discriminator. `seed` determines the initial tensors and the dropout
    /// masks; give D⁺ and D⁻ different seeds.
    pub fn new(
        config: &DiscriminatorConfig,
        input_dim: usize,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let tensors = initial_tensors(config, input_dim, seed)?;
        let dropout_seed = SplitMix64::new(seed ^ 0x6761_6E70_6F2D_6470).next_u64();
        Self::from_tensors(config, input_dim, &tensors, dropout_seed, dtype, device)
    }

    /// A discriminator holding `tensors` (parameters and u/v, PyTorch `state_dict` names, any float
    /// dtype), cast to `dtype` on `device`. Extra keys are an error, as are missing ones.
    pub fn from_tensors(
        config: &DiscriminatorConfig,
        input_dim: usize,
        tensors: &HashMap<String, Tensor>,
        dropout_seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        if input_dim == 0 {
            return Err(Error::Config(
                "discriminator input_dim must be positive".into(),
            ));
        }
        check_keys(config, input_dim, tensors)?;
        let varmap = VarMap::new();
        let mut vars = HashMap::new();
        let mut state = HashMap::new();
        for spec in tensor_specs(config, input_dim) {
            let t = tensors[&spec.name].to_dtype(dtype)?.to_device(device)?;
            match spec.role {
                Role::Parameter => {
                    let var = Var::from_tensor(&t.detach())?;
                    vars.insert(spec.name.clone(), var.clone());
                    varmap_insert(&varmap, spec.name, var)?;
                }
                Role::SpectralState => {
                    state.insert(spec.name, t);
                }
            }
        }
        let spectral_layer = |p: &str| -> Result<SpectralLinear> {
            SpectralLinear::new(
                vars[&format!("{p}.weight_orig")].clone(),
                vars[&format!("{p}.bias")].clone(),
                state[&format!("{p}.weight_u")].clone(),
                state[&format!("{p}.weight_v")].clone(),
            )
        };
        let spectral = [
            spectral_layer(SPECTRAL_LAYERS[0])?,
            spectral_layer(SPECTRAL_LAYERS[1])?,
            spectral_layer(SPECTRAL_LAYERS[2])?,
        ];
        let layers = (0..config.depth)
            .map(|i| {
                let p = layer_prefix(i);
                let v = |n: &str| vars[&format!("{p}.{n}")].clone();
                let params = EncoderLayerParams {
                    in_proj_weight: v("self_attn.in_proj_weight"),
                    in_proj_bias: v("self_attn.in_proj_bias"),
                    out_proj_weight: v("self_attn.out_proj.weight"),
                    out_proj_bias: v("self_attn.out_proj.bias"),
                    linear1_weight: v("linear1.weight"),
                    linear1_bias: v("linear1.bias"),
                    linear2_weight: v("linear2.weight"),
                    linear2_bias: v("linear2.bias"),
                    norm1: (v("norm1.weight"), v("norm1.bias")),
                    norm2: (v("norm2.weight"), v("norm2.bias")),
                };
                EncoderLayer::new(params, config.heads, config.dropout)
            })
            .collect();
        Ok(Discriminator {
            config: config.clone(),
            input_dim,
            varmap,
            vars,
            spectral,
            layers,
            dropout_rng: DropoutRng::new(dropout_seed),
            grad_sink: ParamGrads::default(),
            dtype,
            device: device.clone(),
        })
    }

    /// Loads a discriminator from a safetensors file written by [`Discriminator::save`] (or converted
    /// from the authors' `disc_chosen.pt` / `disc_rejected.pt` state dicts).
    pub fn load(
        path: &Path,
        config: &DiscriminatorConfig,
        input_dim: usize,
        dropout_seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let tensors = read_safetensors(path)?;
        Self::from_tensors(config, input_dim, &tensors, dropout_seed, dtype, device)
    }

    /// Writes every parameter and the u/v state to `path` (safetensors, PyTorch key names).
    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.tensors(), path)
            .map_err(|e| Error::Checkpoint(format!("writing {}: {e}", path.display())))
    }

    /// Every parameter (current values, detached) and u/v vector, by PyTorch key.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        let mut out = self.spectral_state();
        for (name, var) in &self.vars {
            out.insert(name.clone(), var.as_detached_tensor());
        }
        out
    }

    /// Overwrites every parameter and u/v from `tensors` (checkpoint restore; same keys as `tensors()`).
    pub fn set_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        check_keys(&self.config, self.input_dim, tensors)?;
        for (name, var) in &self.vars {
            var.set(
                &tensors[name]
                    .to_dtype(self.dtype)?
                    .to_device(&self.device)?,
            )?;
        }
        self.set_spectral_state(tensors)
    }

    /// The power-iteration vectors: `{project_in, head.0, head.2}.weight_{u,v}`.
    pub fn spectral_state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (prefix, layer) in SPECTRAL_LAYERS.iter().zip(&self.spectral) {
            let (u, v) = layer.state();
            out.insert(format!("{prefix}.weight_u"), u.clone());
            out.insert(format!("{prefix}.weight_v"), v.clone());
        }
        out
    }

    /// Restores the power-iteration vectors from a map holding (at least) their keys.
    pub fn set_spectral_state(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for (prefix, layer) in SPECTRAL_LAYERS.iter().zip(&mut self.spectral) {
            let get = |uv: &str| {
                let key = format!("{prefix}.weight_{uv}");
                tensors
                    .get(&key)
                    .ok_or_else(|| Error::Checkpoint(format!("discriminator state lacks `{key}`")))
            };
            layer.set_state(get("u")?, get("v")?)?;
        }
        Ok(())
    }

    /// The dropout generator's state (save it with the checkpoint).
    pub fn dropout_rng(&self) -> DropoutRng {
        self.dropout_rng
    }

    /// Restores the dropout generator's state.
    pub fn set_dropout_rng(&mut self, rng: DropoutRng) {
        self.dropout_rng = rng;
    }

    /// The trainable parameters, for this discriminator's own optimizer.
    pub fn var_map(&self) -> &VarMap {
        &self.varmap
    }

    /// The trainable parameters with their PyTorch names, sorted by name.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut vars: Vec<_> = self
            .vars
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// The number of trainable scalars.
    pub fn num_parameters(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The configuration.
    pub fn config(&self) -> &DiscriminatorConfig {
        &self.config
    }

    /// The latent width `d` it accepts.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Scores `latents` `[B, T, d]` (any float dtype; cast to the discriminator's) under `mask`
    /// `[B, T]` (1 = attend and pool, 0 = ignore; at least one 1 per row). Returns `[B]` logits.
    ///
    /// [`Mode::Train`] applies dropout and advances every spectral-norm u/v by one power iteration;
    /// the other modes change nothing. Sequences longer than `max_positions` are an error.
    pub fn forward(&mut self, latents: &Tensor, mask: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut scores = self.forward_each(&[(latents, mask)], mode)?;
        Ok(scores.remove(0))
    }

    /// Moves the encoder parameters' gradients that backward passes through this discriminator's
    /// f32 CPU forwards left behind into `grads` (adding to any gradient already there). Call it
    /// after every backward pass through a [`Mode::Train`] or [`Mode::Eval`] forward: the fused
    /// encoder stack hands candle the input's gradient only (the next such forward fails while
    /// gradients wait here).
    pub fn take_grads(&self, grads: &mut GradStore) -> Result<()> {
        self.grad_sink.drain_into(grads)
    }

    /// Scores each `(latents, mask)` input as successive [`Discriminator::forward`] calls in this
    /// order would (one power iteration per call and layer in training mode, each call's dropout
    /// masks), but runs the encoder once over the inputs stacked along the batch: one set of
    /// larger products instead of one per input. (Inputs of different sequence lengths are scored
    /// one after the other.)
    pub fn forward_each(
        &mut self,
        inputs: &[(&Tensor, &Tensor)],
        mode: Mode,
    ) -> Result<Vec<Tensor>> {
        if mode != Mode::Frozen && self.grad_sink.pending()? > 0 {
            return Err(Error::Training(
                "the discriminator's encoder gradients from the last backward pass were not \
                 collected: call Discriminator::take_grads after each backward pass"
                    .into(),
            ));
        }
        // Every input is checked before any state (u/v, dropout stream) moves.
        let mut rows = Vec::with_capacity(inputs.len());
        let mut masks = Vec::with_capacity(inputs.len());
        let mut seqs = Vec::with_capacity(inputs.len());
        for &(latents, mask) in inputs {
            let (b, t) = check_input(latents, self.input_dim, self.config.max_positions)?;
            masks.push(PoolingMask::new(mask, b, t, self.dtype, &self.device)?);
            rows.push(b);
            seqs.push(t);
        }
        if seqs.windows(2).any(|w| w[0] != w[1]) {
            // Different lengths cannot be stacked: one forward per input, in order.
            let mut scores = Vec::with_capacity(inputs.len());
            for input in inputs {
                scores.append(&mut self.forward_each(std::slice::from_ref(input), mode)?);
            }
            return Ok(scores);
        }
        let [project_in, head_hidden, head_out] = &mut self.spectral;
        // The input projection is spectrally normalized: each call gets its own σ.
        let mut projected = inputs
            .iter()
            .map(|&(latents, _)| project_in.forward(&latents.to_dtype(self.dtype)?, mode))
            .collect::<Result<Vec<_>>>()?;
        let Some(&t) = seqs.first() else {
            return Ok(Vec::new());
        };
        let mask = match masks.len() {
            1 => masks.remove(0),
            _ => PoolingMask::cat(&masks)?,
        };
        let x = match projected.len() {
            1 => projected.remove(0),
            _ => Tensor::cat(&projected, 0)?,
        };
        let pos = mode.param(&self.vars["pos_embedding"]).narrow(1, 0, t)?;
        let mut x = x.broadcast_add(&pos)?;
        let sites = match mode.is_training() {
            true => self.layers.iter().map(EncoderLayer::dropout_sites).sum(),
            false => 0,
        };
        let mut drops = DropoutDraws::new(
            &mut self.dropout_rng,
            rows.clone(),
            sites,
            self.config.dropout,
        );
        let fused = x.dtype() == DType::F32 && x.device().is_cpu() && !self.layers.is_empty();
        let pooled = match self.layers.split_last() {
            // f32 on the CPU: the whole stack as one op with a hand-written backward.
            Some(_) if fused => {
                let sink = (mode != Mode::Frozen).then(|| self.grad_sink.clone());
                let rows = (rows.iter().sum(), t);
                fused_stack(&self.layers, &x, &mask, rows, mode, &mut drops, sink)?
            }
            Some((last, layers)) => {
                for layer in layers {
                    x = layer.forward(&x, &mask.attention_bias, mode, &mut drops)?;
                }
                let bias = &mask.attention_bias;
                last.forward_pooled(&x, bias, mode, &mut drops, |h| mask.pool(h))?
            }
            None => mask.pool(&x)?,
        };
        drops.finish()?;
        // The head is spectrally normalized too: one call per input, in order.
        let mut scores = Vec::with_capacity(rows.len());
        let mut offset = 0;
        for b in rows {
            let h = gelu(&head_hidden.forward(&pooled.narrow(0, offset, b)?, mode)?)?;
            scores.push(head_out.forward(&h, mode)?.squeeze(1)?);
            offset += b;
        }
        Ok(scores)
    }
}

/// The `(batch, seq)` of discriminator input `latents` `[B, T, input_dim]`, or an error naming what
/// is wrong.
fn check_input(latents: &Tensor, input_dim: usize, max_positions: usize) -> Result<(usize, usize)> {
    let (b, t, d) = match *latents.dims() {
        [b, t, d] => (b, t, d),
        ref dims => {
            return Err(Error::data(
                "discriminator input",
                format!("latents must be [batch, seq, {input_dim}], got {dims:?}"),
            ));
        }
    };
    if d != input_dim {
        return Err(Error::data(
            "discriminator input",
            format!("latent width {d} differs from the discriminator's input_dim {input_dim}"),
        ));
    }
    if t > max_positions {
        return Err(Error::Config(format!(
            "sequence length {t} exceeds discriminator.max_positions = {max_positions}; raise it \
             or lower max_length (sequences are never truncated)"
        )));
    }
    Ok((b, t))
}

impl std::fmt::Debug for Discriminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discriminator")
            .field("config", &self.config)
            .field("input_dim", &self.input_dim)
            .field("parameters", &self.num_parameters())
            .field("dropout_rng", &self.dropout_rng)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}
