//! `exp` and the row maximum and exponential sum of the softmax-style kernels, written so that the
//! compiler vectorizes the loops that use them.
//!
//! libm's `expf` is a scalar call, and it takes a slow error-reporting path for every argument
//! whose result underflows, which is every masked attention score. A fold with `f32::max` or a
//! running f64 sum is one sequential dependency chain the compiler may not reorder. In a profile of
//! the reference forward pass, `expf` and such a `max` fold took 16 % of the samples, most of them in
//! the LM head's log-sum-exp over the vocabulary. Here `exp` is branch-free (Cephes' `expf`
//! polynomial; written by hand because no maintained crate offers a vectorizable f32 `exp` on
//! stable Rust), and the reductions keep independent lanes.

/// Independent accumulators per reduction: enough for the widest vectors, in any instruction set.
pub(super) const LANES: usize = 16;

/// `eˣ` within 2 ulp for `−87.33 ≤ x ≤ ln(f32::MAX)` (down to the smallest argument with a normal
/// f32 result); exactly 0 below, where `expf` is subnormal or 0 (and flush-to-zero makes it 0
/// anyway); `+∞` above; NaN for NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that `n · LN2_HI` is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 · 2²³ rounds to an integer in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LO: f32 = -87.33;
    const HI: f32 = 88.722_83; // ln(f32::MAX), rounded down
    let xc = x.clamp(LO, HI);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let exponent = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32); // −126..=128
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    // 2ⁿ as two normal factors, since 2¹²⁸ itself is not an f32.
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    let half = exponent >> 1;
    let y = (p * r * r + r + 1.0) * pow2(half) * pow2(exponent - half);
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        y
    }
}

/// The largest element of `row` (−∞ for an empty row).
#[inline(always)]
pub(crate) fn max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let mut max = f32::NEG_INFINITY;
    for &x in lanes.iter().chain(chunks.remainder()) {
        max = if x > max { x } else { max };
    }
    max
}

/// `Σ exp(x − shift)` over `row`, accumulated in f64.
#[inline(always)]
pub(crate) fn sum_exp(row: &[f32], shift: f32) -> f64 {
    let mut lanes = [0f64; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (s, &x) in lanes.iter_mut().zip(chunk) {
            *s += f64::from(exp(x - shift));
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| f64::from(exp(x - shift)))
        .sum();
    lanes.iter().sum::<f64>() + tail
}

/// Replaces every `x` of `row` by `exp(x − shift)` and returns their sum (f32, in lanes).
#[inline(always)]
pub(crate) fn exp_shifted_in_place(row: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, x) in lanes.iter_mut().zip(chunk) {
            *x = exp(*x - shift);
            *s += *x;
        }
    }
    let mut tail = 0f32;
    for x in chunks.into_remainder() {
        *x = exp(*x - shift);
        tail += *x;
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_the_f64_exponential() {
        let mut worst = 0f64;
        // Every 97th f32 bit pattern from 0 up to ln(f32::MAX) and down to −87.33, and a grid near 0.
        let positives = (0u32..)
            .map(|i| f32::from_bits(i * 97))
            .take_while(|&x| x <= 88.722_83);
        let negatives = (0u32..)
            .map(|i| -f32::from_bits(i * 97))
            .take_while(|&x| x >= -87.33);
        let grid = (-100_000..=100_000).map(|i| i as f32 * 1e-5);
        for x in positives.chain(negatives).chain(grid) {
            let want = f64::from(x).exp();
            let ulp = f64::from(f32::EPSILON) * want;
            let err = (f64::from(exp(x)) - want).abs() / ulp;
            worst = worst.max(err);
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
    }

    #[test]
    fn exp_saturates_like_the_f32_exponential() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(-87.5), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(88.722_83).is_finite());
    }

    #[test]
    fn reductions_match_sequential_ones() {
        for n in [0, 1, 15, 16, 17, 100, 1000] {
            let row: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 211) as f32 * 0.37 - 30.0)
                .collect();
            let want_max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(max(&row), want_max, "max of {n}");
            let want_sum: f64 = row.iter().map(|&x| (f64::from(x) - 2.0).exp()).sum();
            let got = sum_exp(&row, 2.0);
            assert!(
                (got - want_sum).abs() <= 1e-6 * want_sum.max(1e-30),
                "sum_exp of {n}"
            );
            let mut out = row.clone();
            let s = exp_shifted_in_place(&mut out, 2.0);
            assert!(
                (f64::from(s) - want_sum).abs() <= 1e-5 * want_sum.max(1e-30),
                "sum of {n}"
            );
            for (o, &x) in out.iter().zip(&row) {
                assert_eq!(*o, exp(x - 2.0));
            }
        }
    }
}
