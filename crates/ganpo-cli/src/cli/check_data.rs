//! `ganpo check-data`: the dataset doctor. Runs every record through the training pipeline with the
//! run's limits and reports errors, drops, cuts and suspicious records with their locations, plus
//! length statistics; exits non-zero when training would refuse the file.

use std::path::PathBuf;

use anyhow::{Context, bail};
use candle_core::{DType, Device};
use ganpo::config::train::TrainConfig;
use ganpo::data::{DataConfig, PositionLimit, diagnose, read_records};
use ganpo::model::{Trainability, load_model};

/// Arguments of `ganpo check-data`.
#[derive(Debug, clap::Args)]
pub struct CheckDataArgs {
    /// A Hugging Face model directory or GGUF file (tokenizer, chat template, positions).
    #[arg(long)]
    model: PathBuf,
    /// The preference data to check (JSONL or Parquet).
    #[arg(long)]
    data: PathBuf,
    /// A `ganpo train` config whose `[data]` limits (and discriminator positions) apply.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: CheckDataArgs) -> anyhow::Result<()> {
    let config = args
        .config
        .as_deref()
        .map(|p| TrainConfig::load(p, &[]))
        .transpose()?;
    let data_config = config
        .as_ref()
        .map_or_else(DataConfig::default, |c| c.data.data_config());
    data_config.validate()?;
    let loaded = load_model(&args.model, Trainability::Frozen, DType::F32, &Device::Cpu)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let mut limits = vec![PositionLimit {
        positions: loaded.model.config().max_position_embeddings,
        what: format!("max_position_embeddings of {}", args.model.display()),
    }];
    if let Some(g) = config.as_ref().and_then(|c| c.ganpo.as_ref()) {
        limits.push(PositionLimit {
            positions: g.discriminator.max_positions,
            what: "ganpo.discriminator.max_positions".into(),
        });
    }
    let records = read_records(&args.data)?;
    let report = diagnose(
        &args.data.display().to_string(),
        records,
        &loaded.tokenizer,
        &data_config,
        &limits,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    if report.has_errors() {
        bail!(
            "{}: {} records cannot be trained on ({} usable)",
            args.data.display(),
            report.errors.len(),
            report.kept
        );
    }
    Ok(())
}
