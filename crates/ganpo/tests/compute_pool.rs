//! `cpu::configure_compute_pools` makes the calling thread a worker of rayon's global pool, with
//! the requested thread count, and refuses a second start. A `harness = false` test: it needs to be
//! the process's first and only thread when it writes the environment.

use ganpo::cpu;
use rayon::prelude::*;

fn main() {
    assert_eq!(rayon::current_thread_index(), None, "not a worker before");
    // SAFETY: this is the only thread of the process; nothing has started a pool.
    unsafe { cpu::configure_compute_pools(Some(2)) }.expect("the pool starts");
    assert_eq!(
        rayon::current_num_threads(),
        2,
        "the requested thread count"
    );
    assert_eq!(
        rayon::current_thread_index(),
        Some(0),
        "the main thread is worker 0 of the global pool"
    );
    // Parallel work issued from the main thread runs, and both workers take part in it.
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    rayon::broadcast(|ctx| seen.lock().unwrap().insert(ctx.index()));
    assert_eq!(seen.into_inner().unwrap().len(), 2);
    let sum: u64 = (0..1_000u64).into_par_iter().sum();
    assert_eq!(sum, 499_500);
    cpu::init_compute_threads();
    // A second start is an error, not a silent no-op.
    // SAFETY: with no thread count and the spin limit already set by the first call, this call
    // writes nothing to the environment, so the pool's other worker does not matter.
    assert!(std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_some());
    let again = unsafe { cpu::configure_compute_pools(None) };
    let message = again.expect_err("the pool was already started").to_string();
    assert!(message.contains("compute thread pool"), "{message}");
    println!("compute_pool: ok");
}
