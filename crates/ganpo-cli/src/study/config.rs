//! The study's settings — the default (full) run and `--quick` — and its arms: DPO at several β,
//! DPO + GANPO at the same β (λ = 1) and at one more λ, SimPO and SimPO + GANPO.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a corpus prefix is shown to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormat {
    /// The prefix as plain text; the model continues it (the DPO paper's IMDb setting).
    Plain,
    /// A user message asking the assistant to continue the prefix, in the model's chat template.
    Chat,
}

/// The instruction of [`PromptFormat::Chat`] (the prefix follows it).
pub const CHAT_INSTRUCTION: &str = "Continue this text:";

/// One preference-optimization arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyArm {
    /// Unique name, also its directory (`dpo-b0.1`, `dpo+ganpo-b0.1-l1`).
    pub name: String,
    /// `sigmoid` (DPO) or `simpo`.
    pub loss: String,
    /// The loss's β.
    pub beta: f64,
    /// GANPO's λ (`None`: GANPO off).
    pub lambda: Option<f64>,
}

impl StudyArm {
    fn new(loss: &str, beta: f64, lambda: Option<f64>) -> Self {
        let base = if loss == "sigmoid" { "dpo" } else { "simpo" };
        let name = match lambda {
            None => format!("{base}-b{beta}"),
            Some(l) => format!("{base}+ganpo-b{beta}-l{l}"),
        };
        StudyArm {
            name,
            loss: loss.to_string(),
            beta,
            lambda,
        }
    }

    /// The base loss's name for reports: `dpo` or `simpo`.
    pub fn family(&self) -> &'static str {
        if self.loss == "sigmoid" {
            "dpo"
        } else {
            "simpo"
        }
    }

    /// The arm without GANPO that this one is compared against (itself when GANPO is off).
    pub fn base_name(&self) -> String {
        StudyArm::new(&self.loss, self.beta, None).name
    }
}

/// Everything that sizes and seeds a study. Every value is saved with the results, and cached
/// phases are reused only under the same values of the settings they depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    /// Where everything is written.
    pub output: PathBuf,
    /// The reference model (GGUF file or Hugging Face directory).
    pub model: PathBuf,
    /// The Brown corpus directory.
    pub corpus: PathBuf,
    /// How prompts are shown to the model.
    pub prompt_format: PromptFormat,
    /// Prompts sampled for training pairs.
    pub train_prompts: usize,
    /// Prompts sampled for the validation pairs (`eval_*` metrics of training).
    pub validation_prompts: usize,
    /// Held-out prompts of the generation-based evaluation.
    pub eval_prompts: usize,
    /// Prompts longer than this many tokens are skipped (counted).
    pub max_prompt_tokens: usize,
    /// Reference samples per prompt (K); the best and the worst make a pair.
    pub samples_per_prompt: usize,
    /// Most new tokens per pair sample.
    pub pair_max_new_tokens: usize,
    /// Smallest VADER-compound gap between chosen and rejected.
    pub min_gap: f64,
    /// Evaluation temperatures.
    pub temperatures: Vec<f64>,
    /// Most new tokens per evaluation sample.
    pub eval_max_new_tokens: usize,
    /// Rows per generation / scoring batch.
    pub batch_size: usize,
    /// DPO's β grid (the DPO and DPO + GANPO λ = 1 arms).
    pub betas: Vec<f64>,
    /// The additional λ of one DPO + GANPO arm (at the middle β).
    pub extra_lambda: f64,
    /// SimPO's β (γ/β = 0.5).
    pub simpo_beta: f64,
    /// Epochs over the training pairs.
    pub epochs: usize,
    /// Pairs per optimizer step.
    pub train_batch_size: usize,
    /// Peak learning rate of every arm.
    pub learning_rate: f64,
    /// Checkpoint every this many steps (an interrupted arm resumes from its latest).
    pub save_steps: u64,
    /// Training seeds; every arm is trained once per seed.
    pub seeds: usize,
    /// Seed of the corpus split's prompt draw and of the pair samples.
    pub data_seed: u64,
    /// Seed of every evaluation sample (shared by all models, so comparisons are paired).
    pub eval_seed: u64,
    /// Keep each arm's final model after its evaluation (off: deleted, they are 0.5 GB each).
    pub keep_models: bool,
}

impl StudyConfig {
    /// The full study (2 h 15 min on a partly busy 2-core CPU, see docs/study.md) or
    /// `--quick` (about 10 minutes).
    pub fn new(
        output: PathBuf,
        model: PathBuf,
        corpus: PathBuf,
        quick: bool,
        seeds: usize,
    ) -> Self {
        let full = StudyConfig {
            output,
            model,
            corpus,
            prompt_format: PromptFormat::Plain,
            train_prompts: 384,
            validation_prompts: 48,
            eval_prompts: 200,
            max_prompt_tokens: 32,
            samples_per_prompt: 4,
            pair_max_new_tokens: 24,
            min_gap: 0.4,
            temperatures: vec![0.7, 1.0, 1.5, 2.0],
            eval_max_new_tokens: 24,
            batch_size: 64,
            betas: vec![0.03, 0.1, 0.3],
            extra_lambda: 0.3,
            simpo_beta: 2.0,
            epochs: 1,
            train_batch_size: 8,
            learning_rate: 2e-4,
            save_steps: 10,
            seeds,
            data_seed: 7,
            eval_seed: 1000,
            keep_models: false,
        };
        if !quick {
            return full;
        }
        StudyConfig {
            train_prompts: 32,
            validation_prompts: 8,
            eval_prompts: 16,
            temperatures: vec![1.0, 2.0],
            betas: vec![0.1],
            epochs: 1,
            train_batch_size: 4,
            save_steps: 2,
            ..full
        }
    }

    /// The arms, in training order: DPO at each β, DPO + GANPO (λ = 1) at each β, DPO + GANPO at
    /// the extra λ and the middle β, SimPO, SimPO + GANPO (λ = 1).
    pub fn arms(&self) -> Vec<StudyArm> {
        let mut arms: Vec<StudyArm> = self
            .betas
            .iter()
            .map(|&b| StudyArm::new("sigmoid", b, None))
            .collect();
        arms.extend(
            self.betas
                .iter()
                .map(|&b| StudyArm::new("sigmoid", b, Some(1.0))),
        );
        if let Some(&mid) = self.betas.get(self.betas.len() / 2) {
            arms.push(StudyArm::new("sigmoid", mid, Some(self.extra_lambda)));
        }
        arms.push(StudyArm::new("simpo", self.simpo_beta, None));
        arms.push(StudyArm::new("simpo", self.simpo_beta, Some(1.0)));
        arms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_cover_the_grid_and_pair_with_their_base() {
        let c = StudyConfig::new("o".into(), "m".into(), "c".into(), false, 1);
        let arms = c.arms();
        assert_eq!(arms.len(), 9);
        let names: Vec<&str> = arms.iter().map(|a| a.name.as_str()).collect();
        assert!(names.contains(&"dpo+ganpo-b0.1-l0.3"), "{names:?}");
        for a in &arms {
            assert!(names.contains(&a.base_name().as_str()), "{}", a.name);
        }
    }
}
