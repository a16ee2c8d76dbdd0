//! `cpu::keep_freed_memory` really keeps freed memory under mimalloc (the `ganpo` binary's
//! allocator): a large buffer freed and allocated again must not page-fault in again.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Minor page faults of this process so far.
fn minor_faults() -> i64 {
    // SAFETY: `getrusage` writes only into the zeroed struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage.ru_minflt
    }
}

/// Page faults of allocating, filling and freeing a 64 MiB buffer (after one such round, so the
/// allocator has held that memory before). Fresh memory costs one fault per 4 KiB page, or per
/// 2 MiB where the kernel backs it with transparent huge pages..
fn faults_of_reallocation() -> i64 {
    const LEN: usize = 16 << 20; // f32s: 64 MiB, 16,384 pages of 4 KiB
    let fill = |v: f32| {
        let buffer = vec![v; LEN];
        std::hint::black_box(&buffer);
    };
    fill(1.0);
    let before = minor_faults();
    fill(2.0);
    minor_faults() - before
}

/// The allocator's options are process-wide: the tests take turns.
static ALLOCATOR_OPTIONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn freed_buffers_are_reused_without_page_faults() {
    let _turn = ALLOCATOR_OPTIONS.lock().unwrap_or_else(|e| e.into_inner());
    // MI_OPTION_PURGE_DELAY = 15 in mimalloc.h; 0 purges at once, so the buffer comes back from
    // the kernel: this shows the measurement can see purging at all.
    // SAFETY: `mi_option_set` only stores an option value.
    unsafe { libmimalloc_sys::mi_option_set(15, 0) };
    let purging = faults_of_reallocation();
    // 64 MiB is at least 32 faults even in 2 MiB transparent huge pages.
    assert!(
        purging >= 32,
        "with immediate purging a 64 MiB reallocation faulted only {purging} pages"
    );

    ganpo::cpu::keep_freed_memory();
    let kept = faults_of_reallocation();
    assert!(
        kept <= 2,
        "after keep_freed_memory a 64 MiB reallocation still faulted {kept} pages (purging {purging})"
    );
}

/// Resident memory of this process (Linux `VmRSS`), in KiB.
fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn release_free_memory_gives_retained_pages_back() {
    let _turn = ALLOCATOR_OPTIONS.lock().unwrap_or_else(|e| e.into_inner());
    ganpo::cpu::keep_freed_memory();
    const LEN: usize = 64 << 20; // f32s: 256 MiB
    let buffer = vec![1f32; LEN];
    std::hint::black_box(&buffer);
    drop(buffer);
    let kept = rss_kib();
    ganpo::cpu::release_free_memory();
    let released = rss_kib();
    assert!(
        kept - released >= 200 * 1024,
        "release_free_memory handed back only {} KiB of a freed 256 MiB buffer (RSS {kept} → {released} KiB)",
        kept - released
    );
    // Memory keeping is on again afterwards.
    let again = faults_of_reallocation();
    assert!(
        again <= 2,
        "after release_free_memory, reallocation faulted {again} pages"
    );
}
