//! Output buffers that a kernel writes in full, allocated without the zero fill that `vec![0; n]`
//! performs (a serial `memset` of every output before the kernel overwrites it: ~2 % of a
//! discriminator update's samples, on the thread the other core waits for).
//!
//! A kernel takes [`uninit`] slots, writes each one (`MaybeUninit::write`), and only then turns
//! them into a `Vec<f32>` with [`assume_init`], whose safety contract is exactly that every slot was
//! written. Matrix products write theirs through [`super::gemm::matmul_new`].

use std::mem::{ManuallyDrop, MaybeUninit};

use rayon::prelude::*;

/// `len` f32 slots, not yet written.
pub(crate) fn uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: the capacity is at least `len`, and `MaybeUninit` slots need no initialization.
    unsafe { v.set_len(len) };
    v
}

/// The written slots as plain floats, without a copy.
///
/// # Safety
///
/// Every slot of `v` must have been written.
pub(crate) unsafe fn assume_init(v: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut v = ManuallyDrop::new(v);
    let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
    // SAFETY: `MaybeUninit<f32>` has `f32`'s size and alignment, so the allocation is valid for a
    // `Vec<f32>` of the same length and capacity; the caller guarantees the values are written,
    // and `ManuallyDrop` keeps the original from freeing the buffer.
    unsafe { Vec::from_raw_parts(ptr.cast::<f32>(), len, cap) }
}

/// A copy of `src`, written in parallel (`to_vec` is one thread's `memcpy`).
pub(crate) fn copy_par(src: &[f32]) -> Vec<f32> {
    let mut out = uninit(src.len());
    out.par_chunks_mut(1 << 14)
        .zip(src.par_chunks(1 << 14))
        .for_each(|(o, s)| {
            for (o, &x) in o.iter_mut().zip(s) {
                o.write(x);
            }
        });
    // SAFETY: the chunks cover `out` and each slot is written.
    unsafe { assume_init(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_slots_come_back_as_floats() {
        let mut v = uninit(1000);
        for (i, slot) in v.iter_mut().enumerate() {
            slot.write(i as f32 * 0.5);
        }
        // SAFETY: the loop wrote every slot.
        let v = unsafe { assume_init(v) };
        assert_eq!(v.len(), 1000);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32 * 0.5));
    }
}
