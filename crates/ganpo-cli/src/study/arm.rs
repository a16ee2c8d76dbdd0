//! One arm of one seed: trained (or resumed from its newest checkpoint) through the ordinary
//! `ganpo train` path, evaluated at every temperature, then marked done (`done.json`) and
//! cleaned up (checkpoints deleted; the final model too unless `--keep-models`). A rerun finds
//! `done.json` and only reloads the saved samples.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use candle_core::{DType, Device};
use ganpo::model::{CausalLm, Trainability, load_model};
use ganpo::tokenize::Tokenizer;
use ganpo::{Error, Result};

use super::config::{StudyArm, StudyConfig};
use super::evaluate::{TemperatureSamples, evaluate_all, temperature_file};
use super::run::ArmDone;
use super::store::{load_json, save_json};
use super::train::{
    ArmPaths, ArmTraining, TrainOutcome, arm_config, remove_checkpoints, train_run,
};

/// What every arm shares.
pub struct ArmContext<'a> {
    /// The settings.
    pub config: &'a StudyConfig,
    /// The reference (KL and NLL).
    pub reference: &'a CausalLm,
    /// Its tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// Held-out prompt ids.
    pub eval_ids: &'a [Vec<u32>],
    /// Training pairs.
    pub train_file: &'a Path,
    /// Validation pairs.
    pub validation_file: &'a Path,
    /// Raised by Ctrl-C.
    pub stop: &'a Arc<AtomicBool>,
}

/// The directory of `arm`'s seed `seed` under the study's output directory.
pub fn arm_dir(output: &Path, arm: &str, seed: u64) -> PathBuf {
    output
        .join("arms")
        .join(arm.replace('+', "_"))
        .join(format!("seed{seed}"))
}

/// Trains and evaluates `arm` with `seed` unless done; returns its record and its samples at
/// every temperature.
pub fn run_arm(
    ctx: &ArmContext,
    arm: &StudyArm,
    seed: u64,
    log: &mut impl FnMut(&str),
) -> Result<(ArmDone, Vec<TemperatureSamples>)> {
    let config = ctx.config;
    let dir = arm_dir(&config.output, &arm.name, seed);
    let run_dir = dir.join("run");
    let done_path = dir.join("done.json");
    let evals = dir.join("eval");
    let done = match load_json::<ArmDone>(&done_path)? {
        Some(d) => {
            log(&format!("{} seed {seed}: cached", arm.name));
            d
        }
        None => {
            let paths = ArmPaths {
                train: ctx.train_file.to_path_buf(),
                validation: ctx.validation_file.to_path_buf(),
                run_dir: run_dir.clone(),
            };
            let training = match load_json::<ArmTraining>(&dir.join("train.json"))? {
                Some(t) if run_dir.join("final").is_dir() => t,
                _ => {
                    let text = arm_config(arm, config, &paths, seed);
                    let label = format!("{} seed {seed}", arm.name);
                    // Seconds trained by earlier, interrupted invocations.
                    let partial = dir.join("train_partial.json");
                    let before = load_json::<f64>(&partial)?.unwrap_or(0.0);
                    let mut t = match train_run(
                        &text,
                        &dir.join("config.toml"),
                        &label,
                        ctx.stop.clone(),
                    )? {
                        TrainOutcome::Finished(_, t) => t,
                        TrainOutcome::Interrupted { seconds } => {
                            save_json(&partial, &(before + seconds))?;
                            return Err(Error::Training(format!(
                                "interrupted while training {label}; a checkpoint was written, rerun the same command to resume"
                            )));
                        }
                    };
                    t.seconds += before;
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
                ctx.reference,
                ctx.tokenizer,
                ctx.eval_ids,
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
                std::fs::remove_dir_all(&final_dir)
                    .map_err(|e| Error::io(format!("removing {}", final_dir.display()), e))?;
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
    Ok((done, per_t))
}
