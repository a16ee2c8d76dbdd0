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

/// Sets flush-to-zero on the calling thread, on every thread of the global rayon pool (matmuls,
/// our kernels) and on every worker of candle's barrier pool (its element-wise ops), and keeps
/// freed tensor buffers in the allocator (see [`keep_freed_memory`]). Call once at start-up, before
/// any tensor work.
pub fn init_compute_threads() {
    keep_freed_memory();
    flush_denormals_on_this_thread();
    // `broadcast` runs the closure once on every worker thread of the global pool.
    rayon::broadcast(|_| flush_denormals_on_this_thread());
    // `execute` runs the closure once on every barrier-pool worker and on this thread.
    candle_core::utils::barrier_pool().execute(|_| flush_denormals_on_this_thread());
}

/// Tells glibc's allocator to serve tensor-sized blocks (up to its 32 MiB maximum) from the heap
/// and not to hand freed memory back to the kernel at once. By default every block above 128 KiB
/// (raised dynamically, but only after frees) is a fresh `mmap`, so each new activation of a
/// training step page-faults its memory in again: ~15% of a step's time went to the kernel's
/// page clearing. No-op on other C libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator tuning parameters; called before heavy allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Hands the allocator's free memory back to the kernel (glibc `malloc_trim`), so a later peak
/// resident-set reading measures what is in use rather than what [`keep_freed_memory`] retained.
/// No-op on other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns unused heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
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
