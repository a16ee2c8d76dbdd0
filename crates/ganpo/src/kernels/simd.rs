//! Element-wise loops compiled for the widest vector instruction set of the CPU that runs them.
//!
//! The portable x86-64 target has SSE2 only: 4 f32 lanes. `-C target-cpu=native` would widen every
//! loop but make the binary machine-specific. Instead the hot element-wise loops (exact GELU, the
//! dropout masks' hashing) run inside [`pulp`]'s dispatch (the crate `gemm` already uses for its
//! kernels), which detects AVX-512 or AVX2 + FMA once and runs the loop compiled for it. Rust
//! never contracts `a · b + c` into a fused multiply-add on its own, so every instruction set
//! computes bit-identical results.

/// Runs `f` compiled for the widest available instruction set (AVX-512, AVX2 + FMA, or the
/// baseline). Call it around a whole loop: the loop body is what gets vectorized.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}
