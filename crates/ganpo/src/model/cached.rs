//! Incremental decoding with an explicit key/value cache. The model stays `&self`: the cache is a
//! separate value the caller owns, so training code can never see decoding state.
//!
//! Rows may be left-padded (as batched generation pads prompts). Each row's positions count its
//! real tokens only (`cumsum(mask) − 1`, as transformers' `generate` derives `position_ids`), and
//! keys are masked by padding, causality and, for sliding layers, the window measured in cache
//! slots (as transformers does).

use candle_core::{DType, Tensor};

use super::config::AttentionKind;
use super::decoder::CausalLm;
use crate::{Error, Result};

/// Cached keys and values of every layer, plus which cache slots hold real tokens.
///
/// Each layer's keys and values live in buffers with room for `capacity` slots, written in place
/// as tokens arrive and read in place by attention (a narrowed view), so a decoding step copies
/// nothing it already holds. Not `Clone`: two caches would share (and overwrite) the buffers.
#[derive(Debug)]
pub struct KvCache {
    /// Per layer: key and value buffers `[batch, kv_heads, capacity, head_dim]`; the first
    /// [`KvCache::len`] slots are filled.
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Slots to allocate at the first step (more are added by doubling if needed).
    reserve: usize,
    /// Per row: 1 for a real token in each slot, 0 for padding.
    key_mask: Vec<Vec<u32>>,
    /// Per row: number of real tokens so far (the next position).
    next_position: Vec<u32>,
}

impl KvCache {
    /// An empty cache for `batch` rows of a model with `layers` layers.
    pub fn new(batch: usize, layers: usize) -> Self {
        Self::with_capacity(batch, layers, 0)
    }

    /// An empty cache that allocates room for `capacity` slots (prompt width plus new tokens) at
    /// once, so that it never grows.
    pub fn with_capacity(batch: usize, layers: usize, capacity: usize) -> Self {
        KvCache {
            layers: (0..layers).map(|_| None).collect(),
            reserve: capacity,
            key_mask: vec![Vec::new(); batch],
            next_position: vec![0; batch],
        }
    }

    /// Number of cached slots (the padded sequence length so far).
    pub fn len(&self) -> usize {
        self.key_mask.first().map_or(0, Vec::len)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.key_mask.len()
    }

    /// Writes layer `i`'s new keys and values (`[batch, kv_heads, t, head_dim]`) at slots
    /// `past..past + t` and returns views of slots `0..past + t`.
    fn append(
        &mut self,
        i: usize,
        past: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let total = past + k.dim(2)?;
        let (k, v) = (k.contiguous()?, v.contiguous()?);
        let buffers = match self.layers[i].take() {
            Some((kb, vb)) if kb.dim(2)? >= total => (kb, vb),
            old => {
                let capacity = total
                    .max(self.reserve)
                    .max(2 * old.as_ref().map_or(0, |(kb, _)| kb.dim(2).unwrap_or(0)));
                let grown = |like: &Tensor, old: Option<&Tensor>| -> Result<Tensor> {
                    let (b, h, _, d) = like.dims4()?;
                    let buffer = Tensor::zeros((b, h, capacity, d), like.dtype(), like.device())?;
                    if let Some(old) = old.filter(|_| past > 0) {
                        buffer.slice_set(&old.narrow(2, 0, past)?.contiguous()?, 2, 0)?;
                    }
                    Ok(buffer)
                };
                (
                    grown(&k, old.as_ref().map(|(kb, _)| kb))?,
                    grown(&v, old.as_ref().map(|(_, vb)| vb))?,
                )
            }
        };
        buffers.0.slice_set(&k, 2, past)?;
        buffers.1.slice_set(&v, 2, past)?;
        let views = (
            buffers.0.narrow(2, 0, total)?,
            buffers.1.narrow(2, 0, total)?,
        );
        self.layers[i] = Some(buffers);
        Ok(views)
    }
}

impl CausalLm {
    /// An empty cache for `batch` rows.
    pub fn new_cache(&self, batch: usize) -> KvCache {
        KvCache::new(batch, self.layers().len())
    }

    /// An empty cache for `batch` rows with room for `capacity` slots from the start.
    pub fn new_cache_with_capacity(&self, batch: usize, capacity: usize) -> KvCache {
        KvCache::with_capacity(batch, self.layers().len(), capacity)
    }

    /// Runs `input_ids` (`[batch, t]`) after what `cache` holds and appends their keys/values.
    /// `step_mask` (`batch × t`) marks real tokens (1) and padding (0). Returns logits
    /// `[batch, t, vocab]`. Without gradients: decoding never trains.
    pub fn forward_cached(
        &self,
        input_ids: &Tensor,
        step_mask: &[Vec<u32>],
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let x = self.trunk_cached(input_ids, step_mask, cache)?;
        let (_, logits) = self.head(&x)?;
        Ok(logits.detach().to_dtype(DType::F32)?)
    }

    /// As [`CausalLm::forward_cached`], but only the last position's logits, `[batch, vocab]`:
    /// all that decoding samples from, so a prompt's other positions skip the LM head (at
    /// SmolLM2's 49,152-entry vocabulary, as many multiply-adds as 1.6 of its 30 layers each).
    pub fn forward_cached_last(
        &self,
        input_ids: &Tensor,
        step_mask: &[Vec<u32>],
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let x = self.trunk_cached(input_ids, step_mask, cache)?;
        let last = x.narrow(1, x.dim(1)? - 1, 1)?.contiguous()?;
        let (_, logits) = self.head(&last)?;
        Ok(logits.squeeze(1)?.detach().to_dtype(DType::F32)?)
    }

    /// The decoder layers over `input_ids` after the cache: the last hidden states before the
    /// final norm, `[batch, t, d]`.
    fn trunk_cached(
        &self,
        input_ids: &Tensor,
        step_mask: &[Vec<u32>],
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        if cache.batch() != b || step_mask.len() != b || step_mask.iter().any(|r| r.len() != t) {
            return Err(Error::Config(format!(
                "forward_cached: cache for {} rows, ids {:?}, mask {} rows",
                cache.batch(),
                input_ids.dims(),
                step_mask.len()
            )));
        }
        let past = cache.len();
        // Positions: count of real tokens before each slot in its row.
        let mut positions = Vec::with_capacity(b * t);
        for (row, mask) in step_mask.iter().enumerate() {
            let mut next = cache.next_position[row];
            for &m in mask {
                // Padding slots are masked everywhere, so their position is irrelevant; use 0.
                positions.push(if m == 0 { 0 } else { next });
                next += u32::from(m != 0);
            }
            cache.next_position[row] = next;
            cache.key_mask[row].extend_from_slice(mask);
        }
        let max_pos = *positions.iter().max().unwrap_or(&0) as usize;
        if max_pos >= self.rotary().max_positions() {
            return Err(Error::Config(format!(
                "position {max_pos} exceeds the model's max_position_embeddings ({})",
                self.rotary().max_positions()
            )));
        }
        let device = self.device();
        let positions = Tensor::from_vec(positions, (b, t), device)?;
        let total = past + t;
        let mask_for = |window: Option<usize>| -> Result<Tensor> {
            let mut bias = vec![-1.0e30f32; b * t * total];
            for (row, keys) in cache.key_mask.iter().enumerate() {
                for q in 0..t {
                    let q_slot = past + q;
                    let lo = window.map_or(0, |w| (q_slot + 1).saturating_sub(w));
                    for (k, &real) in keys.iter().enumerate().take(q_slot + 1).skip(lo) {
                        if real != 0 {
                            bias[(row * t + q) * total + k] = 0.0;
                        }
                    }
                }
            }
            Ok(Tensor::from_vec(bias, (b, 1, t, total), device)?.to_dtype(self.dtype())?)
        };
        let full_mask = mask_for(None)?;
        let sliding_mask = match self.config().sliding_window {
            Some(w) if self.config().layer_types.contains(&AttentionKind::Sliding) => {
                Some(mask_for(Some(w))?)
            }
            _ => None,
        };
        let mut x = self.embed(&input_ids.detach())?.detach();
        for (i, layer) in self.layers().iter().enumerate() {
            let attn = layer.attention();
            let (q, k, v) = attn.project_at(&layer.input_norm(&x)?, self.rotary(), &positions)?;
            let (k, v) = cache.append(i, past, &k.detach(), &v.detach())?;
            let mask = match (attn.kind(), &sliding_mask) {
                (AttentionKind::Sliding, Some(m)) => m,
                _ => &full_mask,
            };
            let out = attn.attend(&q, &k, &v, mask)?;
            x = layer.attention_residual(&x, &out)?;
            x = layer.mlp_block(&x)?.detach();
        }
        Ok(x)
    }
}
