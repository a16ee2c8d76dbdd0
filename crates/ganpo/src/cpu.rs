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

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_t`, mimalloc 3.x `mimalloc.h`;
/// `libmimalloc-sys` does not export it). `tests/allocator.rs` checks that [`keep_freed_memory`]'s
/// value stops purging, so a wrong index fails there.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The purge delay [`keep_freed_memory`] sets: about 11 days (mimalloc multiplies it by 10 for
/// arenas), i.e. never within a run. Not −1: under −1 mimalloc does not even record freed ranges
/// as purgeable, so [`release_free_memory`]'s forced collection could not hand them back.
const KEEP_PURGE_DELAY_MS: std::ffi::c_long = 1_000_000_000;

/// Keeps freed tensor buffers in the allocator for reuse instead of handing them back to the
/// kernel. A training step frees and reallocates gigabytes of activations; every buffer the kernel
/// takes back page-faults in again, zeroed, on its next use, and its unmapping flushes the TLBs of
/// the other threads. That was ~25 % of a step's samples in the kernel's page clearing (see
/// `docs/performance.md`). The `ganpo` binary allocates with mimalloc, told here never to purge
/// (memory stays at the run's high-water mark until [`release_free_memory`], as PyTorch's caching allocators do); glibc's malloc,
/// for library users who keep it, is told to serve blocks up to its 32 MiB maximum from the heap
/// and not to trim it.
pub fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores an option value; it is thread-safe and takes effect on
    // later frees.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, KEEP_PURGE_DELAY_MS) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator tuning parameters; called before heavy allocation.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Hands the allocator's free memory back to the kernel (glibc `malloc_trim`, mimalloc
/// `mi_collect`), so that a later peak resident-set reading measures what is in use. Under
/// [`keep_freed_memory`] mimalloc purges only when forced, as here, so the pages it retained from
/// earlier work leave the resident set too; without that, the peak of a workload measured after a
/// larger one would read the larger one's peak.
pub fn release_free_memory() {
    // SAFETY: `mi_option_get`/`mi_option_set` only read and store an option value; `mi_collect`
    // only frees and purges the allocator's own unused pages.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns unused heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many times candle's barrier-pool workers spin after an element-wise op before parking
/// (candle's default is 25,000). Between candle's ops the compute runs on rayon's pool, and on a
/// machine with as many cores as compute threads a spinning barrier-pool worker takes a core from
/// it: on a 2-vCPU Zen 5 VM, 1,000 made the DPO step ~5 % faster (7.36 / 7.41 → 6.99 / 7.01 s,
/// alternated) and the discriminator's generator term ~10 % (`docs/performance.md`).
pub const BARRIER_POOL_SPIN_LIMIT: u32 = 1_000;

/// Sets how many threads rayon and candle's CPU kernels use (`threads`, or their default: the
/// physical cores), and candle's barrier-pool spin limit ([`BARRIER_POOL_SPIN_LIMIT`]) unless
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` is already set; then starts rayon's global pool with the
/// calling thread as one of its workers.
///
/// All tensor work is issued from the main thread. As an outside thread, it hands every parallel
/// region (each matmul, each fused kernel) to the pool and sleeps until a worker wakes it; as a
/// worker, it runs part of the region itself and the other workers steal the rest. On a 2-vCPU
/// Zen 5 VM that made the GANPO discriminator update ~6 % faster (`docs/performance.md`).
///
/// # Errors
/// If rayon's global pool has already started (something ran a parallel iterator first).
///
/// # Safety
/// It writes the process environment, so no other thread may exist yet (call it first in `main`).
/// The calling thread stays a worker of the global pool for the life of the process: parallel
/// work that another thread hands to the pool while this one is not inside a rayon call waits
/// for the other workers (with `threads = 1`, for this thread).
pub unsafe fn configure_compute_pools(threads: Option<usize>) -> crate::Result<()> {
    // SAFETY (both writes): the caller guarantees that this process has no other thread.
    if let Some(n) = threads {
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        let limit = BARRIER_POOL_SPIN_LIMIT.to_string();
        unsafe { std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", limit) };
    }
    // The builder reads `RAYON_NUM_THREADS` when no count is given.
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .map_err(|e| crate::Error::Config(format!("starting the compute thread pool: {e}")))
}
