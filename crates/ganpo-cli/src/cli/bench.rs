//! `ganpo bench`: time the training step of DPO and DPO + GANPO (see `crate::bench`).

use std::path::PathBuf;

use anyhow::Context;

use crate::bench::{BenchConfig, BenchMode, BenchShape, ModelSource, run_bench};

/// Arguments of `ganpo bench`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct BenchArgs {
    /// A Hugging Face model directory or GGUF file (default: random weights of `--shape`).
    #[arg(long, conflicts_with = "shape")]
    model: Option<PathBuf>,
    /// The randomly initialized model: `smollm2-135m` (SmolLM2-135M's shape, the default), `smollm2-360m` or `tiny`.
    #[arg(long, default_value = "smollm2-135m")]
    shape: String,
    /// Preference pairs per step (the batch has twice as many sequences).
    #[arg(long, default_value_t = 4)]
    batch_pairs: usize,
    /// Tokens per sequence, prompt included.
    #[arg(long, default_value_t = 256)]
    seq_len: usize,
    /// Prompt tokens per sequence (masked out of the loss; default: half of --seq-len).
    #[arg(long)]
    prompt_len: Option<usize>,
    /// Timed steps per loss.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Untimed steps per loss before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Which losses to time, in order: `dpo`, `ganpo` (DPO + GANPO), or both.
    #[arg(long, value_delimiter = ',', default_value = "dpo,ganpo")]
    losses: Vec<String>,
    /// Build every loss's trainer first, then alternate their timed steps, so that a slower
    /// stretch of the machine slows each loss alike (the fairest GANPO overhead; peak RSS is then
    /// the whole process's).
    #[arg(long)]
    interleave: bool,
    /// Also write the report as JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Compute threads (sets RAYON_NUM_THREADS; default: the physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed of the random weights and token ids.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Override a training-config value as in `ganpo train`, e.g. `--set ganpo.discriminator.depth=1`
    /// (repeatable; `ganpo.*` applies to the GANPO run only).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.batch_pairs == 0 || args.steps == 0 {
        anyhow::bail!(
            "--batch-pairs {} and --steps {} must both be 1 or more",
            args.batch_pairs,
            args.steps
        );
    }
    if args.seq_len < 2 || args.prompt_len.is_some_and(|p| p == 0 || p >= args.seq_len) {
        anyhow::bail!(
            "--seq-len {} needs at least 2 tokens, and --prompt-len (default: half of it) must be between 1 and --seq-len − 1",
            args.seq_len
        );
    }
    if args
        .batch_pairs
        .checked_mul(args.seq_len)
        .is_none_or(|tokens| tokens > 1 << 24)
    {
        anyhow::bail!(
            "--batch-pairs {} × --seq-len {} is far beyond one step's memory; use smaller values",
            args.batch_pairs,
            args.seq_len
        );
    }
    if let Some(path) = &args.output {
        super::output::check_writable(path, "--output")?;
    }
    let model = match args.model {
        Some(path) => ModelSource::Path(path),
        None => ModelSource::Random(args.shape.parse::<BenchShape>()?),
    };
    let mut config = BenchConfig::new(model);
    config.batch_pairs = args.batch_pairs;
    config.seq_len = args.seq_len;
    config.prompt_len = args.prompt_len;
    config.steps = args.steps;
    config.warmup = args.warmup;
    config.seed = args.seed;
    config.overrides = args.overrides;
    config.interleave = args.interleave;
    config.modes = args
        .losses
        .iter()
        .map(|l| l.trim().parse::<BenchMode>())
        .collect::<ganpo::Result<_>>()?;
    let started = std::time::Instant::now();
    let report = run_bench(&config, |line| {
        eprintln!("[{:>7.1}s] {line}", started.elapsed().as_secs_f64())
    })?;
    println!("{}", report.table());
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report: {}", path.display());
    }
    Ok(())
}
