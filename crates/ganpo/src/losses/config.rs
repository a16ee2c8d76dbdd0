//! The raw `[loss]` table: one objective (see [`Objective`]) or a weighted mix of them, plus the
//! composable terms (RPO, WPO, LD-DPO); validated once into a [`Loss`].
//!
//! ```
//! use ganpo::losses::LossConfig;
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     loss: LossConfig,
//! }
//!
//! let dpo: Config = toml::from_str(r#"
//!     [loss]
//!     rpo_alpha = 1.0           # + rpo_alpha · NLL(chosen)
//!     use_weighting = false     # WPO
//!     # ld_alpha = 0.5          # LD-DPO
//!
//!     [loss.objective]
//!     type = "sigmoid"
//!     beta = 0.1
//!     label_smoothing = 0.0
//! "#).unwrap();
//! assert!(dpo.loss.resolve().unwrap().requires_reference());
//!
//! // MPO: 0.8 · DPO + 0.2 · BCO-pair + 1.0 · NLL.
//! let mpo: Config = toml::from_str(r#"
//!     [loss]
//!     rpo_alpha = 1.0
//!
//!     [[loss.mix]]
//!     weight = 0.8
//!     objective = { type = "sigmoid", beta = 0.1 }
//!
//!     [[loss.mix]]
//!     weight = 0.2
//!     objective = { type = "bco_pair", beta = 0.1 }
//! "#).unwrap();
//! assert_eq!(mpo.loss.resolve().unwrap().components().len(), 2);
//! ```

use serde::{Deserialize, Serialize};

use super::loss::Loss;
use super::objective::Objective;
use crate::{Error, Result};

/// One weighted component of a `[[loss.mix]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixComponent {
    /// The component's weight (TRL `loss_weights`); losses **and** rewards are weighted by it.
    pub weight: f64,
    /// The component objective.
    pub objective: Objective,
}

/// The raw `[loss]` table: exactly one of `objective` or `mix`, plus the composable terms. Turn it into
/// a validated [`Loss`] with [`LossConfig::resolve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// A single objective (`[loss.objective]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// A weighted sum of objectives (`[[loss.mix]]`), as TRL's `loss_type` list with `loss_weights`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<MixComponent>,
    /// RPO: add `rpo_alpha · NLL(y_w)` to every pair's loss (TRL ≤ 0.28 `rpo_alpha`; paper α = 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_alpha: Option<f64>,
    /// WPO: multiply every pair's loss by `min(w(y_w)·w(y_l), 1)` (TRL `use_weighting`).
    #[serde(default)]
    pub use_weighting: bool,
    /// LD-DPO: damp the policy's log-probs beyond the shared length by `ld_alpha` ∈ [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ld_alpha: Option<f64>,
}

impl Default for LossConfig {
    /// TRL's default loss: DPO (`sigmoid`, β = 0.1) with no extra terms.
    fn default() -> Self {
        LossConfig {
            objective: Some(Objective::default()),
            mix: Vec::new(),
            rpo_alpha: None,
            use_weighting: false,
            ld_alpha: None,
        }
    }
}

impl LossConfig {
    /// Validates the table and resolves it into a [`Loss`].
    pub fn resolve(&self) -> Result<Loss> {
        let components = match (&self.objective, self.mix.as_slice()) {
            (Some(objective), []) => vec![(1.0, objective.clone())],
            (None, []) => {
                return Err(Error::Config(
                    "[loss] needs an objective: set [loss.objective] with a `type`, or [[loss.mix]]"
                        .into(),
                ));
            }
            (Some(_), _) => {
                return Err(Error::Config(
                    "[loss] has both `objective` and `mix`; keep one (a single objective is a mix of one)"
                        .into(),
                ));
            }
            (None, mix) => mix
                .iter()
                .map(|c| (c.weight, c.objective.clone()))
                .collect(),
        };
        for (weight, objective) in &components {
            if !(weight.is_finite() && *weight >= 0.0) {
                return Err(Error::Config(format!(
                    "loss.mix: the weight of `{}` must be a finite number ≥ 0, got {weight} (a negative weight would maximize that loss); drop the component instead",
                    objective.name()
                )));
            }
            objective.validate()?;
        }
        if components.iter().all(|(w, _)| *w == 0.0) {
            return Err(Error::Config(
                "loss.mix: every weight is 0, so nothing would be trained; give at least one component a positive weight".into(),
            ));
        }
        let count =
            |pred: fn(&Objective) -> bool| components.iter().filter(|(_, o)| pred(o)).count();
        if count(|o| matches!(o, Objective::BcoPair(_))) > 1 {
            return Err(Error::Config(
                "[[loss.mix]] has more than one `bco_pair`; they would share one running mean δ"
                    .into(),
            ));
        }
        if let Some(alpha) = self.rpo_alpha
            && !(alpha.is_finite() && alpha >= 0.0)
        {
            return Err(Error::Config(format!(
                "loss.rpo_alpha must be a finite number ≥ 0 (a negative weight would push the chosen completions' likelihood down), got {alpha}; the RPO paper uses 1.0"
            )));
        }
        if let Some(alpha) = self.ld_alpha {
            if !(0.0..=1.0).contains(&alpha) {
                return Err(Error::Config(format!(
                    "[loss] ld_alpha = {alpha} is out of range; it must be in [0, 1] (the paper suggests 0.5)"
                )));
            }
            if let Some((_, o)) = components.iter().find(|(_, o)| !o.requires_reference()) {
                return Err(Error::Config(format!(
                    "[loss] ld_alpha applies to reference-based losses (TRL's DPO trainer); `{}` has no LD-DPO form",
                    o.name()
                )));
            }
        }
        if self.use_weighting
            && let Some((_, o)) = components
                .iter()
                .find(|(_, o)| matches!(o, Objective::Aot(_) | Objective::AotUnpaired(_)))
        {
            return Err(Error::Config(format!(
                "[loss] use_weighting (WPO) weights pairs, but `{}` returns losses per sorted rank, not per pair",
                o.name()
            )));
        }
        Ok(Loss::new(
            components,
            self.rpo_alpha,
            self.use_weighting,
            self.ld_alpha,
        ))
    }
}
