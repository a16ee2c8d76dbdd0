//! `ganpo generate`: continuations for one prompt or a JSONL file of prompts, written as JSONL in
//! AlpacaEval's format (`instruction`, `output`, `generator`) with the decoding settings recorded.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::Device;
use ganpo::generate::{GenerationConfig, SamplingConfig, generate};
use ganpo::model::peft::load_frozen;
use ganpo::tokenize::Message;
use serde_json::{Value, json};

/// Arguments of `ganpo generate`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct GenerateArgs {
    /// A Hugging Face model directory, a GGUF file, or a training checkpoint directory.
    #[arg(long)]
    model: PathBuf,
    /// A PEFT LoRA adapter directory applied on top of --model (e.g. a run's `final/`).
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// One prompt (printed to stdout unless --output is given).
    #[arg(long, conflicts_with = "prompts")]
    prompt: Option<String>,
    /// A JSONL file with one prompt per line in an `instruction` or `prompt` field.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Render each prompt as a user message with the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Most new tokens per prompt.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: usize,
    /// Fewest new tokens per prompt: end-of-sequence is ruled out before this many (as
    /// transformers' `min_new_tokens`); equal to --max-new-tokens for fixed-length outputs.
    #[arg(long, default_value_t = 0)]
    min_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Top-k filtering (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Top-p (nucleus) filtering (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Seed of the sampling streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop at this string (repeatable).
    #[arg(long = "stop")]
    stop_strings: Vec<String>,
    /// Prompts per batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Write JSONL results here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Compute threads (sets RAYON_NUM_THREADS; default: the physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The `generator` name recorded in the output (default: the model path).
    #[arg(long)]
    generator: Option<String>,
}

pub(super) fn read_prompts(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not valid JSON", path.display(), i + 1))?;
        let prompt = ["instruction", "prompt"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str));
        match prompt {
            Some(p) if !p.is_empty() => prompts.push(p.to_string()),
            _ => bail!(
                "{}:{}: needs a non-empty string field `instruction` or `prompt`",
                path.display(),
                i + 1
            ),
        }
    }
    if prompts.is_empty() {
        bail!("{} holds no prompts", path.display());
    }
    Ok(prompts)
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let prompts = match (&args.prompt, &args.prompts) {
        (Some(p), None) => vec![p.clone()],
        (None, Some(path)) => read_prompts(path)?,
        _ => bail!("give --prompt TEXT or --prompts FILE.jsonl"),
    };
    if !(args.top_p > 0.0 && args.top_p <= 1.0) {
        bail!(
            "--top-p {} is outside (0, 1]; 1 turns nucleus filtering off",
            args.top_p
        );
    }
    if !(args.temperature >= 0.0 && args.temperature.is_finite()) {
        bail!(
            "--temperature {} must be a finite number ≥ 0 (0 is greedy)",
            args.temperature
        );
    }
    if args.batch_size == 0 || args.max_new_tokens == 0 {
        bail!(
            "--batch-size {} and --max-new-tokens {} must both be 1 or more",
            args.batch_size,
            args.max_new_tokens
        );
    }
    if args.min_new_tokens > args.max_new_tokens {
        bail!(
            "--min-new-tokens {} is more than --max-new-tokens {}",
            args.min_new_tokens,
            args.max_new_tokens
        );
    }
    if let Some(path) = &args.output {
        super::output::check_writable(path, "--output")?;
    }
    let loaded = load_frozen(&args.model, args.adapter.as_deref(), &Device::Cpu)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let config = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        min_new_tokens: args.min_new_tokens,
        sampling: SamplingConfig {
            temperature: args.temperature,
            top_k: (args.top_k > 0).then_some(args.top_k),
            top_p: (args.top_p < 1.0).then_some(args.top_p),
        },
        seed: args.seed,
        stop_strings: args.stop_strings.clone(),
    };
    let tok = &loaded.tokenizer;
    let mut encoded = Vec::with_capacity(prompts.len());
    for p in &prompts {
        let text = if args.chat {
            tok.apply_chat_template(&[Message::new("user", p.clone())], true)?
        } else {
            p.clone()
        };
        // Chat templates spell out BOS themselves; plain prompts get it if the tokenizer adds one.
        encoded.push(tok.encode(&text, !args.chat)?);
    }
    if let Some(i) = encoded.iter().position(Vec::is_empty) {
        bail!("prompt {i} encodes to no tokens; give a non-empty prompt");
    }
    ganpo::generate::check_positions(&loaded.model, &encoded, args.max_new_tokens)?;
    let generator = args
        .generator
        .clone()
        .unwrap_or_else(|| args.model.display().to_string());
    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let started = std::time::Instant::now();
    let mut new_tokens = 0usize;
    let prompt_tokens: usize = encoded.iter().map(Vec::len).sum();
    for (chunk_index, chunk) in encoded.chunks(args.batch_size.max(1)).enumerate() {
        let results = generate(&loaded.model, tok, chunk, &config)?;
        for (i, r) in results.into_iter().enumerate() {
            new_tokens += r.tokens.len();
            let index = chunk_index * args.batch_size.max(1) + i;
            if args.output.is_none() && args.prompt.is_some() {
                println!("{}", r.text);
                continue;
            }
            let line = json!({
                "instruction": prompts[index],
                "output": r.text,
                "generator": generator,
                "finish_reason": r.finish_reason,
                "decoding": &config,
            });
            writeln!(sink, "{line}")?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "generated {new_tokens} tokens for {} prompt(s) ({prompt_tokens} prompt tokens) in {secs:.2} s ({:.1} tokens/s)",
        prompts.len(),
        new_tokens as f64 / secs.max(1e-9)
    );
    Ok(())
}
