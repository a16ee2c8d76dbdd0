//! `ganpo demo --tune`: chooses every arm's knobs on validation prompts (a draw of their own from
//! the task generator), with the same budget for GANPO's own knobs as for
//! the base losses' (the same number of trained and evaluated settings).
//!
//! Stage 1 tries each base loss (DPO, SimPO) on a grid of β × learning rate. Stage 2 keeps the
//! base loss's chosen (β, lr) and tries GANPO on a grid of λ × discriminator (width, depth,
//! learning rate). A setting's criterion is its validation win rate against the SFT model (the
//! judge compares each answer with the SFT model's answer to the same prompt at the same
//! temperature and seed; ties count ½) at the worse of T = 0 and T = 0.7 — the benchmark's primary
//! metric, the one its verdicts are about, and its bar holds at each temperature, so a setting
//! must win at both; the highest wins, the first of equals on a tie. Each setting's mean win rate
//! over the two temperatures minus the chosen one's carries a 95% paired bootstrap interval over
//! prompts, so the table says which choices the validation split can tell apart. Seed 0, the demo's default budget. Finished trials are kept in
//! `tune/<arm>-<n>/trial.json` and skipped on a rerun with the same settings.

use std::fmt::Write as _;
use std::path::Path;

use ganpo::train::checkpoint_dir::write_file_atomically;
use ganpo::{Error, Result};
use serde::{Deserialize, Serialize};

use super::arms::{ARMS, Arm, ArmBudget, arm_config, train_arm};
use super::config::{ArmKnobs, DemoConfig};
use super::evaluate::EvalContext;
use super::prepare::{mkdir, prepare, task_seeds};
use super::run::BATCH;
use super::stats::{Interval, RESAMPLES, paired_bootstrap};
use super::task::sample_tasks;
use super::tune_grid::{TuneGrid, describe, settings};
use crate::judge::{StructuredTaskJudge, head_to_head};

/// A finished trial's record in its directory (written last: its presence means finished).
const TRIAL_FILE: &str = "trial.json";

/// The temperatures a setting is scored at.
pub const TUNE_TEMPERATURES: [f64; 2] = [0.0, 0.7];

/// One trained and scored setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Arm name.
    pub arm: String,
    /// The knobs, in words (also the cache key).
    pub setting: String,
    /// Validation judge score at each of [`TUNE_TEMPERATURES`].
    pub scores: Vec<f64>,
    /// Their mean.
    pub score: f64,
    /// Validation win rate against the SFT model at each of [`TUNE_TEMPERATURES`].
    pub win_rates: Vec<f64>,
    /// Their mean.
    pub win_rate: f64,
    /// Per prompt, the win outcome (1, ½, 0) averaged over the temperatures (what the intervals
    /// are computed from).
    pub per_prompt: Vec<f64>,
    /// Held-out pair reward accuracy at the end of training.
    pub reward_accuracy: f64,
    /// Training seconds.
    pub seconds: f64,
}

/// One arm's search: its trials and the index of the chosen one.
#[derive(Debug, Clone, Serialize)]
pub struct ArmSearch {
    /// Arm name.
    pub arm: String,
    /// Every setting tried, in order.
    pub trials: Vec<Trial>,
    /// The knobs of each trial.
    #[serde(skip)]
    pub knobs: Vec<ArmKnobs>,
    /// Index of the chosen trial.
    pub chosen: usize,
    /// Each trial's mean win rate minus the chosen one's, 95% paired bootstrap over prompts.
    pub versus_chosen: Vec<Interval>,
}

/// Runs the search for every arm of `config.arms` (a GANPO arm needs its base arm).
pub fn tune(
    config: &DemoConfig,
    grid: &TuneGrid,
    mut progress: impl FnMut(&str),
) -> Result<Vec<ArmSearch>> {
    let prep = prepare(config, &mut progress)?;
    let tasks = sample_tasks(task_seeds::VALIDATION, config.validation_prompts);
    let baseline = prep.baseline(&tasks, &TUNE_TEMPERATURES)?;
    let judge = StructuredTaskJudge;
    let ctx = EvalContext {
        reference: &prep.reference,
        tokenizer: &prep.tokenizer,
        judge: &judge,
        tasks: &tasks,
        temperatures: &TUNE_TEMPERATURES,
        sft_texts: &baseline.texts,
    };
    let budget = ArmBudget {
        epochs: config.epochs,
        batch_size: BATCH,
        seed: 0,
        logging_steps: config.logging_steps,
        save_steps: 0,
    };
    let sft_scores: Vec<Vec<f64>> = baseline
        .per_prompt
        .iter()
        .map(|p| p.scores.clone())
        .collect();
    let mut searches: Vec<ArmSearch> = Vec::new();
    // Base arms first: the GANPO arms build on their choice.
    let order = ARMS
        .iter()
        .filter(|a| !a.ganpo)
        .chain(ARMS.iter().filter(|a| a.ganpo));
    for arm in order.filter(|a| config.arms.iter().any(|n| n == a.name)) {
        let base = ARMS.iter().find(|b| b.loss == arm.loss && !b.ganpo);
        let chosen = match (arm.ganpo, base) {
            (true, Some(b)) => Some(
                searches
                    .iter()
                    .find(|s| s.arm == b.name)
                    .map(|s| s.knobs[s.chosen].loss)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "tuning {} needs its base arm {} in --arms",
                            arm.name, b.name
                        ))
                    })?,
            ),
            _ => None,
        };
        let knobs = settings(arm, grid, chosen);
        let mut trials = Vec::new();
        for (i, k) in knobs.iter().enumerate() {
            let dir = config
                .output
                .join("tune")
                .join(format!("{}-{i}", arm.name.replace('+', "_")));
            let head = format!(
                "tuning {} {}/{}: {}",
                arm.name,
                i + 1,
                knobs.len(),
                describe(k)
            );
            let t = match finished_trial(&dir, k) {
                Some(t) => {
                    progress(&format!("{head} (finished earlier, read back)"));
                    t
                }
                None => {
                    progress(&head);
                    trial(arm, k, &dir, &prep, &ctx, &sft_scores, &budget)?
                }
            };
            trials.push(t);
        }
        searches.push(choose(arm.name, trials, knobs)?);
    }
    Ok(searches)
}

/// The trial `dir` holds, when it is a finished one of these `knobs`.
fn finished_trial(dir: &Path, knobs: &ArmKnobs) -> Option<Trial> {
    let text = std::fs::read_to_string(dir.join(TRIAL_FILE)).ok()?;
    serde_json::from_str::<Trial>(&text)
        .ok()
        .filter(|t| t.setting == describe(knobs))
}

/// Trains and scores one setting.
fn trial(
    arm: &Arm,
    knobs: &ArmKnobs,
    dir: &Path,
    prep: &super::prepare::Prepared,
    ctx: &EvalContext<'_>,
    sft_scores: &[Vec<f64>],
    budget: &ArmBudget,
) -> Result<Trial> {
    let setting = describe(knobs);
    let saved = dir.join(TRIAL_FILE);
    mkdir(dir)?;
    let text = arm_config(
        arm,
        knobs,
        &prep.sft_dir,
        &prep.train_path,
        &prep.eval_path,
        &dir.join("run"),
        budget,
    );
    let run = train_arm(&text, &dir.join("config.toml"))?;
    let (rows, per_prompt) = ctx.evaluate_dir(&dir.join("run").join("final"), &[])?;
    let temps = per_prompt.len().max(1) as f64;
    let n = per_prompt.first().map_or(0, |p| p.scores.len());
    let per_prompt: Vec<f64> = (0..n)
        .map(|p| {
            per_prompt
                .iter()
                .zip(sft_scores)
                .map(|(t, sft)| head_to_head(t.scores[p], sft[p]))
                .sum::<f64>()
                / temps
        })
        .collect();
    let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
    let win_rates: Vec<f64> = rows.iter().map(|r| r.win_rate_vs_sft).collect();
    let t = Trial {
        arm: arm.name.to_string(),
        setting,
        score: scores.iter().sum::<f64>() / scores.len().max(1) as f64,
        scores,
        win_rate: win_rates.iter().sum::<f64>() / win_rates.len().max(1) as f64,
        win_rates,
        per_prompt,
        reward_accuracy: run
            .eval
            .get("eval_rewards/accuracies")
            .copied()
            .unwrap_or(f64::NAN),
        seconds: run.seconds,
    };
    let json = serde_json::to_string_pretty(&t).map_err(|e| Error::Config(e.to_string()))?;
    write_file_atomically(&saved, json.as_bytes())?;
    let _ = std::fs::remove_dir_all(dir.join("run").join("final"));
    Ok(t)
}

impl Trial {
    /// The selection criterion: the win rate at the worse of the temperatures.
    pub fn criterion(&self) -> f64 {
        self.win_rates.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// Picks the best trial (the first of equals) and brackets every other against it.
fn choose(arm: &str, trials: Vec<Trial>, knobs: Vec<ArmKnobs>) -> Result<ArmSearch> {
    let chosen = (0..trials.len())
        .min_by(|&a, &b| trials[b].criterion().total_cmp(&trials[a].criterion()))
        .ok_or_else(|| Error::Config(format!("no settings to tune for {arm}")))?;
    let versus_chosen = trials
        .iter()
        .map(|t| {
            let diff: Vec<f64> = t
                .per_prompt
                .iter()
                .zip(&trials[chosen].per_prompt)
                .map(|(a, b)| a - b)
                .collect();
            paired_bootstrap(&[diff], RESAMPLES, 0x7475_6e65)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ArmSearch {
        arm: arm.to_string(),
        trials,
        knobs,
        chosen,
        versus_chosen,
    })
}

/// Writes `tuning.md` ([`tuning_markdown`]) and `tuning.json` (every trial with its per-prompt
/// outcomes) into the output directory, each complete or absent; returns the markdown.
pub fn write_tuning(searches: &[ArmSearch], config: &DemoConfig) -> Result<String> {
    let md = tuning_markdown(searches, config);
    let json = serde_json::to_string_pretty(searches)
        .map_err(|e| Error::Config(format!("serializing the tuning results: {e}")))?;
    write_file_atomically(&config.output.join("tuning.md"), md.as_bytes())?;
    write_file_atomically(&config.output.join("tuning.json"), json.as_bytes())?;
    Ok(md)
}

/// The searches as markdown: one table per arm, the chosen setting marked.
pub fn tuning_markdown(searches: &[ArmSearch], config: &DemoConfig) -> String {
    let mut md = format!(
        "# `ganpo demo --tune`\n\nValidation prompts: {} (a draw of their own from the task generator, \
         seed 5); criterion: the win rate against the SFT model's answers (ties ½) at the \
         worse of T = 0 and 0.7; training seed 0; {} epoch(s) per setting; each arm tried the same number of settings. \
         \"vs chosen\": the setting's mean win rate (T = 0 and 0.7) minus the chosen one's, 95% paired \
         bootstrap over prompts; \
         score: the judge's mean score at T = 0 and 0.7.\n",
        config.validation_prompts, config.epochs
    );
    for s in searches {
        let _ = writeln!(
            md,
            "\n## {}\n\n| setting | win T=0 | win T=0.7 | worse (criterion) | mean win vs chosen | score | held-out reward acc. | train s |\n|---|---|---|---|---|---|---|---|",
            s.arm
        );
        for (i, (t, v)) in s.trials.iter().zip(&s.versus_chosen).enumerate() {
            let mark = if i == s.chosen { " **(chosen)**" } else { "" };
            let vs = if i == s.chosen {
                "—".to_string()
            } else {
                format!("{:+.3} [{:+.3}, {:+.3}]", v.estimate, v.low, v.high)
            };
            let _ = writeln!(
                md,
                "| {}{mark} | {:.3} | {:.3} | {:.3} | {vs} | {:.3} | {:.3} | {:.1} |",
                t.setting,
                t.win_rates.first().copied().unwrap_or(f64::NAN),
                t.win_rates.get(1).copied().unwrap_or(f64::NAN),
                t.criterion(),
                t.score,
                t.reward_accuracy,
                t.seconds
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::config::LossKnobs;

    #[test]
    fn the_first_of_equal_scores_is_chosen_and_intervals_are_against_it() {
        let trial = |score: f64, per_prompt: Vec<f64>| Trial {
            arm: "dpo".into(),
            setting: format!("{score}"),
            scores: vec![0.5, 0.5],
            score: 0.5,
            win_rates: vec![score, score + 0.1],
            win_rate: score,
            per_prompt,
            reward_accuracy: 0.5,
            seconds: 1.0,
        };
        let trials = vec![
            trial(0.4, vec![0.4, 0.4]),
            trial(0.6, vec![0.5, 0.7]),
            trial(0.6, vec![0.7, 0.5]),
        ];
        let knobs = (0..3)
            .map(|_| ArmKnobs {
                loss: LossKnobs {
                    beta: 0.1,
                    learning_rate: 1e-5,
                },
                ganpo: None,
            })
            .collect();
        let s = choose("dpo", trials, knobs).unwrap();
        assert_eq!(s.chosen, 1);
        assert!((s.versus_chosen[0].estimate + 0.2).abs() < 1e-12);
        assert_eq!(s.versus_chosen[1].estimate, 0.0);
    }
}
