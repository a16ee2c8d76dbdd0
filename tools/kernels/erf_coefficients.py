"""Fits the polynomial coefficients of `ganpo`'s branch-free f32 `erf`
(crates/ganpo/src/kernels/verf.rs).

Two pieces, both evaluated for every argument and selected per lane, so the kernel has no branch:

* |x| < CUT: erf(x) = x · P(x²), P of degree DEG_P, fitted for relative error;
* CUT ≤ |x| < SAT: erf(|x|) = 1 − exp(−x²) · Q(|x|), Q ≈ erfcx(x) = eˣ² erfc(x) of degree DEG_Q,
  fitted for relative error (the absolute error of erf is then below e^(−x²) Q times it);
* |x| ≥ SAT: ±1 (erf rounds to 1 in f32 from about 3.92 on).

Near-minimax fits by Lawson's iteratively reweighted least squares on Chebyshev nodes, against
Python's `math.erf` / `math.erfc` (double precision). Needs only NumPy. Prints the Rust constants
and the worst error of the f32 evaluation over a dense sample, in units of the f32 spacing at 1.

    python tools/kernels/erf_coefficients.py
"""

import math

import numpy as np

CUT = 0.875
SAT = 3.92
DEG_P = 6
DEG_Q = 10


def lawson(basis, target, weight, iters=60):
    """Coefficients c minimising max |weight · (basis @ c − target)| (approximately)."""
    w = np.ones(len(target))
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(basis * (sw * weight)[:, None], sw * weight * target, rcond=None)
        err = np.abs(weight * (basis @ c - target))
        w = w * err
        w /= w.sum()
    return c


def chebyshev_nodes(a, b, n):
    k = np.arange(n)
    return 0.5 * (a + b) + 0.5 * (b - a) * np.cos(np.pi * (k + 0.5) / n)


def fit():
    xs = chebyshev_nodes(0.0, CUT, 4000)
    p_target = np.array([math.erf(x) / x if x > 0 else 2 / math.sqrt(math.pi) for x in xs])
    p_basis = np.stack([(xs * xs) ** k for k in range(DEG_P + 1)], axis=1)
    p = lawson(p_basis, p_target, 1.0 / p_target)

    xs = chebyshev_nodes(CUT, SAT, 4000)
    q_target = np.array([math.erfc(x) * math.exp(x * x) for x in xs])
    q_basis = np.stack([xs**k for k in range(DEG_Q + 1)], axis=1)
    q = lawson(q_basis, q_target, 1.0 / q_target)
    return p, q


def horner32(coeffs, t):
    acc = np.full_like(t, np.float32(coeffs[-1]))
    for c in coeffs[-2::-1]:
        acc = (acc * t + np.float32(c)).astype(np.float32)
    return acc


def exp32(x):
    # Stand-in for the kernel's 2-ulp exp: correctly rounded f32 exp.
    return np.exp(x.astype(np.float64)).astype(np.float32)


def erf32(x, p, q):
    x = x.astype(np.float32)
    a = np.minimum(np.abs(x), np.float32(SAT))
    small = a * horner32(p, a * a)
    large = np.float32(1) - exp32(-a * a) * horner32(q, a)
    y = np.where(a < np.float32(CUT), small, large)
    y = np.where(a >= np.float32(SAT), np.float32(1), y)
    return np.copysign(y, x)


def main():
    p, q = fit()
    x = np.linspace(-5.0, 5.0, 2_000_001).astype(np.float32)
    exact = np.array([math.erf(float(v)) for v in x])
    err = np.abs(erf32(x, p, q).astype(np.float64) - exact)
    ulp1 = 2.0**-23
    print(f"// max |error| {err.max() / ulp1:.2f} × 2⁻²³ over [−5, 5]")
    small = np.abs(x) < CUT
    rel = np.abs(erf32(x[small], p, q) - exact[small]) / np.maximum(np.abs(exact[small]), 1e-30)
    print(f"// max relative error below {CUT}: {rel.max() / 2.0**-24:.2f} × 2⁻²⁴")
    print(f"const CUT: f32 = {CUT};")
    print(f"const SAT: f32 = {SAT};")
    two_over_sqrt_pi = np.float32(2 / math.sqrt(math.pi))
    print(f"// P[0] rounds to 2/√π in f32: {np.float32(p[0]) == two_over_sqrt_pi}")
    # The shortest decimal that round-trips each f32 coefficient.
    print("const P: [f32; %d] = [%s];" % (len(p), ", ".join(np.format_float_scientific(np.float32(c), unique=True) for c in p)))
    print("const Q: [f32; %d] = [%s];" % (len(q), ", ".join(np.format_float_scientific(np.float32(c), unique=True) for c in q)))


if __name__ == "__main__":
    main()
