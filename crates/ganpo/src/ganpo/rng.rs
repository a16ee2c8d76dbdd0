//! Seeded, portable random numbers for the discriminator: initial weights and dropout masks.
//!
//! Both use SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
//! OOPSLA 2014): a 64-bit counter advanced by a fixed odd constant and a bijective finalizer. Its
//! output at position `i` is a pure function of `(state, i)`, so dropout masks are generated in
//! parallel with identical results on any thread count, and the whole dropout state is two integers
//! that go into checkpoints. Nothing here touches a global RNG.

use std::mem::MaybeUninit;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// SplitMix64's increment (the odd integer closest to 2⁶⁴/φ).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output finalizer (variant 13 of Stafford's mix).
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in `[0, 1)` from 53 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A sequential SplitMix64 stream, used once to draw a fresh discriminator's initial tensors.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A stream determined by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// Uniform on `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Standard normal (Box–Muller, cosine branch).
    pub fn normal(&mut self) -> f64 {
        // 1 − u lies in (0, 1], so the logarithm is finite.
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// The dropout mask generator of one discriminator: a seed and the number of masks drawn so far.
///
/// Mask `k` uses the SplitMix64 stream that starts at `mix(seed ⊕ mix(k·γ))`; element `i` of the mask
/// is that stream's `i`-th output. Save and restore this struct to resume training bit-exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropoutRng {
    /// The seed fixed at construction.
    pub seed: u64,
    /// How many masks have been drawn.
    pub draws: u64,
}

impl DropoutRng {
    /// A generator that has drawn nothing yet.
    pub fn new(seed: u64) -> Self {
        DropoutRng { seed, draws: 0 }
    }

    /// Draws the next keep-mask of `len` elements: each is 1 with probability `1 − p`, else 0.
    pub fn keep_mask(&mut self, len: usize, p: f64) -> Vec<u8> {
        self.draws = self.draws.wrapping_add(1);
        self.keep_factors(self.draws, len, p, 1.0)
            .into_iter()
            .map(|f| u8::from(f != 0.0))
            .collect()
    }

    /// Mask number `draw` of `len` elements as factors (see [`DropoutRng::fill_keep_factors`]).
    pub(crate) fn keep_factors(&self, draw: u64, len: usize, p: f64, keep: f32) -> Vec<f32> {
        let mut out = crate::kernels::buffer::uninit(len);
        self.fill_keep_factors(draw, &mut out, p, keep);
        // SAFETY: `fill_keep_factors` writes every slot.
        unsafe { crate::kernels::buffer::assume_init(out) }
    }

    /// Writes mask number `draw` (1 for the first mask drawn after [`DropoutRng::new`]) into `out`
    /// as factors: `keep` where the mask keeps an element (probability `1 − p`), 0 elsewhere. Does
    /// not advance the generator: the caller owns the numbering (see `ganpo::dropout`). Writes
    /// every slot of `out`.
    pub(crate) fn fill_keep_factors(
        &self,
        draw: u64,
        out: &mut [MaybeUninit<f32>],
        p: f64,
        keep: f32,
    ) {
        let start = mix(self.seed ^ mix(draw.wrapping_mul(GAMMA)));
        // `unit(bits) ≥ p` ⟺ `bits >> 11 ≥ ⌈p · 2⁵³⌉`: the same decision in integers (both sides
        // are exact), which keeps the loop free of float conversions.
        let threshold = (p.clamp(0.0, 1.0) * (1u64 << 53) as f64).ceil() as u64;
        const CHUNK: usize = 1 << 16;
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let first = (c * CHUNK) as u64;
                // With AVX-512 the 64-bit multiplies of the hash vectorize too.
                crate::kernels::simd::vectorized(
                    #[inline(always)]
                    || {
                        for (j, m) in chunk.iter_mut().enumerate() {
                            let i = first + j as u64;
                            let bits =
                                mix(start.wrapping_add(i.wrapping_add(1).wrapping_mul(GAMMA)));
                            m.write(if bits >> 11 >= threshold { keep } else { 0.0 });
                        }
                    },
                )
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The integer threshold decides exactly as `unit(bits) ≥ p` in f64 does.
    #[test]
    fn keep_factors_follow_the_uniform_draws() {
        let rng = DropoutRng::new(11);
        for p in [0.0, 1e-9, 0.1, 0.5, 0.999_999, 1.0] {
            let out = rng.keep_factors(3, 70_000, p, 2.5);
            let start = mix(rng.seed ^ mix(3u64.wrapping_mul(GAMMA)));
            for (i, &f) in out.iter().enumerate() {
                let bits = mix(start.wrapping_add((i as u64 + 1).wrapping_mul(GAMMA)));
                let want = if unit(bits) >= p { 2.5 } else { 0.0 };
                assert_eq!(f, want, "p {p}, element {i}");
            }
        }
    }
}
