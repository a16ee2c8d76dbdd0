//! The over-optimization study: the DPO arm trained for more epochs (the stated stronger setting;
//! same data, learning rate and β, seed 0), its checkpoint at the end of chosen epochs
//! evaluated like the arms. Past the best epoch, KL(policy ‖ SFT) keeps growing while the
//! held-out judge score falls: the regime a regularizer such as GANPO exists for.

use std::path::Path;

use ganpo::{Error, Result};
use serde::Serialize;

use super::arms::{ARMS, ArmBudget, arm_config, train_arm};
use super::config::{ArmKnobs, LossKnobs};
use super::evaluate::EvalContext;
use super::prepare::mkdir;
use super::stats::{Interval, RESAMPLES, paired_bootstrap};

/// One (epoch, temperature) point of the study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OveroptPoint {
    /// Epochs trained.
    pub epoch: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Mean judge score on the held-out prompts.
    pub score: f64,
    /// Monte-Carlo KL(policy ‖ SFT) per response.
    pub kl_to_reference: f64,
    /// Win rate against the SFT model's answers.
    pub win_rate_vs_sft: f64,
    /// The judge score of each held-out prompt (for the interval of a score change).
    #[serde(skip)]
    pub scores: Vec<f64>,
}

/// What the study found, read from its points at one temperature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OveroptSummary {
    /// Temperature the summary reads.
    pub temperature: f64,
    /// The epoch with the best score.
    pub best_epoch: usize,
    /// Its score and KL.
    pub best: (f64, f64),
    /// The last epoch's score and KL.
    pub last: (f64, f64),
    /// The last epoch's score minus the best's, with its 95% bootstrap interval over prompts.
    pub score_change: Interval,
    /// Whether KL grew and the score fell (the whole interval below 0) from the best epoch to
    /// the last.
    pub over_optimized: bool,
}

/// Trains DPO with `knobs` for `epochs`, checkpointing every epoch, and evaluates the checkpoints after each
/// of `at` epochs. `steps_per_epoch` is the number of optimizer steps of one epoch.
#[allow(clippy::too_many_arguments)]
pub fn overoptimization(
    ctx: &EvalContext<'_>,
    sft_dir: &Path,
    train: &Path,
    eval: &Path,
    out: &Path,
    knobs: LossKnobs,
    budget: ArmBudget,
    steps_per_epoch: u64,
    at: &[usize],
) -> Result<Vec<OveroptPoint>> {
    let dpo = ARMS
        .iter()
        .find(|a| a.name == "dpo")
        .ok_or_else(|| Error::Config("the DPO arm is missing".into()))?;
    let budget = ArmBudget {
        save_steps: steps_per_epoch,
        ..budget
    };
    mkdir(out)?;
    let knobs = ArmKnobs {
        loss: knobs,
        ganpo: None,
    };
    let text = arm_config(dpo, &knobs, sft_dir, train, eval, &out.join("run"), &budget);
    train_arm(&text, &out.join("config.toml"))?;
    let mut points = Vec::new();
    for &epoch in at {
        let step = steps_per_epoch * epoch as u64;
        let dir = if epoch == budget.epochs {
            out.join("run").join("final")
        } else {
            out.join("run")
                .join(format!("checkpoint-{step}"))
                .join("policy")
        };
        let (rows, per_prompt) = ctx.evaluate_dir(&dir, &[0.0, 0.7])?;
        points.extend(rows.into_iter().zip(per_prompt).map(|(r, p)| OveroptPoint {
            epoch,
            temperature: r.temperature,
            score: r.score,
            kl_to_reference: r.kl_to_reference,
            win_rate_vs_sft: r.win_rate_vs_sft,
            scores: p.scores,
        }));
    }
    Ok(points)
}

/// The study read at `temperature`: best epoch, last epoch, and whether the last has the larger
/// KL and the lower score.
pub fn summarize(points: &[OveroptPoint], temperature: f64) -> Result<Option<OveroptSummary>> {
    let at: Vec<&OveroptPoint> = points
        .iter()
        .filter(|p| (p.temperature - temperature).abs() < 1e-9)
        .collect();
    let (Some(best), Some(last)) = (
        at.iter().max_by(|a, b| a.score.total_cmp(&b.score)),
        at.iter().max_by_key(|p| p.epoch),
    ) else {
        return Ok(None);
    };
    let change: Vec<f64> = last
        .scores
        .iter()
        .zip(&best.scores)
        .map(|(l, b)| l - b)
        .collect();
    let score_change = paired_bootstrap(&[change], RESAMPLES, 0x6f76_6572)?;
    Ok(Some(OveroptSummary {
        temperature,
        best_epoch: best.epoch,
        best: (best.score, best.kl_to_reference),
        last: (last.score, last.kl_to_reference),
        score_change,
        over_optimized: last.epoch > best.epoch
            && last.kl_to_reference > best.kl_to_reference
            && score_change.high < 0.0,
    }))
}
