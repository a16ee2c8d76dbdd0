//! Facts about this process read from the operating system: current and peak resident memory
//! (Linux `/proc`), used by the demo's report and by `ganpo bench`.

/// A `kB` field of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident set size of this process (Linux `VmHWM`), in MiB; `None` where the OS does not
/// report it.
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Current resident set size of this process (Linux `VmRSS`), in MiB; `None` where the OS does not
/// report it.
pub fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

/// Resets the peak-RSS counter to the current resident size (Linux ≥ 4.0), so that the next
/// [`peak_rss_mib`] covers only what runs after this call. Free allocator memory is handed back
/// first ([`crate::cpu::release_free_memory`]), else memory retained from earlier work would count.
/// A no-op elsewhere.
pub fn reset_peak_rss() {
    crate::cpu::release_free_memory();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
