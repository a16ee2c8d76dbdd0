//! `ganpo eval`: a policy against its reference — held-out preference metrics, sampled-response
//! KL, lengths and judge scores per temperature, latent MMD and a linear probe — as JSON and a
//! table on stdout.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::ValueEnum;
use ganpo::data::{DataConfig, PreferenceDataset};
use ganpo::eval::{EvalSettings, ProbeConfig, evaluate, prompts_from_pairs, prompts_from_texts};
use ganpo::model::peft::load_frozen;
use ganpo::train::trainer::parse_device;

use crate::judge::{Judge, SentimentJudge, StructuredTaskJudge};

/// Which judge scores sampled responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JudgeKind {
    /// The built-in structured-output task's rule judge (`content`, `structure`).
    Structured,
    /// VADER sentiment.
    Sentiment,
    /// No judge: no scores, no win rate.
    None,
}

/// Arguments of `ganpo eval`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// The trained policy (Hugging Face directory or GGUF file).
    #[arg(long)]
    policy: PathBuf,
    /// A PEFT LoRA adapter directory applied on top of --policy (e.g. a LoRA run's `final/`).
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The reference it was trained from.
    #[arg(long)]
    reference: PathBuf,
    /// Held-out preference data (JSONL/Parquet with `prompt`, `chosen`, `rejected`): preference
    /// metrics, latent diagnostics, and the prompts to sample from unless --prompts is given.
    #[arg(long)]
    data: Option<PathBuf>,
    /// JSONL prompts (`instruction` or `prompt` field) to sample from.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Judge of the sampled responses.
    #[arg(long, value_enum, default_value_t = JudgeKind::None)]
    judge: JudgeKind,
    /// Sampling temperatures, comma-separated; one report row each (0 = greedy).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_values_t = [0.0, 0.7, 1.0, 1.5])]
    temperatures: Vec<f64>,
    /// Samples per prompt and temperature.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Use at most this many prompts.
    #[arg(long)]
    max_prompts: Option<usize>,
    /// Seed of the sampling streams and of the probe's split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// DPO beta of the preference metrics.
    #[arg(long, default_value_t = 0.1)]
    beta: f64,
    /// Pairs or prompts per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Longest prompt + completion of the preference data, in tokens.
    #[arg(long, default_value_t = 1024)]
    max_length: usize,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Write the JSON report here.
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.data.is_none() && args.prompts.is_none() {
        bail!("give --data FILE (preference pairs) and/or --prompts FILE.jsonl");
    }
    if args.temperatures.is_empty() || args.samples == 0 {
        bail!("give at least one --temperatures value and --samples ≥ 1");
    }
    if let Some(t) = args
        .temperatures
        .iter()
        .find(|t| !(**t >= 0.0 && t.is_finite()))
    {
        bail!("--temperatures: {t} must be a finite number ≥ 0 (0 is greedy)");
    }
    if args.batch_size == 0 || args.max_new_tokens == 0 {
        bail!(
            "--batch-size {} and --max-new-tokens {} must both be 1 or more",
            args.batch_size,
            args.max_new_tokens
        );
    }
    if args.max_length < 2 || args.max_prompts == Some(0) {
        bail!(
            "--max-length must be at least 2 (got {}) and --max-prompts at least 1",
            args.max_length
        );
    }
    if !(args.beta > 0.0 && args.beta.is_finite()) {
        bail!("--beta {} must be a positive finite number", args.beta);
    }
    if let Some(path) = &args.output {
        super::output::check_writable(path, "--output")?;
    }
    let device = parse_device(&args.device)?;
    let load = |path: &PathBuf, adapter: Option<&std::path::Path>| {
        load_frozen(path, adapter, &device).with_context(|| format!("loading {}", path.display()))
    };
    let policy = load(&args.policy, args.adapter.as_deref())?;
    let reference = load(&args.reference, None)?;
    let (pv, rv) = (
        policy.model.config().vocab_size,
        reference.model.config().vocab_size,
    );
    if pv != rv {
        bail!(
            "--reference {} has a vocabulary of {rv} tokens but --policy {} has {pv}; compare models that share a tokenizer",
            args.reference.display(),
            args.policy.display()
        );
    }
    let tok = &policy.tokenizer;
    let data = match &args.data {
        None => None,
        Some(path) => {
            let config = DataConfig {
                max_length: Some(args.max_length),
                ..DataConfig::default()
            };
            let ds = PreferenceDataset::load(path, tok, &config)
                .with_context(|| format!("loading {}", path.display()))?;
            if !ds.summary.dropped.is_empty() || !ds.summary.warnings.is_empty() {
                eprintln!("{}: {}", path.display(), ds.summary);
            }
            Some(ds)
        }
    };
    let mut prompts = match (&args.prompts, &data) {
        (Some(path), _) => prompts_from_texts(&super::generate::read_prompts(path)?, tok)?,
        (None, Some(ds)) => prompts_from_pairs(&ds.pairs, tok)?,
        (None, None) => unreachable!("checked above"),
    };
    if let Some(n) = args.max_prompts {
        prompts.truncate(n);
    }
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.ids.clone()).collect();
    for (model, path) in [(&policy, &args.policy), (&reference, &args.reference)] {
        ganpo::generate::check_positions(&model.model, &ids, args.max_new_tokens)
            .with_context(|| format!("sampling from {}", path.display()))?;
    }
    let judge: Option<Box<dyn Judge>> = match args.judge {
        JudgeKind::Structured => Some(Box::new(StructuredTaskJudge)),
        JudgeKind::Sentiment => Some(Box::new(SentimentJudge::default())),
        JudgeKind::None => None,
    };
    let settings = EvalSettings {
        beta: args.beta,
        temperatures: args.temperatures.clone(),
        samples: args.samples,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        batch_size: args.batch_size.max(1),
        probe: ProbeConfig {
            seed: args.seed,
            ..ProbeConfig::default()
        },
    };
    let report = evaluate(
        &policy,
        &reference,
        data.as_ref().map(|d| d.pairs.as_slice()),
        &prompts,
        judge.as_deref(),
        &settings,
    )?;
    print!("{}", report.to_table());
    if let Some(path) = &args.output {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
