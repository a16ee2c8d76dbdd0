//! LoRA (Hu et al., 2021, arXiv:2106.09685) as PEFT computes it: a wrapped projection gives
//! `y = x Wᵀ (+ b) + s · (dropout(x) Aᵀ) Bᵀ` with `A` `[r, in]`, `B` `[out, r]` and
//! `s = α/r` (or `α/√r`, rsLoRA). A starts Kaiming-uniform (`kaiming_uniform_(a=√5)`:
//! `U(−1/√in, 1/√in)`), B at zero, so a fresh adapter leaves the model's output unchanged.
//!
//! The base weights stay plain tensors (frozen); only A and B are `Var`s, named by PEFT's keys
//! (`base_model.model.<hf name>.lora_A.weight`), so the optimizer, clipping and checkpoints cover
//! the adapters only. [`CausalLm::without_adapters`] is the reference: the same base tensors
//! (candle tensors are reference-counted), no second copy. Adapted layers take the composed path;
//! the fused decoder-block ops do not carry adapters yet.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor, Var};

use super::decoder::CausalLm;
use super::lora_dropout::LoraDropout;
use super::weights::{LoadedParams, Trainability, Weights};
use crate::ganpo::rng::{DropoutRng, SplitMix64};
use crate::kernels::{self, ParamGrads};
use crate::{Error, Result};

/// The projections an adapter may wrap, in the order PEFT's `"all-linear"` finds them in a
/// Llama-family decoder layer. The LM head is never a target (as in PEFT).
pub const LORA_MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// PEFT's `scaling`: `alpha / r`, or `alpha / sqrt(r)` when rank-stabilized.
pub fn lora_scaling(alpha: f64, r: usize, use_rslora: bool) -> f64 {
    if use_rslora {
        alpha / (r as f64).sqrt()
    } else {
        alpha / r as f64
    }
}

/// What an adapted model's adapters are: PEFT's `LoraConfig` fields that shape the computation.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    /// Rank.
    pub r: usize,
    /// α.
    pub lora_alpha: f64,
    /// Dropout probability on the adapter input (0 = none).
    pub lora_dropout: f64,
    /// Targeted projection names (`q_proj`, ...), in [`LORA_MODULES`] order.
    pub target_modules: Vec<String>,
    /// α/√r instead of α/r.
    pub use_rslora: bool,
}

impl LoraSpec {
    /// The update's factor `s`.
    pub fn scaling(&self) -> f64 {
        lora_scaling(self.lora_alpha, self.r, self.use_rslora)
    }
}

/// One projection's adapter.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    a: Tensor,
    b: Tensor,
    scale: f64,
    pub(super) dropout: Option<Arc<LoraDropout>>,
}

impl LoraAdapter {
    /// `A` `[r, in]`.
    pub fn a(&self) -> &Tensor {
        &self.a
    }

    /// `B` `[out, r]`.
    pub fn b(&self) -> &Tensor {
        &self.b
    }

    /// `y + s · (dropout(x) Aᵀ) Bᵀ` for `x` `[..., in]` and the base output `y` `[..., out]`.
    /// The factor `s` goes on the rank-`r` intermediate and the up-projection adds into `y` in one
    /// op ([`kernels::linear_residual`]), so the adapter keeps one output-sized tensor alive for
    /// the backward pass instead of three.
    pub fn add_to(&self, y: &Tensor, x: &Tensor) -> Result<Tensor> {
        let x = match &self.dropout {
            Some(d) => d.apply(x)?,
            None => x.clone(),
        };
        let h = (kernels::linear(&x, &self.a, None)? * self.scale)?;
        kernels::linear_residual(&h, &self.b, y)
    }

    /// `s · B A`, the dense update of the `[out, in]` weight.
    pub fn delta(&self) -> Result<Tensor> {
        Ok((self.b.detach().matmul(&self.a.detach())? * self.scale)?)
    }
}

/// Where a model's adapters start.
#[derive(Debug, Clone, Copy)]
pub enum LoraInit<'a> {
    /// PEFT's initialization (A Kaiming-uniform from this seed, B zero).
    Fresh(u64),
    /// Given tensors by PEFT key (an adapter directory's, or a checkpoint's).
    Tensors(&'a HashMap<String, Tensor>),
}

/// PEFT's key of a projection's A or B: `base_model.model.<hf name without .weight>.lora_A.weight`.
pub fn peft_key(hf_prefix: &str, which: char) -> String {
    format!("base_model.model.{hf_prefix}.lora_{which}.weight")
}

impl CausalLm {
    /// Attaches adapters for `spec` to the projections it targets in every layer. The model must
    /// be frozen (loaded with [`Trainability::Frozen`]): its base weights stay constants. With
    /// `trainable`, A and B become the model's only variables (named by PEFT's keys); otherwise
    /// they are constants too (inference with an adapter). `dropout_seed` seeds the adapters'
    /// dropout (when `spec.lora_dropout > 0`).
    pub fn attach_lora(
        &mut self,
        spec: &LoraSpec,
        init: LoraInit<'_>,
        trainable: bool,
        dropout_seed: u64,
    ) -> Result<()> {
        if !self.params.vars.is_empty() || self.lora.is_some() {
            return Err(Error::Training(
                "LoRA adapters attach to a frozen base model without adapters; load the base with Trainability::Frozen".into(),
            ));
        }
        if spec.r == 0 {
            return Err(Error::Config(
                "lora.r = 0; the rank must be 1 or more".into(),
            ));
        }
        let (dtype, device) = (self.dtype, self.device.clone());
        let dropout = (spec.lora_dropout > 0.0).then(|| {
            Arc::new(LoraDropout {
                p: spec.lora_dropout,
                rng: Mutex::new(DropoutRng::new(dropout_seed)),
                active: AtomicBool::new(false),
            })
        });
        let mut rng = SplitMix64::new(match init {
            LoraInit::Fresh(seed) => seed,
            LoraInit::Tensors(_) => 0,
        });
        let mut vars = Vec::new();
        let mut used = 0usize;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            for (name, linear) in layer.projections_mut() {
                let module = name.rsplit('.').next().unwrap_or(&name);
                if !spec.target_modules.iter().any(|t| t == module) {
                    continue;
                }
                let prefix = format!("model.layers.{i}.{name}");
                let (out_dim, in_dim) = linear.weight().dims2()?;
                let (a_key, b_key) = (peft_key(&prefix, 'A'), peft_key(&prefix, 'B'));
                let (a, b) = match init {
                    LoraInit::Fresh(_) => {
                        let bound = 1.0 / (in_dim as f64).sqrt();
                        let values: Vec<f32> = (0..spec.r * in_dim)
                            .map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32)
                            .collect();
                        let a = Tensor::from_vec(values, (spec.r, in_dim), &device)?;
                        (a, Tensor::zeros((out_dim, spec.r), DType::F32, &device)?)
                    }
                    LoraInit::Tensors(map) => {
                        used += 2;
                        (
                            adapter_tensor(map, &a_key, &[spec.r, in_dim])?,
                            adapter_tensor(map, &b_key, &[out_dim, spec.r])?,
                        )
                    }
                };
                let a = a.to_dtype(dtype)?.to_device(&device)?;
                let b = b.to_dtype(dtype)?.to_device(&device)?;
                let (a, b) = if trainable {
                    let (va, vb) = (Var::from_tensor(&a)?, Var::from_tensor(&b)?);
                    let tensors = (va.as_tensor().clone(), vb.as_tensor().clone());
                    vars.push((a_key, va));
                    vars.push((b_key, vb));
                    tensors
                } else {
                    (a.detach(), b.detach())
                };
                linear.set_adapter(Some(LoraAdapter {
                    a,
                    b,
                    scale: spec.scaling(),
                    dropout: dropout.clone(),
                }));
            }
        }
        if let LoraInit::Tensors(map) = init
            && used != map.len()
        {
            let mut extra: Vec<&String> = map
                .keys()
                .filter(|k| !vars.iter().any(|(n, _)| n == *k))
                .collect();
            extra.sort();
            return Err(Error::Config(format!(
                "the adapter holds {} tensor(s) for modules this LoRA config does not target (e.g. {:?}); its target_modules must match the config's ({:?})",
                map.len() - used,
                extra.into_iter().take(3).collect::<Vec<_>>(),
                spec.target_modules
            )));
        }
        if trainable {
            self.block_grads = Some(ParamGrads::default());
            self.params.vars = vars;
        }
        self.lora = Some(spec.clone());
        Ok(())
    }

    /// The attached adapters' spec, if any.
    pub fn lora_spec(&self) -> Option<&LoraSpec> {
        self.lora.as_ref()
    }

    /// Every adapter tensor by PEFT key, layer by layer, A before B (what an adapter file holds).
    pub fn adapter_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (name, linear) in layer.clone().projections_mut() {
                if let Some(adapter) = linear.adapter() {
                    let prefix = format!("model.layers.{i}.{name}");
                    out.push((peft_key(&prefix, 'A'), adapter.a.clone()));
                    out.push((peft_key(&prefix, 'B'), adapter.b.clone()));
                }
            }
        }
        out
    }

    /// The same model without its adapters: the frozen base, sharing the base tensors (no copy).
    /// With LoRA on, this is the reference model.
    pub fn without_adapters(&self) -> CausalLm {
        let mut layers = self.layers.clone();
        for layer in &mut layers {
            for (_, linear) in layer.projections_mut() {
                linear.set_adapter(None);
            }
        }
        CausalLm {
            config: self.config.clone(),
            embed_tokens: self.embed_tokens.detach(),
            layers,
            norm: self.norm.clone(),
            lm_head: self.lm_head.clone(),
            rotary: self.rotary.clone(),
            params: LoadedParams {
                vars: Vec::new(),
                named: self.params.named.clone(),
            },
            recompute: None,
            block_grads: None,
            lora: None,
            dtype: self.dtype,
            device: self.device.clone(),
        }
    }

    /// A frozen model whose targeted weights are `W + s·B·A` (what `ganpo merge` saves).
    pub fn merged(&self) -> Result<CausalLm> {
        let mut deltas: HashMap<String, Tensor> = HashMap::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (name, linear) in layer.clone().projections_mut() {
                if let Some(adapter) = linear.adapter() {
                    deltas.insert(format!("model.layers.{i}.{name}.weight"), adapter.delta()?);
                }
            }
        }
        let mut tensors = HashMap::new();
        for (name, t) in &self.params.named {
            let t = t.detach();
            let t = match deltas.get(name) {
                Some(d) => (t + d.to_dtype(self.dtype)?)?,
                None => t,
            };
            tensors.insert(name.clone(), t);
        }
        let weights = Weights::new(
            tensors,
            std::path::Path::new("(merged model)"),
            Trainability::Frozen,
            self.dtype,
            &self.device,
        );
        CausalLm::from_weights(self.config.clone(), weights, self.dtype, &self.device)
    }
}

/// `map[key]`, checked against `shape`.
fn adapter_tensor(map: &HashMap<String, Tensor>, key: &str, shape: &[usize]) -> Result<Tensor> {
    let t = map.get(key).ok_or_else(|| {
        Error::Config(format!(
            "the adapter has no `{key}` (expected shape {shape:?}); its target_modules must include every module the LoRA config targets"
        ))
    })?;
    if t.dims() != shape {
        return Err(Error::Config(format!(
            "adapter tensor `{key}` has shape {:?} but r and the base model imply {shape:?}; the adapter's r or base model differ from this run's",
            t.dims()
        )));
    }
    Ok(t.to_dtype(DType::F32)?)
}
