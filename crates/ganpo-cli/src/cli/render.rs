//! `ganpo render-example`: one preference record through the whole data pipeline, shown step by
//! step (rendered text, token ids with the prompt/completion boundary, the loss mask), so a user
//! can see exactly what the model will be trained on.

use std::path::PathBuf;

use anyhow::{Context, bail};
use ganpo::data::{Batch, DataConfig, Prepared, TruncationMode, prepare, read_records};
use ganpo::tokenize::Tokenizer;

/// Arguments of `ganpo render-example`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct RenderArgs {
    /// A Hugging Face model directory or GGUF file (for its tokenizer and chat template).
    #[arg(long)]
    model: PathBuf,
    /// A preference dataset (JSONL or Parquet).
    #[arg(long)]
    data: PathBuf,
    /// Which record (0-based, in file order).
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Longest prompt + completion in tokens.
    #[arg(long, default_value_t = 1024)]
    max_length: usize,
    /// Longest prompt in tokens.
    #[arg(long, default_value_t = 512)]
    max_prompt_length: usize,
    /// Which end survives the max_length cut: keep_end or keep_start.
    #[arg(long, default_value = "keep_end")]
    truncation_mode: String,
}

fn load_tokenizer(path: &std::path::Path) -> anyhow::Result<Tokenizer> {
    if path.is_dir() {
        return Ok(Tokenizer::from_hf_dir(path)?);
    }
    // A GGUF file carries its tokenizer; loading the model is the way to rebuild it.
    let loaded = ganpo::model::load_model(
        path,
        ganpo::model::Trainability::Frozen,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )?;
    Ok(loaded.tokenizer)
}

fn show_ids(tok: &Tokenizer, ids: &[u32], prompt_len: usize) -> anyhow::Result<()> {
    for (i, &id) in ids.iter().enumerate() {
        if i == prompt_len {
            println!("      ──── completion (loss) starts ────");
        }
        let piece = tok.decode(&[id], false)?;
        let mask = u8::from(i >= prompt_len);
        println!("  {i:>4}  {id:>7}  mask {mask}  {piece:?}");
    }
    Ok(())
}

pub fn run(args: RenderArgs) -> anyhow::Result<()> {
    let truncation_mode = match args.truncation_mode.as_str() {
        "keep_end" => TruncationMode::KeepEnd,
        "keep_start" => TruncationMode::KeepStart,
        other => bail!("--truncation-mode must be keep_end or keep_start, got `{other}`"),
    };
    let config = DataConfig {
        max_length: Some(args.max_length),
        max_prompt_length: Some(args.max_prompt_length),
        max_completion_length: None,
        truncation_mode,
    };
    if args.max_length < 2 || args.max_prompt_length == 0 {
        bail!(
            "--max-length {} must be at least 2 and --max-prompt-length {} at least 1",
            args.max_length,
            args.max_prompt_length
        );
    }
    config.validate()?;
    let tok = load_tokenizer(&args.model)
        .with_context(|| format!("loading the tokenizer of {}", args.model.display()))?;
    let mut records = read_records(&args.data)?;
    let count = records.len();
    if args.index >= count {
        bail!(
            "{} has {count} record(s); --index {} is out of range (0-based)",
            args.data.display(),
            args.index
        );
    }
    let record = records.swap_remove(args.index);
    let location = record.location.clone();
    let rendered = record.clone().into_example()?.render(&tok, &location)?;
    println!("record {location}");
    println!("── rendered prompt ──\n{}", rendered.prompt);
    println!("── rendered chosen completion ──\n{}", rendered.chosen);
    println!("── rendered rejected completion ──\n{}", rendered.rejected);
    match prepare(record, &tok, &config)? {
        Prepared::Dropped(reason, _) => {
            println!(
                "\nthis pair is DROPPED from training: {reason:?} (see max_length / max_prompt_length / truncation_mode)"
            );
        }
        Prepared::Kept(pair, _) => {
            let batch = Batch::collate([&pair], tok.pad_id())?;
            for (name, seq) in [("chosen", &pair.chosen), ("rejected", &pair.rejected)] {
                println!(
                    "\n── {name}: {} tokens = {} prompt + {} completion ──",
                    seq.input_ids.len(),
                    seq.prompt_len,
                    seq.completion_len()
                );
                show_ids(&tok, &seq.input_ids, seq.prompt_len)?;
            }
            let (rows, width) = batch.shape();
            println!(
                "\nbatch layout: {rows} rows ([chosen; rejected]) × {width} positions, right-padded with id {}",
                tok.pad_id()
            );
        }
    }
    Ok(())
}
