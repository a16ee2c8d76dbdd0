//! The demo's settings: the default run, `--quick` (CI's smoke test), and what each knob does.

use std::path::PathBuf;

use serde::Serialize;

/// Demo settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoConfig {
    /// Where everything is written.
    pub output: PathBuf,
    /// Seeds to repeat the arms over (the SFT model and pairs are shared).
    pub seeds: usize,
    /// Task examples for SFT.
    pub sft_examples: usize,
    /// Fraction of SFT demonstrations carrying one random structural or content defect.
    pub sft_defect_rate: f64,
    /// Fraction of the defect-prone prompts' demonstrations carrying their systematic defect.
    pub sft_systematic_rate: f64,
    /// SFT optimizer steps.
    pub sft_steps: u64,
    /// Arms to train (all four by default).
    pub arms: Vec<String>,
    /// Prompts turned into training pairs.
    pub train_prompts: usize,
    /// Prompts turned into held-out pairs (`eval_*` reward accuracy).
    pub heldout_prompts: usize,
    /// Samples per prompt; the best and the worst make a pair.
    pub samples_per_prompt: usize,
    /// Smallest judge-score gap between chosen and rejected for a pair to be kept.
    pub min_gap: f64,
    /// Fraction of training pairs with swapped labels.
    pub label_noise: f64,
    /// Epochs of preference training per arm.
    pub epochs: usize,
    /// Epochs of the over-optimization study (DPO trained past its budget; 0 = skip it).
    pub overopt_epochs: usize,
    /// DPO's β and learning rate (both DPO arms).
    pub dpo: LossKnobs,
    /// SimPO's β (γ/β = 0.5) and learning rate (both SimPO arms).
    pub simpo: LossKnobs,
    /// GANPO's knobs in the DPO + GANPO arm.
    pub dpo_ganpo: GanpoKnobs,
    /// GANPO's knobs in the SimPO + GANPO arm.
    pub simpo_ganpo: GanpoKnobs,
    /// Validation prompts (`--tune` chooses the knobs by the judge score on them).
    pub validation_prompts: usize,
    /// Training metrics are logged every this many steps.
    pub logging_steps: u64,
    /// Held-out prompts for generation-based evaluation, per temperature.
    pub eval_prompts: usize,
    /// Sampling temperatures evaluated (0 = greedy).
    pub temperatures: Vec<f64>,
}

/// A base loss's own knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LossKnobs {
    /// β of the loss.
    pub beta: f64,
    /// Peak learning rate.
    pub learning_rate: f64,
}

/// GANPO's own knobs (the preference loss's come from its base arm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GanpoKnobs {
    /// λ, the weight of the adversarial term.
    pub lambda: f64,
    /// Discriminator width (model dimension).
    pub disc_width: usize,
    /// Discriminator depth (transformer layers).
    pub disc_depth: usize,
    /// Discriminator peak learning rate.
    pub disc_learning_rate: f64,
}

/// The knobs one arm trains with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ArmKnobs {
    /// The base loss's.
    pub loss: LossKnobs,
    /// GANPO's, in a GANPO arm.
    pub ganpo: Option<GanpoKnobs>,
}

// The defaults below are what `ganpo demo --tune` chose on the validation split (seed 0); its
// grids, budget and table are in `docs/benchmarks.md` ("Tuning").

/// DPO's tuned knobs.
pub const TUNED_DPO: LossKnobs = LossKnobs {
    beta: 0.05,
    learning_rate: 3e-5,
};
/// SimPO's tuned knobs.
pub const TUNED_SIMPO: LossKnobs = LossKnobs {
    beta: 1.0,
    learning_rate: 3e-5,
};
/// GANPO's tuned knobs on DPO (its discriminator lr is the authors' ratio, policy lr / 2).
pub const TUNED_DPO_GANPO: GanpoKnobs = GanpoKnobs {
    lambda: 0.3,
    disc_width: 64,
    disc_depth: 1,
    disc_learning_rate: 1.5e-5,
};
/// GANPO's tuned knobs on SimPO (the same choice as on DPO).
pub const TUNED_SIMPO_GANPO: GanpoKnobs = TUNED_DPO_GANPO;

impl DemoConfig {
    /// The arms' knobs in words, for the report: "DPO (β 0.1, lr 3e-5), DPO + GANPO (λ 1, …)".
    pub fn knobs_text(&self) -> String {
        let loss =
            |name: &str, k: LossKnobs| format!("{name} (β {}, lr {:e})", k.beta, k.learning_rate);
        let ganpo = |name: &str, g: GanpoKnobs| {
            format!(
                "{name} (the same + λ {}, discriminators {} wide × {} layer(s), their lr {:e})",
                g.lambda, g.disc_width, g.disc_depth, g.disc_learning_rate
            )
        };
        format!(
            "{}, {}, {}, {}",
            loss("DPO", self.dpo),
            ganpo("DPO + GANPO", self.dpo_ganpo),
            loss("SimPO, γ/β 0.5,", self.simpo),
            ganpo("SimPO + GANPO", self.simpo_ganpo)
        )
    }

    /// The knobs of the arm called `name` (one of [`super::arms::ARMS`]).
    pub fn knobs(&self, arm: &super::arms::Arm) -> ArmKnobs {
        use super::arms::BaseLoss;
        let (loss, ganpo) = match arm.loss {
            BaseLoss::Dpo => (self.dpo, self.dpo_ganpo),
            BaseLoss::Simpo => (self.simpo, self.simpo_ganpo),
        };
        ArmKnobs {
            loss,
            ganpo: arm.ganpo.then_some(ganpo),
        }
    }

    /// The default run or the `--quick` one (CI's smoke test; its duration is in `--quick`'s help).
    pub fn new(output: PathBuf, quick: bool, seeds: usize) -> Self {
        if quick {
            DemoConfig {
                output,
                seeds,
                sft_examples: 1500,
                sft_defect_rate: 0.2,
                sft_systematic_rate: 0.7,
                sft_steps: 200,
                arms: all_arms(),
                train_prompts: 96,
                heldout_prompts: 32,
                samples_per_prompt: 4,
                min_gap: 0.25,
                label_noise: 0.0,
                epochs: 1,
                overopt_epochs: 0,
                dpo: TUNED_DPO,
                simpo: TUNED_SIMPO,
                dpo_ganpo: TUNED_DPO_GANPO,
                simpo_ganpo: TUNED_SIMPO_GANPO,
                validation_prompts: 24,
                logging_steps: 1,
                eval_prompts: 24,
                temperatures: vec![0.0, 1.5],
            }
        } else {
            DemoConfig {
                output,
                seeds,
                sft_examples: 4000,
                sft_defect_rate: 0.2,
                sft_systematic_rate: 0.7,
                sft_steps: 800,
                arms: all_arms(),
                train_prompts: 1200,
                heldout_prompts: 320,
                samples_per_prompt: 8,
                min_gap: 0.25,
                label_noise: 0.0,
                epochs: 2,
                overopt_epochs: 8,
                dpo: TUNED_DPO,
                simpo: TUNED_SIMPO,
                dpo_ganpo: TUNED_DPO_GANPO,
                simpo_ganpo: TUNED_SIMPO_GANPO,
                validation_prompts: 256,
                logging_steps: 10,
                eval_prompts: 256,
                temperatures: vec![0.0, 0.7, 1.0, 1.5, 2.0],
            }
        }
    }
}

fn all_arms() -> Vec<String> {
    super::arms::ARMS
        .iter()
        .map(|a| a.name.to_string())
        .collect()
}
