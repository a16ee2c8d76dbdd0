//! Access to the raw CPU buffers that custom ops read (their inputs, constants they hold) and that
//! in-place ops write, with clear errors for the layouts the kernels do not handle (contiguous f32 or
//! u32 data only).

use candle_core::{CpuStorage, Layout, Storage, Tensor};

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

/// The contiguous, writable f32 slice of `s` described by `l` (for in-place ops).
pub(crate) fn contiguous_f32_mut<'a>(
    s: &'a mut CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("{what} must be f32")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&mut data[a..b]),
        None => candle_core::bail!("{what} must be contiguous"),
    }
}

/// Runs `f` on the contiguous f32 data of a tensor other than the op's inputs (a constant an op
/// holds, such as a frozen weight).
pub(crate) fn with_f32<R>(
    t: &Tensor,
    what: &str,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(contiguous_f32(s, layout, what)?),
        _ => candle_core::bail!("{what} must be on the CPU"),
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

/// Runs `f` on the contiguous f32 data of several CPU tensors at once (the constants an op holds,
/// such as a layer stack's weights). The tensors must not share storage with each other.
pub(crate) fn with_f32_all<R>(
    ts: &[Tensor],
    what: &str,
    f: impl FnOnce(&[&[f32]]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let guards: Vec<_> = ts.iter().map(Tensor::storage_and_layout).collect();
    let slices = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(s) => contiguous_f32(s, layout, what),
            _ => candle_core::bail!("{what} must be on the CPU"),
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    f(&slices)
}
