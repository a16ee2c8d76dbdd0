//! Training curves of one run: the metric groups plotted from `metrics.jsonl`, one PNG each,
//! train and held-out (`eval_`) values of the same quantity on the same axes.

use std::path::{Path, PathBuf};

use ganpo::Result;

use super::chart::{LineChart, Series};
use super::history::MetricsHistory;

/// Which metrics a group draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// Exactly these keys, in this order.
    Exact(&'static [&'static str]),
    /// Every logged key with this prefix, sorted.
    Prefix(&'static str),
}

/// One chart of related metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Group {
    file: &'static str,
    title: &'static str,
    y_label: &'static str,
    keys: Keys,
}

/// The groups, in output order. Key names are TRL's plus GANPO's diagnostics
/// (`crates/ganpo/src/train/step.rs`); evaluation metrics carry the `eval_` prefix
/// (`crates/ganpo/src/train/run.rs`).
const GROUPS: [Group; 10] = [
    Group {
        file: "loss.png",
        title: "Loss",
        y_label: "loss",
        keys: Keys::Exact(&["loss", "eval_loss"]),
    },
    Group {
        file: "rewards_margins.png",
        title: "Reward margin (chosen − rejected)",
        y_label: "rewards/margins",
        keys: Keys::Exact(&["rewards/margins", "eval_rewards/margins"]),
    },
    Group {
        file: "rewards_accuracies.png",
        title: "Reward accuracy (chosen reward > rejected reward)",
        y_label: "rewards/accuracies",
        keys: Keys::Exact(&["rewards/accuracies", "eval_rewards/accuracies"]),
    },
    Group {
        file: "rewards.png",
        title: "Implicit rewards",
        y_label: "reward",
        keys: Keys::Exact(&[
            "rewards/chosen",
            "rewards/rejected",
            "eval_rewards/chosen",
            "eval_rewards/rejected",
        ]),
    },
    Group {
        file: "logps.png",
        title: "Completion log-probabilities (summed)",
        y_label: "log-prob",
        keys: Keys::Exact(&[
            "logps/chosen",
            "logps/rejected",
            "eval_logps/chosen",
            "eval_logps/rejected",
        ]),
    },
    Group {
        file: "ganpo_losses.png",
        title: "GANPO: discriminator losses and the policy's adversarial loss",
        y_label: "loss",
        keys: Keys::Exact(&["disc/loss_chosen", "disc/loss_rejected", "adv/loss"]),
    },
    Group {
        file: "ganpo_disc_accuracies.png",
        title: "GANPO: discriminator ordering accuracies",
        y_label: "accuracy",
        keys: Keys::Prefix("disc/acc_"),
    },
    Group {
        file: "ganpo_disc_means.png",
        title: "GANPO: running means of the discriminator scores",
        y_label: "mean score",
        keys: Keys::Prefix("disc/mean_"),
    },
    Group {
        file: "learning_rate.png",
        title: "Learning rate",
        y_label: "learning_rate",
        keys: Keys::Exact(&["learning_rate"]),
    },
    Group {
        file: "grad_norm.png",
        title: "Gradient norm (before clipping)",
        y_label: "grad_norm",
        keys: Keys::Exact(&["grad_norm"]),
    },
];

/// The chart of one metric group, or `None` when the run logged none of its metrics.
fn group_chart(history: &MetricsHistory, group: &Group) -> Option<LineChart> {
    let keys: Vec<&str> = match group.keys {
        Keys::Exact(keys) => keys.to_vec(),
        Keys::Prefix(prefix) => history
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .collect(),
    };
    let mut chart = LineChart::new(group.title, "step", group.y_label);
    for key in keys {
        chart = chart.with_series(Series::new(key, history.series(key)));
    }
    chart.has_data().then_some(chart)
}

/// Writes one PNG per metric group with data into `out_dir` (which must exist), returning the
/// paths: `loss.png`, `rewards_margins.png`, `rewards_accuracies.png`, `rewards.png`,
/// `logps.png`, and for GANPO runs `ganpo_losses.png`, `ganpo_disc_accuracies.png`,
/// `ganpo_disc_means.png`, then `learning_rate.png` and `grad_norm.png`.
pub fn plot_training_curves(history: &MetricsHistory, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for group in &GROUPS {
        if let Some(chart) = group_chart(history, group) {
            let path = out_dir.join(group.file);
            chart.write_png(&path)?;
            written.push(path);
        }
    }
    Ok(written)
}
