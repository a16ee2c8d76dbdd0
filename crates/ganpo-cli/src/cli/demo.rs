//! `ganpo demo`: the built-in benchmark, no downloads (see `crate::demo::run`).

use std::path::PathBuf;

use crate::demo::report::{summary_table, write_report};
use crate::demo::run::{DemoConfig, run_demo};
use crate::demo::tune::{tune, write_tuning};
use crate::demo::tune_grid::TuneGrid;

/// Arguments of `ganpo demo`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct DemoArgs {
    /// The small configuration used by CI's smoke test: about 6 s on an idle 2-core CPU (release
    /// build); too small for its verdicts to say anything (the default run takes about 1 min 40 s).
    #[arg(long)]
    quick: bool,
    /// Instead of the comparison, choose every arm's knobs on validation prompts by their win
    /// rate against SFT at the worse of T = 0 and 0.7 (DPO's and SimPO's β × lr, then GANPO's
    /// λ × discriminator on top of its base's choice, 9 settings each; 15–40 min on 2 cores):
    /// writes `tuning.md` and `tuning.json`; rerun to resume. The defaults are its choice.
    #[arg(long)]
    tune: bool,
    /// Repeat the four arms over this many seeds and report mean ± std.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Fraction of preference labels to swap (robustness to label noise).
    #[arg(long, default_value_t = 0.0)]
    label_noise: f64,
    /// Peak learning rate of every arm (the same for all four; default: each loss's tuned value,
    /// see `--tune`).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Epochs of preference training per arm (default 2; more epochs over-optimize).
    #[arg(long)]
    epochs: Option<usize>,
    /// DPO's β for both DPO arms (default: the tuned value, see `--tune`).
    #[arg(long)]
    beta: Option<f64>,
    /// Fraction of SFT demonstrations with a structural or content defect (default 0.2).
    #[arg(long)]
    sft_defect_rate: Option<f64>,
    /// Fraction of the defect-prone prompts' SFT demonstrations with their systematic defect
    /// (default 0.7).
    #[arg(long)]
    sft_systematic_rate: Option<f64>,
    /// Arms to train, comma-separated (default: dpo,dpo+ganpo,simpo,simpo+ganpo); the verdicts
    /// need all four.
    #[arg(long, value_delimiter = ',')]
    arms: Option<Vec<String>>,
    /// Prompts turned into training pairs (default 1200).
    #[arg(long)]
    train_prompts: Option<usize>,
    /// Samples per prompt for the pairs (default 8).
    #[arg(long)]
    samples_per_prompt: Option<usize>,
    /// Output directory (report.md, results.json, models, data).
    #[arg(long, default_value = "ganpo-demo")]
    output: PathBuf,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.seeds >= 1, "--seeds must be at least 1");
    anyhow::ensure!(
        (0.0..0.5).contains(&args.label_noise),
        "--label-noise must be in [0, 0.5)"
    );
    let mut config = DemoConfig::new(args.output.clone(), args.quick, args.seeds);
    config.label_noise = args.label_noise;
    if let Some(lr) = args.learning_rate {
        anyhow::ensure!(
            lr > 0.0 && lr.is_finite(),
            "--learning-rate must be positive"
        );
        config.dpo.learning_rate = lr;
        config.simpo.learning_rate = lr;
    }
    if let Some(e) = args.epochs {
        anyhow::ensure!(e >= 1, "--epochs must be at least 1");
        config.epochs = e;
    }
    if let Some(b) = args.beta {
        anyhow::ensure!(b > 0.0 && b.is_finite(), "--beta must be positive");
        config.dpo.beta = b;
    }
    if let Some(r) = args.sft_defect_rate {
        anyhow::ensure!(
            (0.0..1.0).contains(&r),
            "--sft-defect-rate must be in [0, 1)"
        );
        config.sft_defect_rate = r;
    }
    if let Some(r) = args.sft_systematic_rate {
        anyhow::ensure!(
            (0.0..=1.0).contains(&r),
            "--sft-systematic-rate must be in [0, 1]"
        );
        config.sft_systematic_rate = r;
    }
    if let Some(arms) = args.arms {
        for a in &arms {
            anyhow::ensure!(
                config.arms.contains(a),
                "--arms: unknown arm `{a}`; choose from {}",
                config.arms.join(", ")
            );
        }
        config.arms = arms;
    }
    if let Some(n) = args.train_prompts {
        anyhow::ensure!(n >= 1, "--train-prompts must be at least 1");
        config.train_prompts = n;
    }
    if let Some(n) = args.samples_per_prompt {
        anyhow::ensure!(n >= 2, "--samples-per-prompt must be at least 2");
        config.samples_per_prompt = n;
    }
    let started = std::time::Instant::now();
    let progress = |line: &str| eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
    if args.tune {
        let searches = tune(&config, &TuneGrid::new(args.quick), progress)?;
        println!("{}", write_tuning(&searches, &config)?);
        eprintln!("tuning: {}", args.output.join("tuning.md").display());
        return Ok(());
    }
    let results = run_demo(&config, progress)?;
    write_report(&results, &args.output)?;
    println!("{}", summary_table(&results));
    eprintln!("report: {}", args.output.join("report.md").display());
    Ok(())
}
