//! `[lora]`: low-rank adapters (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models",
//! 2021) with PEFT's key names and defaults (`LoraConfig`). The table's presence turns LoRA on:
//! the base weights stay frozen and only the adapters train.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::lora::{LORA_MODULES, LoraSpec, lora_scaling};

/// `target_modules`: a list of projection names, or the string `"all-linear"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    /// `"all-linear"`: every projection of [`LORA_MODULES`].
    Preset(String),
    /// Explicit names from [`LORA_MODULES`].
    List(Vec<String>),
}

impl TargetModules {
    /// The targeted projections in [`LORA_MODULES`] order, or a message naming what is wrong.
    pub fn resolve(&self) -> std::result::Result<Vec<&'static str>, String> {
        let names: Vec<&str> = match self {
            TargetModules::Preset(p) if p == "all-linear" => return Ok(LORA_MODULES.to_vec()),
            TargetModules::Preset(p) => {
                return Err(format!(
                    "lora.target_modules = \"{p}\": the only string accepted is \"all-linear\"; otherwise list projection names, e.g. [\"q_proj\", \"v_proj\"]"
                ));
            }
            TargetModules::List(l) => l.iter().map(String::as_str).collect(),
        };
        let unknown: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !LORA_MODULES.contains(n))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "lora.target_modules names unknown module(s) {unknown:?}; choose from {LORA_MODULES:?} or \"all-linear\" (the LM head is never adapted)"
            ));
        }
        if names.is_empty() {
            return Err(
                "lora.target_modules is empty; list at least one projection (PEFT's default is [\"q_proj\", \"v_proj\"]) or use \"all-linear\"".into(),
            );
        }
        Ok(LORA_MODULES
            .iter()
            .copied()
            .filter(|m| names.contains(m))
            .collect())
    }
}

/// `[lora]`: PEFT's `LoraConfig` keys and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSection {
    /// Rank of the adapters (PEFT default 8).
    pub r: usize,
    /// α: the update is scaled by α/r (or α/√r with `use_rslora`); PEFT default 8.
    pub lora_alpha: f64,
    /// Dropout on the adapter's input (PEFT default 0: none).
    pub lora_dropout: f64,
    /// Which projections carry adapters (PEFT's default for Llama: `q_proj`, `v_proj`).
    pub target_modules: TargetModules,
    /// Rank-stabilized scaling α/√r (Kalajdzievski, 2023) instead of α/r.
    pub use_rslora: bool,
    /// Start from this PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`)
    /// instead of PEFT's initialization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

impl Default for LoraSection {
    fn default() -> Self {
        LoraSection {
            r: 8,
            lora_alpha: 8.0,
            lora_dropout: 0.0,
            target_modules: TargetModules::List(vec!["q_proj".into(), "v_proj".into()]),
            use_rslora: false,
            init_from: None,
        }
    }
}

impl LoraSection {
    /// The factor of the low-rank update: α/r, or α/√r with `use_rslora` (PEFT's `scaling`).
    pub fn scaling(&self) -> f64 {
        lora_scaling(self.lora_alpha, self.r, self.use_rslora)
    }

    /// The adapters' spec (after [`LoraSection::check`]; an invalid `target_modules` is an error).
    pub fn spec(&self) -> crate::Result<LoraSpec> {
        let targets = self
            .target_modules
            .resolve()
            .map_err(crate::Error::Config)?;
        Ok(LoraSpec {
            r: self.r,
            lora_alpha: self.lora_alpha,
            lora_dropout: self.lora_dropout,
            target_modules: targets.into_iter().map(str::to_owned).collect(),
            use_rslora: self.use_rslora,
        })
    }

    /// Checks every value; the message names the key and what to do.
    pub fn check(&self, gradient_checkpointing: bool) -> std::result::Result<(), (String, String)> {
        let fail = |key: &str, msg: String| Err((format!("lora.{key}"), msg));
        if self.r == 0 {
            return fail(
                "r",
                "lora.r = 0; the rank must be 1 or more (PEFT's default is 8)".into(),
            );
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return fail(
                "lora_alpha",
                format!(
                    "lora.lora_alpha = {} must be a positive finite number (commonly r or 2r)",
                    self.lora_alpha
                ),
            );
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return fail(
                "lora_dropout",
                format!(
                    "lora.lora_dropout = {} must be in [0, 1); 0 turns it off",
                    self.lora_dropout
                ),
            );
        }
        if self.lora_dropout > 0.0 && gradient_checkpointing {
            return fail(
                "lora_dropout",
                format!(
                    "lora.lora_dropout = {} with training.gradient_checkpointing = true is not supported yet (the recomputed layer would draw new masks); set one of them off",
                    self.lora_dropout
                ),
            );
        }
        if let Err(msg) = self.target_modules.resolve() {
            return fail("target_modules", msg);
        }
        if self
            .init_from
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return fail(
                "init_from",
                "lora.init_from is empty; name a PEFT adapter directory, or leave the key out"
                    .into(),
            );
        }
        Ok(())
    }
}
