//! Synthetic preference batches: random token ids of a fixed length, no tokenizer needed.

use candle_core::{Device, Tensor};
use ganpo::data::BatchTensors;
use ganpo::ganpo::rng::SplitMix64;
use ganpo::{Error, Result};

/// A `[chosen; rejected]` batch of `pairs` pairs in which every row is `seq_len` tokens long (no
/// padding). The first `prompt_len` tokens of a pair are its shared prompt (masked out of the
/// loss); the rest are the chosen or rejected completion.
///
/// Ids are `SplitMix64(seed) mod vocab`, drawn pair by pair as prompt, chosen completion, rejected
/// completion, so `tools/bench/torch_step.py` builds the identical batch.
pub fn synthetic_batch(
    pairs: usize,
    seq_len: usize,
    prompt_len: usize,
    vocab: usize,
    seed: u64,
    device: &Device,
) -> Result<BatchTensors> {
    if pairs == 0 || vocab == 0 || prompt_len == 0 || prompt_len >= seq_len {
        return Err(Error::Config(format!(
            "a bench batch needs at least one pair and 0 < prompt length ({prompt_len}) < sequence length ({seq_len})"
        )));
    }
    let mut rng = SplitMix64::new(seed);
    let mut draw = |n: usize| -> Vec<u32> {
        (0..n)
            .map(|_| (rng.next_u64() % vocab as u64) as u32)
            .collect()
    };
    let completion = seq_len - prompt_len;
    let mut chosen = Vec::with_capacity(pairs * seq_len);
    let mut rejected = Vec::with_capacity(pairs * seq_len);
    for _ in 0..pairs {
        let prompt = draw(prompt_len);
        chosen.extend_from_slice(&prompt);
        chosen.extend(draw(completion));
        rejected.extend_from_slice(&prompt);
        rejected.extend(draw(completion));
    }
    let ids: Vec<u32> = chosen.into_iter().chain(rejected).collect();
    let row_mask: Vec<f32> = (0..seq_len)
        .map(|t| if t < prompt_len { 0.0 } else { 1.0 })
        .collect();
    let loss_mask: Vec<f32> = row_mask.repeat(2 * pairs);
    let shape = (2 * pairs, seq_len);
    Ok(BatchTensors {
        input_ids: Tensor::from_vec(ids, shape, device)?,
        attention_mask: Tensor::ones(shape, candle_core::DType::U32, device)?,
        loss_mask: Tensor::from_vec(loss_mask, shape, device)?,
    })
}
