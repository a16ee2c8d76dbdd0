//! The preamble and epilogue that the custom ops share. A CPU op borrows its inputs' f32 data from
//! candle's storage ([`f32_inputs`], [`equal_f32_inputs`]; never a copy), with errors that name
//! the op and the input. A backward op that computes several gradients returns them one after
//! the other in one flat output (a `CustomOpN` returns one tensor: [`packed`]), and the forward
//! op's `bwd` splits that output into tensors of its inputs' shapes again ([`unpack`]; views, no
//! copy).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Shape, Tensor};

/// One input of a CPU op as `cpu_fwd` receives it, with its name for errors.
pub(crate) type Input<'a, 'l> = (&'a CpuStorage, &'l Layout, &'static str);

/// The contiguous f32 data of each input, borrowed from its storage. Fails, naming `op` and the
/// input (`fused-glu: up must be contiguous`), for another dtype or a layout with gaps.
pub(crate) fn f32_inputs<'a, const N: usize>(
    op: &str,
    inputs: [Input<'a, '_>; N],
) -> candle_core::Result<[&'a [f32]; N]> {
    let mut data = [&[][..]; N];
    for (slot, (s, l, what)) in data.iter_mut().zip(inputs) {
        let CpuStorage::F32(all) = s else {
            candle_core::bail!("{op}: {what} must be f32, not {:?}", s.dtype())
        };
        let Some((start, end)) = l.contiguous_offsets() else {
            candle_core::bail!("{op}: {what} must be contiguous")
        };
        *slot = &all[start..end];
    }
    Ok(data)
}

/// [`f32_inputs`] for inputs that must hold the same number of elements (an element-wise op and
/// its gradient); the error lists every input's count.
pub(crate) fn equal_f32_inputs<'a, const N: usize>(
    op: &str,
    inputs: [Input<'a, '_>; N],
) -> candle_core::Result<[&'a [f32]; N]> {
    let names = inputs.map(|(_, _, what)| what);
    let data = f32_inputs(op, inputs)?;
    if data.iter().any(|d| d.len() != data[0].len()) {
        let counts: Vec<String> = names
            .iter()
            .zip(&data)
            .map(|(what, d)| format!("{what} {}", d.len()))
            .collect();
        candle_core::bail!("{op}: element counts differ ({})", counts.join(", "))
    }
    Ok(data)
}

/// A CPU op's flat f32 output, `[len]`: several results written one after the other.
pub(crate) fn packed(data: Vec<f32>) -> (CpuStorage, Shape) {
    let len = data.len();
    (CpuStorage::F32(data), Shape::from(len))
}

/// The consecutive parts of the flat tensor `packed`, reshaped to `shapes` (views of it: `narrow`
/// then `reshape` of a contiguous range, no copy). Fails, naming `op`, unless the parts cover
/// `packed` exactly.
pub(crate) fn unpack<const N: usize>(
    op: &str,
    packed: &Tensor,
    shapes: [&Shape; N],
) -> candle_core::Result<[Tensor; N]> {
    let total: usize = shapes.iter().map(|s| s.elem_count()).sum();
    if packed.dims() != [total] {
        candle_core::bail!(
            "{op}: packed output {:?} does not hold parts {shapes:?}",
            packed.dims()
        )
    }
    let mut start = 0;
    let mut parts = Vec::with_capacity(N);
    for shape in shapes {
        let n = shape.elem_count();
        parts.push(packed.narrow(0, start, n)?.reshape(shape)?);
        start += n;
    }
    parts
        .try_into()
        .map_err(|_| candle_core::Error::Msg(format!("{op}: unpacking lost a part")))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Storage};

    use super::*;

    #[test]
    fn inputs_are_borrowed_and_errors_name_op_and_input() -> candle_core::Result<()> {
        let t = Tensor::arange(0f32, 12., &Device::Cpu)?.reshape((3, 4))?;
        let (storage, layout) = t.storage_and_layout();
        let Storage::Cpu(s) = &*storage else {
            candle_core::bail!("not on the CPU")
        };
        let [a, b] = equal_f32_inputs("op", [(s, layout, "a"), (s, layout, "b")])?;
        let CpuStorage::F32(all) = s else {
            candle_core::bail!("not f32")
        };
        assert!(std::ptr::eq(a.as_ptr(), all.as_ptr()) && std::ptr::eq(a, b));
        let narrow = layout.narrow(1, 1, 2)?;
        let err = f32_inputs("fused-x", [(s, &narrow, "weight")]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("fused-x: weight must be contiguous")));
        let row = layout.narrow(0, 1, 1)?;
        let [r] = f32_inputs("op", [(s, &row, "row")])?;
        assert_eq!(r, &[4., 5., 6., 7.]);
        let err = equal_f32_inputs("fused-y", [(s, layout, "x"), (s, &row, "g")]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("x 12, g 4")));
        Ok(())
    }

    #[test]
    fn unpack_splits_what_packed_wrote() -> candle_core::Result<()> {
        let (storage, shape) = packed((0..10).map(|i| i as f32).collect());
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("not f32")
        };
        let flat = Tensor::from_vec(data, shape, &Device::Cpu)?;
        let (x, w) = (Shape::from((2, 3)), Shape::from(4));
        let [dx, dw] = unpack("op", &flat, [&x, &w])?;
        assert_eq!(dx.to_vec2::<f32>()?, [[0., 1., 2.], [3., 4., 5.]]);
        assert_eq!(dw.to_vec1::<f32>()?, [6., 7., 8., 9.]);
        assert!(unpack("op", &flat, [&x, &x]).is_err());
        Ok(())
    }
}
