//! A branch-free f32 `erf`, so that the exact-GELU loops vectorize.
//!
//! candle's `erf_f32` is libm's `erff`: a scalar call with a branch per argument range. In a
//! profile of the discriminator update it made the GELU forward and backward 10 % of the samples.
//! Here both pieces of a two-piece approximation are evaluated for every argument and one is
//! selected, which the compiler turns into vector blends:
//!
//! - `|x| < 0.875`: `erf(x) = x · P(x²)`;
//! - `0.875 ≤ |x| < 3.92`: `erf(|x|) = 1 − e^(−x²) · Q(|x|)`, with `Q ≈ e^(x²) erfc(x)`;
//! - `|x| ≥ 3.92`: `±1` (where f32 `erf` rounds to 1).
//!
//! The coefficients are near-minimax fits made by `tools/kernels/erf_coefficients.py` (NumPy
//! against Python's `math.erf`), written by hand because no maintained crate offers a vectorizable
//! f32 `erf` on stable Rust. The tests below bound the error against f64 `erf`.

use super::vexp;

/// Below this magnitude the odd polynomial is used.
const CUT: f32 = 0.875;
/// From this magnitude on the result is ±1.
const SAT: f32 = 3.92;
/// `erf(x) / x` as a polynomial in `x²` on `[0, CUT)`.
const P: [f32; 7] = [
    std::f32::consts::FRAC_2_SQRT_PI, // the fit's value, to f32 precision
    -3.761_263_5e-1,
    1.128_373_3e-1,
    -2.686_158_6e-2,
    5.206_750_7e-3,
    -8.211_139e-4,
    8.675_532e-5,
];
/// `e^(x²) erfc(x)` as a polynomial in `x` on `[CUT, SAT)`.
const Q: [f32; 11] = [
    9.945_729e-1,
    -1.093_456_3,
    8.980_687e-1,
    -5.719_957e-1,
    2.815_203e-1,
    -1.051_380_26e-1,
    2.901_961_1e-2,
    -5.701_998_7e-3,
    7.512_633_5e-4,
    -5.932_352_4e-5,
    2.117_872e-6,
];

/// Horner's rule, lowest coefficient first.
#[inline(always)]
fn polynomial<const N: usize>(coefficients: &[f32; N], t: f32) -> f32 {
    let mut acc = coefficients[N - 1];
    for &c in coefficients[..N - 1].iter().rev() {
        acc = acc * t + c;
    }
    acc
}

/// `erf(x)` within 2⁻²² absolute error everywhere (measured: 1.1 · 2⁻²³) and within 2 ulp
/// relative error for `|x| < 0.875` (measured: 1.5); `±1` beyond `±3.92`; NaN for NaN.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs().min(SAT);
    let a2 = a * a;
    let small = a * polynomial(&P, a2);
    let large = 1.0 - vexp::exp(-a2) * polynomial(&Q, a);
    let y = if a < CUT { small } else { large };
    let y = if a >= SAT { 1.0 } else { y };
    // NaN: `min` returned SAT for it, so put the NaN back.
    let y = if x.is_nan() { x } else { y };
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 `erf` from the series `2/√π · e^(−x²) · Σₙ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))`, whose terms
    /// are all positive (no cancellation) and which converges for every x.
    fn erf64(x: f64) -> f64 {
        if x.abs() > 6.0 {
            return x.signum();
        }
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            sum += term;
        }
        std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp() * sum
    }

    #[test]
    fn erf_is_within_two_to_the_minus_22_of_the_f64_erf() {
        let mut worst_abs = 0f64;
        let mut worst_rel = 0f64;
        let grid = (-600_000..=600_000).map(|i| i as f32 * 1e-5);
        let patterns = (0u32..)
            .map(|i| f32::from_bits(i * 101))
            .take_while(|&x| x < 6.0);
        for x in grid.chain(patterns.clone()).chain(patterns.map(|x| -x)) {
            let want = erf64(f64::from(x));
            let got = f64::from(erf(x));
            worst_abs = worst_abs.max((got - want).abs());
            // (Subnormal arguments give subnormal results, whose precision is absolute.)
            if x.abs() < CUT && x.abs() >= 1e-30 {
                let ulp = f64::from(f32::EPSILON) * want.abs();
                worst_rel = worst_rel.max((got - want).abs() / ulp);
            }
        }
        assert!(
            worst_abs <= 2f64.powi(-22),
            "worst absolute error {worst_abs:e}"
        );
        assert!(worst_rel <= 2.0, "worst relative error {worst_rel} ulp");
    }

    #[test]
    fn erf_is_odd_saturates_and_keeps_nan() {
        assert_eq!(erf(0.0), 0.0);
        assert!(erf(-0.0).is_sign_negative());
        for x in [0.1f32, 0.874, 0.875, 1.7, 3.919, 3.92, 10.0] {
            assert_eq!(erf(-x), -erf(x));
        }
        assert_eq!(erf(3.92), 1.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
        // Monotone across the seam between the two pieces.
        let below = erf(CUT - 1e-6);
        let at = erf(CUT);
        assert!(below <= at, "{below} > {at}");
    }
}
