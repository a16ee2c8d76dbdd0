//! Judges score a response to a prompt in [0, 1]; win rates compare two models under a judge.
//!
//! Two kinds exist, both in the `ganpo-cli` crate: programmatic rule checkers (the built-in
//! benchmark's structured-output task) and a lexicon sentiment judge (VADER), hence the small
//! trait; [`eval`](crate::eval) scores completions with any of them.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// A judge's verdict on one response.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeScore {
    /// Overall score in [0, 1] (higher is better).
    pub score: f64,
    /// Named sub-scores in [0, 1] (e.g. `content`, `structure`).
    pub components: BTreeMap<String, f64>,
}

/// Something that scores responses deterministically.
pub trait Judge {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// Scores `response` as an answer to `prompt`.
    fn score(&self, prompt: &str, response: &str) -> JudgeScore;
}

/// Outcome counts of a pairwise comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WinRate {
    /// Prompts where A scored higher.
    pub wins: usize,
    /// Prompts where the scores were equal (within `1e-9`).
    pub ties: usize,
    /// Prompts where B scored higher.
    pub losses: usize,
    /// `(wins + ties / 2) / n`.
    pub rate: f64,
}

/// One head-to-head comparison of scores `a` and `b`: 1 when `a` is higher, ½ on a tie (within
/// `1e-9`), 0 when `b` is higher. [`win_rate`] is its mean; every per-prompt win rate in the demo
/// and the study counts with it.
pub fn head_to_head(a: f64, b: f64) -> f64 {
    if (a - b).abs() <= 1e-9 {
        0.5
    } else if a > b {
        1.0
    } else {
        0.0
    }
}

/// Win rate of A over B on the same prompts, counting ties as half a win.
pub fn win_rate(
    judge: &dyn Judge,
    prompts: &[String],
    a: &[String],
    b: &[String],
) -> Result<WinRate> {
    if prompts.len() != a.len() || a.len() != b.len() || prompts.is_empty() {
        return Err(Error::Config(format!(
            "win_rate needs one response of each model per prompt: {} prompts, {} and {} responses",
            prompts.len(),
            a.len(),
            b.len()
        )));
    }
    let (mut wins, mut ties, mut losses) = (0, 0, 0);
    for ((p, ra), rb) in prompts.iter().zip(a).zip(b) {
        let outcome = head_to_head(judge.score(p, ra).score, judge.score(p, rb).score);
        if outcome == 0.5 {
            ties += 1;
        } else if outcome == 1.0 {
            wins += 1;
        } else {
            losses += 1;
        }
    }
    let rate = (wins as f64 + ties as f64 / 2.0) / prompts.len() as f64;
    Ok(WinRate {
        wins,
        ties,
        losses,
        rate,
    })
}
