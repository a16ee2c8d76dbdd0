//! `ganpo study sentiment`: the real-model controlled-sentiment study (see `crate::study`).

use std::path::PathBuf;

use anyhow::Context;

use crate::study::config::{PromptFormat, StudyConfig};
use crate::study::report::write_report;
use crate::study::run::run_study;

/// Which study to run.
#[derive(Debug, clap::Subcommand)]
pub enum StudyCommand {
    /// SmolLM2-135M-Instruct continues Brown-corpus prefixes; VADER sentiment is the reward;
    /// DPO (several β), DPO + GANPO and SimPO (± GANPO) compared on reward, KL and text quality.
    Sentiment(SentimentArgs),
}

/// Arguments of `ganpo study sentiment`.
#[derive(Debug, clap::Args)]
pub struct SentimentArgs {
    /// The reference model: the .gguf path `scripts/fetch-smollm2.sh` prints (or a Hugging Face directory).
    #[arg(long)]
    model: PathBuf,
    /// The Brown corpus directory `scripts/fetch-brown.sh` prints.
    #[arg(long)]
    corpus: PathBuf,
    /// Output directory; rerunning with the same flags resumes (finished phases are skipped).
    #[arg(long)]
    output: PathBuf,
    /// A small end-to-end run (about 10 minutes on a busy 2-core CPU): one β, 32 training and
    /// 16 held-out prompts, two temperatures; too small for its verdicts to say anything.
    #[arg(long)]
    quick: bool,
    /// Train every arm with this many seeds.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// How prompts are shown to the model.
    #[arg(long, value_enum)]
    prompt_format: Option<PromptFormat>,
    /// Training prompts (the default run: 384).
    #[arg(long)]
    train_prompts: Option<usize>,
    /// Validation prompts, whose pairs give training's `eval_*` metrics (the default run: 48).
    #[arg(long)]
    validation_prompts: Option<usize>,
    /// Held-out evaluation prompts (the default run: 200).
    #[arg(long)]
    eval_prompts: Option<usize>,
    /// Reference samples per prompt for the pairs (K; default 4).
    #[arg(long)]
    samples_per_prompt: Option<usize>,
    /// Smallest VADER-compound gap between chosen and rejected (default 0.4).
    #[arg(long)]
    min_gap: Option<f64>,
    /// DPO's β values, comma-separated (the default run: 0.03,0.1,0.3).
    #[arg(long, value_delimiter = ',')]
    betas: Option<Vec<f64>>,
    /// Epochs over the pairs (default 1).
    #[arg(long)]
    epochs: Option<usize>,
    /// Peak learning rate of every arm (default 2e-4).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Rows per generation batch (default 64).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Longest prompt in tokens; longer ones are skipped (default 32).
    #[arg(long)]
    max_prompt_tokens: Option<usize>,
    /// Most new tokens of pair and evaluation samples (default 24).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Keep each arm's final model (0.5 GB each) instead of deleting it after its evaluation.
    #[arg(long)]
    keep_models: bool,
    /// Stop after building the pairs (to compare prompt formats).
    #[arg(long)]
    pairs_only: bool,
}

fn positive(name: &str, v: f64) -> anyhow::Result<f64> {
    anyhow::ensure!(
        v > 0.0 && v.is_finite(),
        "{name} must be a positive number, got {v}"
    );
    Ok(v)
}

pub fn run(command: StudyCommand) -> anyhow::Result<()> {
    let StudyCommand::Sentiment(a) = command;
    anyhow::ensure!(a.seeds >= 1, "--seeds must be at least 1");
    let absolute =
        |p: &PathBuf| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
    let mut c = StudyConfig::new(
        absolute(&a.output)?,
        absolute(&a.model)?,
        absolute(&a.corpus)?,
        a.quick,
        a.seeds,
    );
    if let Some(f) = a.prompt_format {
        c.prompt_format = f;
    }
    for (flag, value, field) in [
        ("--train-prompts", a.train_prompts, &mut c.train_prompts),
        ("--eval-prompts", a.eval_prompts, &mut c.eval_prompts),
        (
            "--validation-prompts",
            a.validation_prompts,
            &mut c.validation_prompts,
        ),
        ("--epochs", a.epochs, &mut c.epochs),
        ("--batch-size", a.batch_size, &mut c.batch_size),
        (
            "--max-prompt-tokens",
            a.max_prompt_tokens,
            &mut c.max_prompt_tokens,
        ),
    ] {
        if let Some(v) = value {
            anyhow::ensure!(v >= 1, "{flag} must be at least 1");
            *field = v;
        }
    }
    if let Some(k) = a.samples_per_prompt {
        anyhow::ensure!(
            k >= 2,
            "--samples-per-prompt must be at least 2 (a pair needs two samples)"
        );
        c.samples_per_prompt = k;
    }
    if let Some(n) = a.max_new_tokens {
        anyhow::ensure!((1..=48).contains(&n), "--max-new-tokens must be in 1..=48");
        c.pair_max_new_tokens = n;
        c.eval_max_new_tokens = n;
    }
    if let Some(g) = a.min_gap {
        anyhow::ensure!(
            (0.0..2.0).contains(&g),
            "--min-gap must be in [0, 2) (0 keeps ties: only for pipeline tests)"
        );
        c.min_gap = g;
    }
    if let Some(lr) = a.learning_rate {
        c.learning_rate = positive("--learning-rate", lr)?;
    }
    if let Some(betas) = a.betas {
        anyhow::ensure!(!betas.is_empty(), "--betas needs at least one value");
        for b in &betas {
            positive("--betas", *b)?;
        }
        c.betas = betas;
    }
    c.keep_models = a.keep_models;
    let stop = super::interrupt::stop_flag("stopping at the next safe point")?;
    let started = std::time::Instant::now();
    let data = run_study(&c, a.pairs_only, stop, |line| {
        eprintln!("[{:>7.1}s] {line}", started.elapsed().as_secs_f64())
    })?;
    if a.pairs_only {
        println!("{}", serde_json::to_string_pretty(&data.pairs)?);
        return Ok(());
    }
    write_report(&data)?;
    eprintln!("report: {}", c.output.join("report.md").display());
    Ok(())
}
