//! `ganpo demo`: the whole pipeline on the built-in task, no downloads. Task → tokenizer → SFT
//! model (saved as a Hugging Face directory) → on-policy preference pairs (JSONL) → four arms on
//! identical data and seeds → generation-based evaluation at several temperatures → report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};
use serde::Serialize;

use super::arms::{ARMS, ArmBudget, arm_config, train_arm};
use super::evaluate::{TemperatureRow, evaluate_at, prompt_ids, sample};
use super::pairs::{PairConfig, build_pairs, write_jsonl};
use super::sft::{SftConfig, demo_model_config, init_demo_model, train_sft};
use super::task::sample_tasks;
use super::tokenizer::train_tokenizer;
use crate::judge::StructuredTaskJudge;
use crate::model::{Trainability, load_model, save_hf};
use crate::train::metrics::Metrics;
use crate::{Error, Result};

/// Demo settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoConfig {
    /// Where everything is written.
    pub output: PathBuf,
    /// Seeds to repeat the arms over (the SFT model and pairs are shared).
    pub seeds: usize,
    /// Task examples for SFT.
    pub sft_examples: usize,
    /// SFT optimizer steps.
    pub sft_steps: u64,
    /// Prompts turned into preference pairs (80% train, 20% held out).
    pub pair_prompts: usize,
    /// Samples per prompt for pairs.
    pub samples_per_prompt: usize,
    /// Fraction of pairs with swapped labels.
    pub label_noise: f64,
    /// Epochs of preference training per arm.
    pub epochs: usize,
    /// Peak learning rate of every arm.
    pub learning_rate: f64,
    /// Training metrics are logged every this many steps.
    pub logging_steps: u64,
    /// Held-out prompts for generation-based evaluation.
    pub eval_prompts: usize,
    /// Sampling temperatures evaluated (0 = greedy).
    pub temperatures: Vec<f64>,
}

impl DemoConfig {
    /// The default run (about 10 minutes on a 2-core CPU) or the `--quick` one (about 2).
    pub fn new(output: PathBuf, quick: bool, seeds: usize) -> Self {
        if quick {
            DemoConfig {
                output,
                seeds,
                sft_examples: 1500,
                sft_steps: 200,
                pair_prompts: 64,
                samples_per_prompt: 4,
                label_noise: 0.0,
                epochs: 1,
                learning_rate: 3e-4,
                logging_steps: 1,
                eval_prompts: 24,
                temperatures: vec![0.0, 1.5],
            }
        } else {
            DemoConfig {
                output,
                seeds,
                sft_examples: 3000,
                sft_steps: 500,
                pair_prompts: 240,
                samples_per_prompt: 4,
                label_noise: 0.0,
                epochs: 2,
                learning_rate: 3e-4,
                logging_steps: 4,
                eval_prompts: 64,
                temperatures: vec![0.0, 0.7, 1.0, 1.5, 2.0],
            }
        }
    }
}

/// Results of one arm on one seed.
#[derive(Debug, Clone, Serialize)]
pub struct ArmResult {
    /// Arm name.
    pub arm: String,
    /// Seed.
    pub seed: u64,
    /// Rows per temperature.
    pub temperatures: Vec<TemperatureRow>,
    /// Held-out preference metrics.
    pub eval: Metrics,
    /// Training wall-clock seconds.
    pub train_seconds: f64,
    /// Peak resident memory during training (MiB).
    pub peak_rss_mib: Option<f64>,
    /// The arm's `ganpo train` output directory (`metrics.jsonl`, `final/`).
    pub run_dir: PathBuf,
}

/// Everything the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct DemoResults {
    /// The settings.
    pub config: DemoConfig,
    /// SFT losses (first, last).
    pub sft_loss: (f64, f64),
    /// Preference pairs kept / prompts whose samples all tied.
    pub pairs: (usize, usize),
    /// The SFT model's own rows (the baseline).
    pub sft: Vec<TemperatureRow>,
    /// Every arm and seed.
    pub arms: Vec<ArmResult>,
    /// Total wall-clock seconds.
    pub seconds: f64,
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(format!("creating {}", p.display()), e))
}

/// Runs the demo, calling `progress` with a line per stage.
pub fn run_demo(config: &DemoConfig, mut progress: impl FnMut(&str)) -> Result<DemoResults> {
    let started = Instant::now();
    let out = &config.output;
    mkdir(out)?;
    let device = Device::Cpu;
    // 1–2. Task, tokenizer, SFT model from scratch.
    let tasks = sample_tasks(1, config.sft_examples);
    let corpus: Vec<String> = tasks
        .iter()
        .flat_map(|t| [t.prompt.clone(), t.answer.clone()])
        .collect();
    let tok = train_tokenizer(&corpus, 400)?;
    let model = init_demo_model(demo_model_config(tok.vocab_size(), &tok), 3, &device)?;
    progress(&format!(
        "SFT: {} steps on {} task examples",
        config.sft_steps,
        tasks.len()
    ));
    let losses = train_sft(
        &model,
        &tok,
        &tasks,
        SftConfig {
            steps: config.sft_steps,
            batch_size: 16,
            learning_rate: 3e-3,
            seed: 0,
        },
    )?;
    let sft_dir = out.join("sft");
    save_hf(&model, &tok, None, &sft_dir)?;
    let sft_loss = (losses[0], losses[losses.len() - 1]);
    progress(&format!(
        "SFT loss {:.3} → {:.3}; model saved to {}",
        sft_loss.0,
        sft_loss.1,
        sft_dir.display()
    ));
    // 3. On-policy pairs.
    let judge = StructuredTaskJudge;
    let pair_tasks = sample_tasks(2, config.pair_prompts);
    let pc = PairConfig {
        samples: config.samples_per_prompt,
        temperature: 1.0,
        max_new_tokens: 40,
        label_noise: config.label_noise,
        seed: 11,
    };
    let pairs = build_pairs(&model, &tok, &judge, &pair_tasks, pc)?;
    let split = pairs.records.len() * 4 / 5;
    let data_dir = out.join("data");
    mkdir(&data_dir)?;
    let (train_path, eval_path) = (data_dir.join("train.jsonl"), data_dir.join("eval.jsonl"));
    write_jsonl(&pairs.records[..split], &train_path)?;
    write_jsonl(&pairs.records[split..], &eval_path)?;
    progress(&format!(
        "pairs: {} kept ({} train / {} held out), {} prompts skipped (all samples tied)",
        pairs.records.len(),
        split,
        pairs.records.len() - split,
        pairs.ties_skipped
    ));
    if split == 0 || split == pairs.records.len() {
        return Err(Error::Training(
            "too few preference pairs; the SFT model's samples all tied".into(),
        ));
    }
    // SFT baseline rows and responses (the reference for win rates).
    let eval_tasks = sample_tasks(3, config.eval_prompts);
    let reference = load_model(&sft_dir, Trainability::Frozen, DType::F32, &device)?.model;
    let mut sft_rows = Vec::new();
    let mut sft_texts = Vec::new();
    let prompts = prompt_ids(&tok, &eval_tasks)?;
    for &t in &config.temperatures {
        let texts: Vec<String> = sample(&reference, &tok, &prompts, t, 1000)?
            .into_iter()
            .map(|g| g.text)
            .collect();
        let (row, _) = evaluate_at(
            &reference,
            &reference,
            &tok,
            &judge,
            &eval_tasks,
            t,
            1000,
            &texts,
        )?;
        sft_rows.push(row);
        sft_texts.push(texts);
    }
    // 4–5. Arms.
    let mut arms = Vec::new();
    for seed in 0..config.seeds as u64 {
        for arm in &ARMS {
            let arm_dir = out
                .join("arms")
                .join(format!("{}-seed{seed}", arm.name.replace('+', "_")));
            mkdir(&arm_dir)?;
            let budget = ArmBudget {
                epochs: config.epochs,
                batch_size: 8,
                learning_rate: config.learning_rate,
                seed,
                logging_steps: config.logging_steps,
            };
            let text = arm_config(
                arm,
                &sft_dir,
                &train_path,
                &eval_path,
                &arm_dir.join("run"),
                &budget,
            );
            progress(&format!("training {} (seed {seed})", arm.name));
            let run = train_arm(&text, &arm_dir.join("config.toml"))?;
            let policy = load_model(
                &arm_dir.join("run").join("final"),
                Trainability::Frozen,
                DType::F32,
                &device,
            )?
            .model;
            let mut rows = Vec::new();
            for (i, &t) in config.temperatures.iter().enumerate() {
                rows.push(
                    evaluate_at(
                        &policy,
                        &reference,
                        &tok,
                        &judge,
                        &eval_tasks,
                        t,
                        1000,
                        &sft_texts[i],
                    )?
                    .0,
                );
            }
            arms.push(ArmResult {
                arm: arm.name.to_string(),
                seed,
                temperatures: rows,
                eval: run.eval,
                train_seconds: run.seconds,
                peak_rss_mib: run.peak_rss_mib,
                run_dir: arm_dir.join("run"),
            });
        }
    }
    Ok(DemoResults {
        config: config.clone(),
        sft_loss,
        pairs: (pairs.records.len(), pairs.ties_skipped),
        sft: sft_rows,
        arms,
        seconds: started.elapsed().as_secs_f64(),
    })
}
