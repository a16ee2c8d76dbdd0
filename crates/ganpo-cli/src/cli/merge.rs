//! `ganpo merge`: a base model plus a PEFT LoRA adapter written as one Hugging Face model
//! (`W + s·B·A` for every adapted projection), loadable by ganpo and transformers.

use std::path::PathBuf;

use anyhow::{Context, bail};
use candle_core::Device;
use clap::Args;
use ganpo::model::peft::load_with_adapter;
use ganpo::model::save_hf;
use ganpo::train::checkpoint_dir::publish_dir;

/// Arguments of `ganpo merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The base model the adapter was trained on (Hugging Face directory or GGUF file).
    #[arg(long)]
    base: PathBuf,
    /// The PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`), e.g. a
    /// LoRA run's `final/`.
    #[arg(long)]
    adapter: PathBuf,
    /// Where the merged Hugging Face directory goes (must not exist or be empty).
    #[arg(long)]
    output: PathBuf,
}

pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let non_empty = args
        .output
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if non_empty || args.output.is_file() {
        bail!(
            "--output {} exists and is not an empty directory; choose a new directory",
            args.output.display()
        );
    }
    let loaded = load_with_adapter(&args.base, &args.adapter, &Device::Cpu).with_context(|| {
        format!(
            "loading {} with adapter {}",
            args.base.display(),
            args.adapter.display()
        )
    })?;
    let merged = loaded.model.merged().context("merging the adapter")?;
    // Complete or absent after a crash, like every model directory ganpo writes.
    let name = args
        .output
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--output {} names no directory", args.output.display()))?;
    let parent = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    publish_dir(parent, name, |dir| {
        save_hf(
            &merged,
            &loaded.tokenizer,
            loaded.generation_config.as_ref(),
            dir,
        )
    })
    .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "merged {} + {} into {}",
        args.base.display(),
        args.adapter.display(),
        args.output.display()
    );
    Ok(())
}
