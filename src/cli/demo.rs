//! `ganpo demo`: the built-in benchmark, no downloads (see `ganpo::demo::run`).

use std::path::PathBuf;

use ganpo::demo::report::{summary_table, write_report};
use ganpo::demo::run::{DemoConfig, run_demo};

/// Arguments of `ganpo demo`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct DemoArgs {
    /// The small configuration (about 2 minutes), used by CI's smoke test.
    #[arg(long)]
    quick: bool,
    /// Repeat the four arms over this many seeds and report mean ± std.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Fraction of preference labels to swap (robustness to label noise).
    #[arg(long, default_value_t = 0.0)]
    label_noise: f64,
    /// Peak learning rate of every arm (the same for all four, so any tuning applies to both arms
    /// of each pair alike); default 3e-4.
    #[arg(long)]
    learning_rate: Option<f64>,
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
        config.learning_rate = lr;
    }
    let started = std::time::Instant::now();
    let results = run_demo(&config, |line| {
        eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64())
    })?;
    write_report(&results, &args.output)?;
    println!("{}", summary_table(&results));
    eprintln!("report: {}", args.output.join("report.md").display());
    Ok(())
}
