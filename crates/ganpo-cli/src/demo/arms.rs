//! The demo's arms: DPO, DPO + GANPO, SimPO, SimPO + GANPO, trained on identical data with
//! identical seeds and budgets (any setting applies to both arms of a pair alike), each through
//! the ordinary `ganpo train` code path from a generated TOML config.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use ganpo::train::metrics::Metrics;
use ganpo::train::to_completion::{RunEnd, Start, train_to_completion};
use ganpo::{Error, Result};

use super::config::ArmKnobs;

/// The preference loss an arm optimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseLoss {
    /// DPO (`sigmoid`).
    Dpo,
    /// SimPO, γ/β = 0.5.
    Simpo,
}

impl BaseLoss {
    /// The `[loss.objective]` table at `beta`.
    pub fn objective(self, beta: f64) -> String {
        match self {
            BaseLoss::Dpo => format!("type = \"sigmoid\"\nbeta = {beta:?}"),
            BaseLoss::Simpo => format!("type = \"simpo\"\nbeta = {beta:?}\ngamma_beta_ratio = 0.5"),
        }
    }
}

/// One arm of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm {
    /// Name used in reports and directories.
    pub name: &'static str,
    /// Its preference loss.
    pub loss: BaseLoss,
    /// GANPO on.
    pub ganpo: bool,
}

/// The four arms of the paper's comparison.
pub const ARMS: [Arm; 4] = [
    Arm {
        name: "dpo",
        loss: BaseLoss::Dpo,
        ganpo: false,
    },
    Arm {
        name: "dpo+ganpo",
        loss: BaseLoss::Dpo,
        ganpo: true,
    },
    Arm {
        name: "simpo",
        loss: BaseLoss::Simpo,
        ganpo: false,
    },
    Arm {
        name: "simpo+ganpo",
        loss: BaseLoss::Simpo,
        ganpo: true,
    },
];

/// Budget and data of the arms (what every arm shares; the knobs are [`ArmKnobs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmBudget {
    /// Epochs over the training pairs.
    pub epochs: usize,
    /// Pairs per step.
    pub batch_size: usize,
    /// Seed of data order and discriminators.
    pub seed: u64,
    /// Log (and draw training curves) every this many steps.
    pub logging_steps: u64,
    /// Checkpoint every this many steps, keeping all (0: only the final model).
    pub save_steps: u64,
}

/// What training one arm produced.
#[derive(Debug, Clone)]
pub struct ArmRun {
    /// Final held-out preference metrics (`eval_*`).
    pub eval: Metrics,
    /// Metrics of the last training step.
    pub last_step: Metrics,
    /// Wall-clock seconds of training.
    pub seconds: f64,
    /// Peak resident memory during training, in MiB (where the OS reports it).
    pub peak_rss_mib: Option<f64>,
}

/// The TOML config of one arm.
pub fn arm_config(
    arm: &Arm,
    knobs: &ArmKnobs,
    sft_dir: &Path,
    train: &Path,
    eval: &Path,
    out: &Path,
    budget: &ArmBudget,
) -> String {
    let ganpo = match knobs.ganpo {
        Some(g) => format!(
            "[ganpo]\nlambda = {lambda:?}\nseed = {seed}\ndisc_learning_rate = {dlr:?}\n\
             [ganpo.discriminator]\nwidth = {width}\ndepth = {depth}\nheads = 4\ndropout = 0.1\nmax_positions = 128\n",
            lambda = g.lambda,
            seed = budget.seed,
            dlr = g.disc_learning_rate,
            width = g.disc_width,
            depth = g.disc_depth,
        ),
        None => String::new(),
    };
    format!(
        "[model]\npath = {sft:?}\n\n[data]\ntrain_file = {train:?}\neval_file = {eval:?}\nmax_length = 128\nmax_prompt_length = 64\n\n\
         [loss.objective]\n{objective}\n\n{ganpo}\n[training]\noutput_dir = {out:?}\noverwrite_output_dir = true\n\
         num_train_epochs = {epochs}\nper_device_train_batch_size = {batch}\nlearning_rate = {lr:?}\nlr_scheduler_type = \"cosine\"\n\
         warmup_ratio = 0.1\nseed = {seed}\nlogging_steps = {logging}\nsave_steps = {save}\nsave_total_limit = {keep}\n",
        sft = sft_dir.display().to_string(),
        train = train.display().to_string(),
        eval = eval.display().to_string(),
        out = out.display().to_string(),
        objective = arm.loss.objective(knobs.loss.beta),
        epochs = budget.epochs,
        batch = budget.batch_size,
        lr = knobs.loss.learning_rate,
        seed = budget.seed,
        logging = budget.logging_steps,
        save = budget.save_steps,
        keep = if budget.save_steps > 0 { 0 } else { 1 },
    )
}

/// Trains one arm to completion (afresh, through [`ganpo::train::to_completion`]) and evaluates
/// it on the held-out pairs.
pub fn train_arm(config_text: &str, config_path: &Path) -> Result<ArmRun> {
    let label = config_path.display().to_string();
    let end = train_to_completion(
        config_text,
        config_path,
        &label,
        Start::Afresh,
        Arc::new(AtomicBool::new(false)),
        |_| {},
    )?;
    match end {
        RunEnd::Finished(run) => Ok(ArmRun {
            eval: run.eval,
            last_step: run.last_step,
            seconds: run.train_seconds,
            peak_rss_mib: run.peak_rss_mib,
        }),
        RunEnd::Interrupted { .. } => Err(Error::Training(format!(
            "{label}: training stopped before its end"
        ))),
    }
}
