//! Batched sampling of many rows with a progress bar: rows are generated `batch` at a time, batch
//! `c` seeded with `seed + c·φ` (each row of a batch has its own stream), so two models sampled
//! with the same rows, batch size and seed get paired random streams.

use ganpo::Result;
use ganpo::generate::{Generation, GenerationConfig, SamplingConfig, generate};
use ganpo::model::CausalLm;
use ganpo::tokenize::Tokenizer;

use super::progress::Bar;

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Temperature (the study never samples greedily).
    pub temperature: f64,
    /// Most new tokens per row.
    pub max_new_tokens: usize,
    /// Base seed.
    pub seed: u64,
    /// Rows per batch.
    pub batch: usize,
}

/// One continuation per row of `rows` (token ids), in row order.
pub fn sample_rows(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    rows: &[Vec<u32>],
    sampling: Sampling,
    bar: &mut Bar,
    done_before: u64,
) -> Result<Vec<Generation>> {
    let mut out = Vec::with_capacity(rows.len());
    for (c, chunk) in rows.chunks(sampling.batch.max(1)).enumerate() {
        let config = GenerationConfig {
            max_new_tokens: sampling.max_new_tokens,
            min_new_tokens: 0,
            sampling: SamplingConfig {
                temperature: sampling.temperature,
                top_k: None,
                top_p: None,
            },
            seed: sampling
                .seed
                .wrapping_add((c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            stop_strings: Vec::new(),
        };
        out.extend(generate(model, tokenizer, chunk, &config)?);
        bar.set(done_before + out.len() as u64, done_before);
    }
    Ok(out)
}
