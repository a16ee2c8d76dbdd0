//! Access to the raw CPU buffers of custom ops' inputs, with clear errors for the layouts the
//! kernels do not handle (they take contiguous f32 or u32 data only).

use candle_core::{CpuStorage, Layout};

/// The contiguous f32 slice of `s` described by `l`.
pub(crate) fn contiguous_f32<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("{what} must be f32")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

/// The contiguous u32 slice of `s` described by `l`.
pub(crate) fn contiguous_u32<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [u32]> {
    let CpuStorage::U32(data) = s else {
        candle_core::bail!("{what} must be u32")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

/// Fails unless the last dimension of `l` is `dim` (and the buffer holds whole rows).
pub(crate) fn rows_of(l: &Layout, dim: usize, what: &str) -> candle_core::Result<usize> {
    let n = l.shape().elem_count();
    match l.shape().dims().last() {
        Some(&last) if last == dim && dim > 0 => Ok(n / dim),
        _ => candle_core::bail!(
            "{what}: expected a last dimension of {dim}, got {:?}",
            l.shape()
        ),
    }
}
