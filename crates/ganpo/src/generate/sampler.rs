//! Next-token selection: greedy, or sampling with temperature, top-k and top-p (nucleus), applied
//! in that order as transformers' logits warpers do. Seeded and deterministic.

use std::cmp::Ordering;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::kernels::{simd, vexp};
use crate::{Error, Result};

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f64,
    /// Keep only the k most likely tokens (None or 0 = off).
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (None or 1.0 = off).
    pub top_p: Option<f64>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 0.0,
            top_k: None,
            top_p: None,
        }
    }
}

impl SamplingConfig {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self::default()
    }

    /// Checks the values are usable.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Config(format!(
                "temperature must be ≥ 0, got {}",
                self.temperature
            )));
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            return Err(Error::Config(format!("top_p must be in (0, 1], got {p}")));
        }
        Ok(())
    }

    /// Whether this is greedy decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// Index of the largest logit (the first one on ties, as `torch.argmax`).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Picks the next token from one row of logits.
///
/// Tokens are visited from most to least likely (ties in vocabulary order), as a full sort would
/// give them, but only as far as the draw needs: the sorted prefix is built in chunks by
/// selection ([`slice::select_nth_unstable_by`]), so a draw costs O(vocabulary) instead of a
/// 49,152-entry sort per row and step. The distribution, and the token each random number maps
/// to, are those of sorting everything first.
pub fn sample(logits: &[f32], config: &SamplingConfig, rng: &mut ChaCha8Rng) -> u32 {
    if config.is_greedy() {
        return argmax(logits);
    }
    let t = config.temperature as f32;
    let mut candidates: Vec<Scored> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, x / t))
        .collect();
    if let Some(k) = config.top_k.filter(|&k| k > 0 && k < candidates.len()) {
        candidates.select_nth_unstable_by(k - 1, most_likely_first);
        candidates.truncate(k);
    }
    let max = candidates
        .iter()
        .map(|&(_, x)| x)
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sorted = SortedPrefix::new(&mut candidates, max - HEAD_WINDOW);
    let weight = |x: f32| ((x - max) as f64).exp();
    // The head (nearly all the mass) in f64 as each visited token's probability is; the tail's
    // weights (each below e⁻²⁰ of the top one's) with a vectorized f32 `exp`, which changes the
    // total by at most ~10⁻¹¹ of itself and saves 49,152 scalar `exp` calls per row and step.
    let (head, tail) = sorted.head_and_tail();
    let total: f64 = head.iter().map(|&(_, x)| weight(x)).sum::<f64>() + tail_weight(tail, max);
    // With top-p, keep the smallest most-likely prefix whose probability reaches top_p (at least
    // one token) and renormalize over it.
    let (kept, mass) = match config.top_p.filter(|&p| p < 1.0) {
        Some(top_p) => {
            // The running sum is the kept prefix's mass, added in the same order.
            let mut cumulative = 0.0;
            let mut keep = 0;
            while let Some((_, x)) = sorted.get(keep) {
                cumulative += weight(x) / total;
                keep += 1;
                if cumulative >= top_p {
                    break;
                }
            }
            (keep, Some(cumulative))
        }
        None => (sorted.len(), None),
    };
    let probability = |x: f32| {
        let p = weight(x) / total;
        mass.map_or(p, |m| p / m)
    };
    let mut u: f64 = rng.random::<f64>();
    for i in 0..kept {
        let Some((token, x)) = sorted.get(i) else {
            break;
        };
        let p = probability(x);
        if u < p {
            return token;
        }
        u -= p;
    }
    // Rounding left `u` past the last kept token.
    sorted
        .get(kept.saturating_sub(1))
        .map_or(0, |(token, _)| token)
}

/// Tokens within this many (tempered) logits of the most likely one form the head, ordered first:
/// beyond it a token's weight is below e⁻²⁰ ≈ 2·10⁻⁹ of the top one's, so a draw almost never
/// reads past them, and their weights can be summed in f32.
const HEAD_WINDOW: f32 = 20.0;

/// `Σ exp(x − max)` over `tail` with [`vexp::exp`] in independent lanes (vectorized), in f64.
fn tail_weight(tail: &[Scored], max: f32) -> f64 {
    const LANES: usize = 8;
    simd::vectorized(|| {
        let mut lanes = [0f64; LANES];
        let mut chunks = tail.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (s, &(_, x)) in lanes.iter_mut().zip(chunk) {
                *s += f64::from(vexp::exp(x - max));
            }
        }
        let rest: f64 = chunks
            .remainder()
            .iter()
            .map(|&(_, x)| f64::from(vexp::exp(x - max)))
            .sum();
        lanes.iter().sum::<f64>() + rest
    })
}

/// A token and its tempered logit.
type Scored = (u32, f32);

/// Descending by scaled logit, ties in vocabulary order.
fn most_likely_first(a: &Scored, b: &Scored) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Candidates put in [`most_likely_first`] order lazily: `items[..sorted]` is sorted and every
/// item there precedes every item after it.
struct SortedPrefix<'a> {
    items: &'a mut [Scored],
    sorted: usize,
    /// How many candidates [`SortedPrefix::new`] put in front.
    head: usize,
}

impl<'a> SortedPrefix<'a> {
    /// The first chunk sorted on demand; later chunks double.
    const FIRST_CHUNK: usize = 64;

    /// Starts with every candidate at or above `head` moved to the front (one partitioning
    /// pass): they precede all the others, so the sorted order is built from them first, and a
    /// selection only ever runs over them until the draw reads past them.
    fn new(items: &'a mut [Scored], head: f32) -> Self {
        let mut front = 0;
        for i in 0..items.len() {
            if items[i].1 >= head {
                items.swap(front, i);
                front += 1;
            }
        }
        SortedPrefix {
            items,
            sorted: 0,
            head: front,
        }
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    /// The head put in front by [`SortedPrefix::new`], and the rest (each in no particular
    /// order), for sums that need every candidate.
    fn head_and_tail(&self) -> (&[Scored], &[Scored]) {
        self.items.split_at(self.head)
    }

    /// The `i`-th most likely candidate.
    fn get(&mut self, i: usize) -> Option<Scored> {
        while i >= self.sorted && self.sorted < self.items.len() {
            // The unsorted candidates that precede all others: the rest of the head, then the tail.
            let bound = if self.sorted < self.head {
                self.head
            } else {
                self.items.len()
            };
            let rest = &mut self.items[self.sorted..bound];
            let chunk = Self::FIRST_CHUNK.max(self.sorted).min(rest.len());
            if chunk < rest.len() {
                rest.select_nth_unstable_by(chunk - 1, most_likely_first);
            }
            rest[..chunk].sort_unstable_by(most_likely_first);
            self.sorted += chunk;
        }
        self.items.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the head threshold (none, some or all candidates in front), every position of
    /// the lazily sorted prefix is the full sort's.
    #[test]
    fn the_lazy_prefix_is_the_full_sort_for_any_head() {
        let mut state = 7u64;
        let items: Vec<Scored> = (0..3000u32)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                // Quarter steps, so that ties occur.
                (i, ((state >> 40) % 160) as f32 / 4.0 - 20.0)
            })
            .collect();
        let mut expected = items.clone();
        expected.sort_by(most_likely_first);
        for head in [f32::INFINITY, 15.0, 0.0, -5.25, f32::NEG_INFINITY] {
            let mut work = items.clone();
            let mut sorted = SortedPrefix::new(&mut work, head);
            // In a scattered order, so later chunks are sorted on demand between reads.
            for i in (0..items.len()).step_by(7).chain(0..items.len()) {
                assert_eq!(
                    sorted.get(i),
                    Some(expected[i]),
                    "head {head}, position {i}"
                );
            }
            assert_eq!(sorted.get(items.len()), None);
        }
    }
}
