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
    /// Peak learning rate of every arm.
    pub learning_rate: f64,
    /// DPO's β (SimPO keeps its own β = 2, γ/β = 0.5).
    pub dpo_beta: f64,
    /// Training metrics are logged every this many steps.
    pub logging_steps: u64,
    /// Held-out prompts for generation-based evaluation, per temperature.
    pub eval_prompts: usize,
    /// Sampling temperatures evaluated (0 = greedy).
    pub temperatures: Vec<f64>,
}

impl DemoConfig {
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
                learning_rate: 3e-5,
                dpo_beta: 0.1,
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
                learning_rate: 3e-5,
                dpo_beta: 0.1,
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
