//! The preference objectives: one tagged enum whose variants carry only their own parameters, under
//! TRL's names and defaults, with range checks and dispatch to the loss functions.

use serde::{Deserialize, Serialize};

use super::bco::BcoRunningMean;
use super::inputs::{LossInputs, LossOutput};
use super::simpo::SimpoLossType;
use super::{aot, apo, bco, cpo, discopop, dpo, exo, ipo, nca, orpo, simpo};
use crate::{Error, Result};

fn default_beta() -> f64 {
    0.1
}

/// Parameters of losses that only have a temperature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaParams {
    /// β, the inverse temperature of the implicit reward (TRL default 0.1).
    #[serde(default = "default_beta")]
    pub beta: f64,
}

/// Parameters of logistic losses with label smoothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmoothedParams {
    /// β (TRL default 0.1).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// ε, the assumed rate of flipped preference labels, in [0, ½) (default 0).
    #[serde(default)]
    pub label_smoothing: f64,
}

fn default_exo_epsilon() -> f64 {
    1e-3
}

/// Parameters of EXO-pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExoParams {
    /// β (TRL default 0.1).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// ε of the smoothed target distribution, in (0, 1) (TRL's effective default 1e−3).
    #[serde(default = "default_exo_epsilon")]
    pub label_smoothing: f64,
}

fn default_discopop_tau() -> f64 {
    0.05
}

/// Parameters of DiscoPOP.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscopopParams {
    /// β (TRL default 0.1).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// τ, the temperature of the logistic/exponential blend (TRL `discopop_tau`, default 0.05).
    #[serde(default = "default_discopop_tau", alias = "tau")]
    pub discopop_tau: f64,
}

fn default_simpo_beta() -> f64 {
    2.0
}

fn default_gamma_beta_ratio() -> f64 {
    0.25
}

/// Parameters of SimPO (names and defaults of `princeton-nlp/SimPO`'s `SimPOConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpoParams {
    /// β (default 2.0; the paper sweeps 2–10).
    #[serde(default = "default_simpo_beta")]
    pub beta: f64,
    /// γ/β, the target reward margin over β (default 0.25; γ = β·gamma_beta_ratio).
    #[serde(default = "default_gamma_beta_ratio")]
    pub gamma_beta_ratio: f64,
    /// Weight of the NLL term on chosen completions (default 0: off).
    #[serde(default)]
    pub sft_weight: f64,
    /// ε for the sigmoid type, in [0, ½) (default 0).
    #[serde(default)]
    pub label_smoothing: f64,
    /// `sigmoid` (default) or `hinge`.
    #[serde(default)]
    pub loss_type: SimpoLossType,
}

fn default_cpo_alpha() -> f64 {
    1.0
}

/// Parameters of CPO (TRL `CPOConfig` names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpoParams {
    /// β (default 0.1).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// ε, in [0, ½) (default 0).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Weight of the behaviour-cloning NLL term (default 1.0).
    #[serde(default = "default_cpo_alpha")]
    pub cpo_alpha: f64,
}

/// A preference objective, selected by `type` (TRL's `loss_type` key). Formulas, papers and
/// conventions are documented on the function each variant calls (see [`super`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Objective {
    /// DPO / cDPO, `−(1−ε) log σ(βh) − ε log σ(−βh)`: [`super::sigmoid`].
    Sigmoid(SmoothedParams),
    /// Robust DPO: [`super::robust`].
    Robust(SmoothedParams),
    /// IPO on average log-ratios: [`super::ipo()`].
    Ipo(BetaParams),
    /// Hinge (SLiC/RSO): [`super::hinge`].
    Hinge(BetaParams),
    /// EXO-pair: [`super::exo_pair`].
    ExoPair(ExoParams),
    /// NCA-pair: [`super::nca_pair`].
    NcaPair(BetaParams),
    /// BCO-pair with the running-mean shift δ (legacy TRL): [`super::bco_pair`].
    BcoPair(BetaParams),
    /// SPPO with hard labels: [`super::sppo_hard`].
    SppoHard(BetaParams),
    /// AOT for paired data (sorts over the batch): [`super::aot()`].
    Aot(SmoothedParams),
    /// AOT for unpaired data (TRL ≤ 0.28 `aot_pair`): [`super::aot_unpaired`].
    #[serde(alias = "aot_pair")]
    AotUnpaired(SmoothedParams),
    /// APO-zero: [`super::apo_zero`].
    ApoZero(BetaParams),
    /// APO-down: [`super::apo_down`].
    ApoDown(BetaParams),
    /// DiscoPOP: [`super::discopop()`].
    Discopop(DiscopopParams),
    /// Length-normalized DPO: [`super::sigmoid_norm`].
    SigmoidNorm(BetaParams),
    /// SimPO (reference-free): [`super::simpo()`].
    Simpo(SimpoParams),
    /// CPO (reference-free): [`super::cpo()`].
    Cpo(CpoParams),
    /// ORPO (reference-free; `beta` is λ): [`super::orpo()`].
    Orpo(BetaParams),
}

impl Default for Objective {
    /// TRL's default: DPO (`sigmoid`) with β = 0.1.
    fn default() -> Self {
        Objective::Sigmoid(SmoothedParams {
            beta: default_beta(),
            label_smoothing: 0.0,
        })
    }
}

impl Objective {
    /// The objective's `type` key.
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Sigmoid(_) => "sigmoid",
            Objective::Robust(_) => "robust",
            Objective::Ipo(_) => "ipo",
            Objective::Hinge(_) => "hinge",
            Objective::ExoPair(_) => "exo_pair",
            Objective::NcaPair(_) => "nca_pair",
            Objective::BcoPair(_) => "bco_pair",
            Objective::SppoHard(_) => "sppo_hard",
            Objective::Aot(_) => "aot",
            Objective::AotUnpaired(_) => "aot_unpaired",
            Objective::ApoZero(_) => "apo_zero",
            Objective::ApoDown(_) => "apo_down",
            Objective::Discopop(_) => "discopop",
            Objective::SigmoidNorm(_) => "sigmoid_norm",
            Objective::Simpo(_) => "simpo",
            Objective::Cpo(_) => "cpo",
            Objective::Orpo(_) => "orpo",
        }
    }

    /// Whether the objective needs the reference model's log-probs (false for SimPO, CPO, ORPO).
    pub fn requires_reference(&self) -> bool {
        !matches!(
            self,
            Objective::Simpo(_) | Objective::Cpo(_) | Objective::Orpo(_)
        )
    }

    /// β of the objective (λ for ORPO).
    pub fn beta(&self) -> f64 {
        match self {
            Objective::Sigmoid(p) | Objective::Robust(p) => p.beta,
            Objective::Aot(p) | Objective::AotUnpaired(p) => p.beta,
            Objective::Ipo(p) | Objective::Hinge(p) | Objective::NcaPair(p) => p.beta,
            Objective::BcoPair(p) | Objective::SppoHard(p) | Objective::ApoZero(p) => p.beta,
            Objective::ApoDown(p) | Objective::SigmoidNorm(p) | Objective::Orpo(p) => p.beta,
            Objective::ExoPair(p) => p.beta,
            Objective::Discopop(p) => p.beta,
            Objective::Simpo(p) => p.beta,
            Objective::Cpo(p) => p.beta,
        }
    }

    /// Checks every parameter's range; the error names the objective, the value and the valid range.
    pub fn validate(&self) -> Result<()> {
        let name = self.name();
        let fail = |what: &str, value: f64, range: &str| {
            Err(Error::Config(format!(
                "loss `{name}`: {what} = {value} is out of range; it must be {range}"
            )))
        };
        let beta = self.beta();
        if !(beta.is_finite() && beta > 0.0) {
            return fail("beta", beta, "finite and > 0");
        }
        let smoothing = match self {
            Objective::Sigmoid(p) | Objective::Robust(p) => Some(p.label_smoothing),
            Objective::Aot(p) | Objective::AotUnpaired(p) => Some(p.label_smoothing),
            Objective::Simpo(p) => Some(p.label_smoothing),
            Objective::Cpo(p) => Some(p.label_smoothing),
            _ => None,
        };
        if let Some(eps) = smoothing
            && !(0.0..0.5).contains(&eps)
        {
            return fail("label_smoothing", eps, "in [0, 0.5)");
        }
        match self {
            Objective::ExoPair(p) if !(p.label_smoothing > 0.0 && p.label_smoothing < 1.0) => {
                fail("label_smoothing", p.label_smoothing, "in (0, 1)")
            }
            Objective::Discopop(p) if !(p.discopop_tau.is_finite() && p.discopop_tau > 0.0) => {
                fail("discopop_tau", p.discopop_tau, "finite and > 0")
            }
            Objective::Simpo(p) if !p.gamma_beta_ratio.is_finite() => {
                fail("gamma_beta_ratio", p.gamma_beta_ratio, "finite")
            }
            Objective::Simpo(p) if !(p.sft_weight.is_finite() && p.sft_weight >= 0.0) => {
                fail("sft_weight", p.sft_weight, "finite and >= 0")
            }
            Objective::Cpo(p) if !(p.cpo_alpha.is_finite() && p.cpo_alpha >= 0.0) => {
                fail("cpo_alpha", p.cpo_alpha, "finite and >= 0")
            }
            _ => Ok(()),
        }
    }
}

impl Objective {
    /// Computes this objective alone on `inputs` (BCO-pair reads and updates `bco_running_mean`).
    pub fn compute(
        &self,
        inputs: &LossInputs,
        bco_running_mean: &mut BcoRunningMean,
    ) -> Result<LossOutput> {
        match self {
            Objective::Sigmoid(p) => dpo::sigmoid(inputs, p.beta, p.label_smoothing),
            Objective::Robust(p) => dpo::robust(inputs, p.beta, p.label_smoothing),
            Objective::Ipo(p) => ipo::ipo(inputs, p.beta),
            Objective::Hinge(p) => dpo::hinge(inputs, p.beta),
            Objective::ExoPair(p) => exo::exo_pair(inputs, p.beta, p.label_smoothing),
            Objective::NcaPair(p) => nca::nca_pair(inputs, p.beta),
            Objective::BcoPair(p) => bco::bco_pair(inputs, p.beta, bco_running_mean),
            Objective::SppoHard(p) => ipo::sppo_hard(inputs, p.beta),
            Objective::Aot(p) => aot::aot(inputs, p.beta, p.label_smoothing),
            Objective::AotUnpaired(p) => aot::aot_unpaired(inputs, p.beta, p.label_smoothing),
            Objective::ApoZero(p) => apo::apo_zero(inputs, p.beta),
            Objective::ApoDown(p) => apo::apo_down(inputs, p.beta),
            Objective::Discopop(p) => discopop::discopop(inputs, p.beta, p.discopop_tau),
            Objective::SigmoidNorm(p) => dpo::sigmoid_norm(inputs, p.beta),
            Objective::Simpo(p) => simpo::simpo(
                inputs,
                p.beta,
                p.gamma_beta_ratio,
                p.label_smoothing,
                p.sft_weight,
                p.loss_type,
            ),
            Objective::Cpo(p) => cpo::cpo(inputs, p.beta, p.label_smoothing, p.cpo_alpha),
            Objective::Orpo(p) => orpo::orpo(inputs, p.beta),
        }
    }
}
