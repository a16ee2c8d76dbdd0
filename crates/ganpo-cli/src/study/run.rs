//! The whole study, phase by phase, each cached on disk and skipped when a rerun finds it done:
//! prompts → pairs → the reference's evaluation → for each seed and arm, training (checkpointed,
//! resumed) and evaluation at every temperature → summaries, verdicts, figures, report.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device};
use ganpo::model::{CausalLm, Trainability, load_model};
use ganpo::tokenize::Tokenizer;
use ganpo::{Error, Result};
use serde::{Deserialize, Serialize};

use super::arm::{ArmContext, arm_dir, run_arm};
use super::config::StudyConfig;
use super::corpus::Prompt;
use super::evaluate::evaluate_all;
use super::pairs::{PairStats, build_pairs};
use super::progress::Bar;
use super::prompting::split_prompts;
use super::sampling::Sampling;
use super::store::{check_settings, load_json, save_json, save_jsonl};
use super::train::ArmTraining;
use super::verdicts::SampleTable;

/// The script that fetches the model, named when it is missing.
pub const MODEL_SCRIPT: &str = "scripts/fetch-smollm2.sh";

/// What the pairs phase produced (`pairs/summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairsPhase {
    /// Training split.
    pub train: PairStats,
    /// Validation split.
    pub validation: PairStats,
    /// Prompts skipped for having more than `max_prompt_tokens` tokens.
    pub long_prompts: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// One finished arm of one seed (`arms/NAME/seedS/done.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArmDone {
    /// Arm name.
    pub arm: String,
    /// Seed.
    pub seed: u64,
    /// Training.
    pub training: ArmTraining,
    /// Evaluation seconds (all temperatures).
    pub eval_seconds: f64,
}

/// Everything the study measured, for the report.
#[derive(Debug, Clone)]
pub struct StudyData {
    /// The settings.
    pub config: StudyConfig,
    /// The pairs phase.
    pub pairs: PairsPhase,
    /// Held-out prompts, in the order of every sample list.
    pub eval_prompts: Vec<Prompt>,
    /// `samples[model][seed][temperature]`.
    pub samples: SampleTable,
    /// The reference's evaluation seconds (all temperatures).
    pub reference_eval_seconds: f64,
    /// Finished arms.
    pub arms: Vec<ArmDone>,
    /// Each arm's (first seed's) metrics log, for the training curves.
    pub metrics_logs: Vec<(String, PathBuf)>,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

pub(super) fn interrupted(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::SeqCst) {
        return Err(Error::Training(
            "interrupted; rerun the same command to resume (finished phases are kept)".into(),
        ));
    }
    Ok(())
}

/// Loads the reference.
fn load_reference(config: &StudyConfig) -> Result<(CausalLm, Tokenizer)> {
    let loaded = load_model(
        &config.model,
        Trainability::Frozen,
        DType::F32,
        &Device::Cpu,
    )?;
    Ok((loaded.model, loaded.tokenizer))
}

/// Runs (or resumes) the study; `log` gets a line per phase.
/// With `pairs_only` it stops after the pairs (to compare prompt formats cheaply).
pub fn run_study(
    config: &StudyConfig,
    pairs_only: bool,
    stop: Arc<AtomicBool>,
    mut log: impl FnMut(&str),
) -> Result<StudyData> {
    let started = Instant::now();
    let out = &config.output;
    // Both inputs are checked before anything is written.
    if !config.model.exists() {
        return Err(Error::Config(format!(
            "--model {} does not exist; fetch SmolLM2-135M-Instruct with `{MODEL_SCRIPT}`, which prints the .gguf path",
            config.model.display()
        )));
    }
    super::corpus::corpus_files(&config.corpus)?;
    std::fs::create_dir_all(out)
        .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    check_settings(out, config)?;
    let (reference, tokenizer) = load_reference(config)?;
    let (splits, long_prompts) = split_prompts(config, &tokenizer)?;
    let [(train_p, train_ids), (val_p, val_ids), (eval_p, eval_ids)] =
        <[_; 3]>::try_from(splits).map_err(|_| Error::Config("three splits expected".into()))?;
    save_json(
        &out.join("prompts.json"),
        &[
            ("train", &train_p),
            ("validation", &val_p),
            ("held_out", &eval_p),
        ],
    )?;
    // Pairs.
    let pairs_dir = out.join("pairs");
    let (train_file, val_file) = (
        pairs_dir.join("train.jsonl"),
        pairs_dir.join("validation.jsonl"),
    );
    let pairs = match load_json::<PairsPhase>(&pairs_dir.join("summary.json"))? {
        Some(p) => {
            log(&format!(
                "pairs: cached in {} ({} train, {} validation)",
                pairs_dir.display(),
                p.train.pairs,
                p.validation.pairs
            ));
            p
        }
        None => {
            let t0 = Instant::now();
            let k = config.samples_per_prompt;
            let sampling = |seed| Sampling {
                temperature: 1.0,
                max_new_tokens: config.pair_max_new_tokens,
                seed,
                batch: config.batch_size,
            };
            let mut bar = Bar::new("pairs (train)", (train_ids.len() * k) as u64, "samples");
            let (train, train_stats) = build_pairs(
                &reference,
                &tokenizer,
                config.prompt_format,
                &train_p,
                &train_ids,
                k,
                config.min_gap,
                sampling(config.data_seed),
                &mut bar,
            )?;
            bar.finish();
            interrupted(&stop)?;
            let mut bar = Bar::new("pairs (validation)", (val_ids.len() * k) as u64, "samples");
            let (val, val_stats) = build_pairs(
                &reference,
                &tokenizer,
                config.prompt_format,
                &val_p,
                &val_ids,
                k,
                config.min_gap,
                sampling(config.data_seed + 1),
                &mut bar,
            )?;
            bar.finish();
            if train.is_empty() || val.is_empty() {
                return Err(Error::Training(format!(
                    "too few pairs ({} train, {} validation): the reference's samples rarely differ by --min-gap {} in VADER compound; lower it or sample more per prompt",
                    train.len(),
                    val.len(),
                    config.min_gap
                )));
            }
            std::fs::create_dir_all(&pairs_dir)
                .map_err(|e| Error::io(format!("creating {}", pairs_dir.display()), e))?;
            save_jsonl(&train_file, &train)?;
            save_jsonl(&val_file, &val)?;
            let p = PairsPhase {
                train: train_stats,
                validation: val_stats,
                long_prompts,
                seconds: t0.elapsed().as_secs_f64(),
            };
            save_json(&pairs_dir.join("summary.json"), &p)?;
            log(&format!(
                "pairs: {} train, {} validation in {:.0} s",
                p.train.pairs, p.validation.pairs, p.seconds
            ));
            p
        }
    };
    let mut samples = SampleTable::new();
    let mut data = StudyData {
        config: config.clone(),
        pairs,
        eval_prompts: eval_p,
        samples: SampleTable::new(),
        reference_eval_seconds: 0.0,
        arms: Vec::new(),
        metrics_logs: Vec::new(),
        seconds: 0.0,
    };
    if pairs_only {
        data.seconds = started.elapsed().as_secs_f64();
        return Ok(data);
    }
    interrupted(&stop)?;
    // The reference.
    let t0 = Instant::now();
    let ref_samples = evaluate_all(
        config,
        "reference",
        None,
        &reference,
        &tokenizer,
        &eval_ids,
        &out.join("eval").join("reference"),
    )?;
    let reference_eval_seconds: f64 = ref_samples.iter().map(|s| s.seconds).sum();
    log(&format!(
        "reference evaluated ({:.0} s now)",
        t0.elapsed().as_secs_f64()
    ));
    samples.insert("reference".into(), vec![ref_samples]);
    // Arms.
    let ctx = ArmContext {
        config,
        reference: &reference,
        tokenizer: &tokenizer,
        eval_ids: &eval_ids,
        train_file: &train_file,
        validation_file: &val_file,
        stop: &stop,
    };
    let mut arms = Vec::new();
    let mut metrics_logs = Vec::new();
    for seed in 0..config.seeds as u64 {
        for arm in config.arms() {
            interrupted(&stop)?;
            let (done, per_t) = run_arm(&ctx, &arm, seed, &mut log)?;
            if seed == 0 {
                metrics_logs.push((
                    arm.name.clone(),
                    arm_dir(out, &arm.name, seed).join("run/metrics.jsonl"),
                ));
            }
            samples.entry(arm.name.clone()).or_default().push(per_t);
            arms.push(done);
        }
    }
    data.samples = samples;
    data.reference_eval_seconds = reference_eval_seconds;
    data.arms = arms;
    data.metrics_logs = metrics_logs;
    data.seconds = started.elapsed().as_secs_f64();
    Ok(data)
}
