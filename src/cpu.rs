//! CPU floating-point setup: flush denormals to zero on every thread that computes.
//!
//! Random-init and early-training activations underflow into subnormal floats, which made candle's
//! f32 backward about 6x slower on x86 (see `docs/design.md`). Setting FTZ|DAZ in MXCSR avoids it.

/// Sets flush-to-zero and denormals-are-zero for the calling thread (x86-64 only; no-op elsewhere).
pub fn flush_denormals_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reading and writing MXCSR only changes this thread's floating-point mode; FTZ (bit 15)
    // and DAZ (bit 6) are supported by every x86-64 CPU with SSE2/SSE3, which x86-64 guarantees.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

/// Sets flush-to-zero on the calling thread and on every thread of the global rayon pool that
/// candle's CPU kernels use. Call once at start-up, before any tensor work.
pub fn init_compute_threads() {
    flush_denormals_on_this_thread();
    // `broadcast` runs the closure once on every worker thread of the global pool.
    rayon::broadcast(|_| flush_denormals_on_this_thread());
}

/// Sets how many threads rayon and candle's CPU kernels use: both read `RAYON_NUM_THREADS` when
/// their pools start, so this has no effect once they have.
///
/// # Safety
/// It writes the process environment, so no other thread may exist yet (call it first in `main`).
pub unsafe fn set_compute_threads(n: usize) {
    // SAFETY: the caller guarantees that this process has no other thread.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
}
