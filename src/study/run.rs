//! The whole study, phase by phase, each cached on disk and skipped when a rerun finds it done:
//! prompts → pairs → the reference's evaluation → for each seed and arm, training (checkpointed,
//! resumed) and evaluation at every temperature → summaries, verdicts, figures, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use super::config::StudyConfig;
use super::corpus::{Prompt, Split, prompts, read_corpus};
use super::evaluate::{TemperatureSamples, evaluate_at};
use super::pairs::{PairStats, build_pairs};
use super::progress::Bar;
use super::prompting::prompt_ids;
use super::sampling::Sampling;
use super::store::{check_settings, load_json, save_json, save_jsonl};
use super::train::{ArmPaths, ArmTraining, arm_config, remove_checkpoints, train_run};
use super::verdicts::SampleTable;
use crate::model::{CausalLm, Trainability, load_model};
use crate::tokenize::Tokenizer;
use crate::{Error, Result};

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

fn interrupted(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::SeqCst) {
        return Err(Error::Training(
            "interrupted; rerun the same command to resume (finished phases are kept)".into(),
        ));
    }
    Ok(())
}

fn temperature_file(dir: &Path, t: f64) -> PathBuf {
    dir.join(format!("T{t}.json"))
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

/// One split's prompts and their token ids.
type SplitPrompts = (Vec<Prompt>, Vec<Vec<u32>>);

/// Every split's prompts with their ids, dropping those over `max_prompt_tokens`.
fn split_prompts(
    config: &StudyConfig,
    tokenizer: &Tokenizer,
) -> Result<(Vec<SplitPrompts>, usize)> {
    let sentences = read_corpus(&config.corpus)?;
    let want = |s: Split| match s {
        Split::Train => config.train_prompts,
        Split::Validation => config.validation_prompts,
        Split::HeldOut => config.eval_prompts,
    };
    // Draw twice as many as needed, so that dropping long prompts still leaves enough.
    let drawn = prompts(&sentences, config.data_seed, |s| 2 * want(s));
    let mut long = 0;
    let mut out = Vec::new();
    for (split, candidates) in drawn {
        let (mut kept, mut ids) = (Vec::new(), Vec::new());
        for p in candidates {
            if kept.len() == want(split) {
                break;
            }
            let encoded = prompt_ids(tokenizer, config.prompt_format, &p.text)?;
            if encoded.len() > config.max_prompt_tokens || encoded.is_empty() {
                long += 1;
                continue;
            }
            kept.push(p);
            ids.push(encoded);
        }
        if kept.len() < want(split) {
            return Err(Error::Config(format!(
                "the corpus in {} gave only {} {split:?} prompts of ≤ {} tokens, {} wanted; lower the prompt count or raise --max-prompt-tokens",
                config.corpus.display(),
                kept.len(),
                config.max_prompt_tokens,
                want(split)
            )));
        }
        out.push((kept, ids));
    }
    Ok((out, long))
}

/// Evaluates `policy` at every temperature not yet saved under `dir`; returns all temperatures'
/// samples and the seconds spent now.
fn evaluate_all(
    config: &StudyConfig,
    label: &str,
    policy: Option<&CausalLm>,
    reference: &CausalLm,
    tokenizer: &Tokenizer,
    ids: &[Vec<u32>],
    dir: &Path,
) -> Result<Vec<TemperatureSamples>> {
    let cached: Option<Vec<TemperatureSamples>> = config
        .temperatures
        .iter()
        .map(|&t| load_json(&temperature_file(dir, t)))
        .collect::<Result<_>>()?;
    if let Some(all) = cached {
        return Ok(all);
    }
    let total = (ids.len() * config.temperatures.len()) as u64;
    let mut bar = Bar::new(format!("evaluating {label}"), total, "samples");
    let mut out = Vec::new();
    for (i, &t) in config.temperatures.iter().enumerate() {
        let path = temperature_file(dir, t);
        let done = (i * ids.len()) as u64;
        let samples = match load_json::<TemperatureSamples>(&path)? {
            Some(s) => s,
            None => {
                let sampling = Sampling {
                    temperature: t,
                    max_new_tokens: config.eval_max_new_tokens,
                    seed: config.eval_seed,
                    batch: config.batch_size,
                };
                let s = match policy {
                    Some(p) => {
                        evaluate_at(p, Some(reference), tokenizer, ids, sampling, &mut bar, done)?
                    }
                    None => evaluate_at(reference, None, tokenizer, ids, sampling, &mut bar, done)?,
                };
                save_json(&path, &s)?;
                s
            }
        };
        bar.set(done + ids.len() as u64, done);
        out.push(samples);
    }
    bar.finish();
    Ok(out)
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
    let mut arms = Vec::new();
    let mut metrics_logs = Vec::new();
    for seed in 0..config.seeds as u64 {
        for arm in config.arms() {
            interrupted(&stop)?;
            let dir = out
                .join("arms")
                .join(arm.name.replace('+', "_"))
                .join(format!("seed{seed}"));
            let run_dir = dir.join("run");
            if seed == 0 {
                metrics_logs.push((arm.name.clone(), run_dir.join("metrics.jsonl")));
            }
            let done_path = dir.join("done.json");
            let evals = dir.join("eval");
            let done = match load_json::<ArmDone>(&done_path)? {
                Some(d) => {
                    log(&format!("{} seed {seed}: cached", arm.name));
                    d
                }
                None => {
                    let paths = ArmPaths {
                        train: train_file.clone(),
                        validation: val_file.clone(),
                        run_dir: run_dir.clone(),
                    };
                    let training = match load_json::<ArmTraining>(&dir.join("train.json"))? {
                        Some(t) if run_dir.join("final").is_dir() => t,
                        _ => {
                            let text = arm_config(&arm, config, &paths, seed);
                            let label = format!("{} seed {seed}", arm.name);
                            let Some((_, t)) =
                                train_run(&text, &dir.join("config.toml"), &label, stop.clone())?
                            else {
                                return Err(Error::Training(format!(
                                    "interrupted while training {label}; a checkpoint was written, rerun the same command to resume"
                                )));
                            };
                            save_json(&dir.join("train.json"), &t)?;
                            log(&format!(
                                "{label}: trained {} steps in {:.0} s",
                                t.steps, t.seconds
                            ));
                            t
                        }
                    };
                    let policy = load_model(
                        &run_dir.join("final"),
                        Trainability::Frozen,
                        DType::F32,
                        &Device::Cpu,
                    )?
                    .model;
                    let t0 = Instant::now();
                    let evaluated = evaluate_all(
                        config,
                        &arm.name,
                        Some(&policy),
                        &reference,
                        &tokenizer,
                        &eval_ids,
                        &evals,
                    )?;
                    let d = ArmDone {
                        arm: arm.name.clone(),
                        seed,
                        training,
                        eval_seconds: evaluated.iter().map(|s| s.seconds).sum(),
                    };
                    log(&format!(
                        "{} seed {seed}: evaluated in {:.0} s",
                        arm.name,
                        t0.elapsed().as_secs_f64()
                    ));
                    save_json(&done_path, &d)?;
                    remove_checkpoints(&run_dir)?;
                    if !config.keep_models {
                        let final_dir = run_dir.join("final");
                        std::fs::remove_dir_all(&final_dir).map_err(|e| {
                            Error::io(format!("removing {}", final_dir.display()), e)
                        })?;
                    }
                    d
                }
            };
            let mut per_t = Vec::new();
            for &t in &config.temperatures {
                let path = temperature_file(&evals, t);
                per_t.push(load_json::<TemperatureSamples>(&path)?.ok_or_else(|| {
                    Error::Config(format!(
                        "{} is missing; delete {} to evaluate that arm again",
                        path.display(),
                        done_path.display()
                    ))
                })?);
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
