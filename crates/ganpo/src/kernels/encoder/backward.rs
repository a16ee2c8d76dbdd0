//! One encoder layer's backward on raw buffers: every gradient written once, the residual
//! stream's gradient accumulated in place.

use rayon::prelude::*;

use super::super::gelu::gelu_and_slope;
use super::super::gemm::{MatRef, matmul_new};
use super::super::layer_norm;
use super::super::linear::column_sums;
use super::super::simd;
use super::forward::{CHUNK, End, LayerTape};
use super::{LayerDropout, PARAMS, Param, Shapes};

/// `∂L/∂x` of a layer and, when asked for, its parameters' gradients (indexed by [`Param`]).
pub(super) type LayerGrads = (Vec<f32>, Option<Vec<Vec<f32>>>);

/// `dy W` for row-major `dy` `[rows, out]` and `W` `[out, in]`.
fn input_grad(dy: &[f32], w: &[f32], out: usize, inputs: usize) -> candle_core::Result<Vec<f32>> {
    let rows = dy.len() / out;
    matmul_new(
        MatRef::row_major(dy, rows, out),
        MatRef::row_major(w, out, inputs),
    )
}

/// `dyᵀ x` for row-major `dy` `[rows, out]` and `x` `[rows, in]`: a weight's gradient.
fn weight_grad(dy: &[f32], x: &[f32], out: usize, inputs: usize) -> candle_core::Result<Vec<f32>> {
    let rows = dy.len() / out;
    matmul_new(
        MatRef::row_major(dy, rows, out).t(),
        MatRef::row_major(x, rows, inputs),
    )
}

/// The backward of [`super::forward::layer`] for the output gradient `dout` (`[N, w]`, or
/// `[R, w]` for [`End::Pooled`]), given the layer's input `x`, its parameters `p` and its tape.
#[allow(clippy::too_many_arguments)]
pub(super) fn layer(
    x: &[f32],
    p: &[&[f32]],
    s: &Shapes<'_>,
    dropout: Option<&LayerDropout>,
    end: End,
    tape: &LayerTape,
    dout: Vec<f32>,
    params: bool,
) -> candle_core::Result<LayerGrads> {
    let (w, f) = (s.width, s.ffn);
    let mut grads = vec![Vec::new(); PARAMS];
    let mut param = |which: Param, grad: &dyn Fn() -> candle_core::Result<Vec<f32>>| {
        if params {
            grads[which as usize] = grad()?;
        }
        Ok::<(), candle_core::Error>(())
    };
    // The output projection (and its dropout, or the pool it was moved past).
    let (mut dx, mut dg) = match end {
        End::Full => {
            let masked = dropout.map(|d| masked(&dout, &d.output, d.scale));
            let df = masked.as_deref().unwrap_or(&dout);
            param(Param::L2W, &|| weight_grad(df, &tape.g, w, f))?;
            param(Param::L2B, &|| Ok(column_sums(df, w)))?;
            let dg = input_grad(df, p[Param::L2W as usize], w, f)?;
            (dout, dg)
        }
        End::Pooled => {
            param(Param::L2W, &|| weight_grad(&dout, &tape.g, w, f))?;
            param(Param::L2B, &|| Ok(column_sums(&dout, w)))?;
            let dpg = input_grad(&dout, p[Param::L2W as usize], w, f)?;
            (s.unpool(&dout, w), s.unpool(&dpg, f))
        }
    };
    // GELU and its dropout, in place: dg becomes ∂L/∂u.
    gelu_backward(
        &mut dg,
        &tape.u,
        dropout.map(|d| (d.hidden.as_slice(), d.scale)),
    );
    param(Param::L1W, &|| weight_grad(&dg, &tape.h2, f, w))?;
    param(Param::L1B, &|| Ok(column_sums(&dg, f)))?;
    let dh2 = input_grad(&dg, p[Param::L1W as usize], f, w)?;
    drop(dg);
    let norm2 = layer_norm::backward_rows(
        &tape.x1,
        p[Param::Norm2W as usize],
        &dh2,
        s.eps,
        &mut dx,
        true,
    );
    drop(dh2);
    // The attention block: dx now holds ∂L/∂x₁.
    let masked = dropout.map(|d| masked(&dx, &d.attention_output, d.scale));
    let da = masked.as_deref().unwrap_or(&dx);
    param(Param::OutW, &|| weight_grad(da, &tape.attention, w, w))?;
    param(Param::OutB, &|| Ok(column_sums(da, w)))?;
    let d_attention = input_grad(da, p[Param::OutW as usize], w, w)?;
    drop(masked);
    let attention = s.attention(&tape.qkv, dropout);
    let dqkv = attention.backward(&d_attention, &tape.attention, &tape.saved)?;
    drop(d_attention);
    param(Param::InW, &|| weight_grad(&dqkv, &tape.h1, 3 * w, w))?;
    param(Param::InB, &|| Ok(column_sums(&dqkv, 3 * w)))?;
    let dh1 = input_grad(&dqkv, p[Param::InW as usize], 3 * w, w)?;
    drop(dqkv);
    let norm1 = layer_norm::backward_rows(x, p[Param::Norm1W as usize], &dh1, s.eps, &mut dx, true);
    if !params {
        return Ok((dx, None));
    }
    for (norm, (weight, bias)) in [
        (norm1, (Param::Norm1W, Param::Norm1B)),
        (norm2, (Param::Norm2W, Param::Norm2B)),
    ] {
        let (dw, db) = norm.split_at(w);
        grads[weight as usize] = dw.to_vec();
        grads[bias as usize] = db.to_vec();
    }
    Ok((dx, Some(grads)))
}

/// `g ⊙ m · scale`: the gradient through inverted dropout.
fn masked(g: &[f32], m: &[f32], scale: f32) -> Vec<f32> {
    let mut out = super::super::buffer::uninit(g.len());
    out.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK).zip(m.par_chunks(CHUNK)))
        .for_each(|(o, (g, m))| {
            for ((o, &g), &m) in o.iter_mut().zip(g).zip(m) {
                o.write(g * m * scale);
            }
        });
    // SAFETY: the chunks cover `out` and each slot of a chunk is written.
    unsafe { super::super::buffer::assume_init(out) }
}

/// `dg ← dg (⊙ m · scale) ⊙ gelu'(u)` in place.
fn gelu_backward(dg: &mut [f32], u: &[f32], dropout: Option<(&[f32], f32)>) {
    let chunks = dg.par_chunks_mut(CHUNK).zip(u.par_chunks(CHUNK));
    match dropout {
        None => chunks.for_each(|(g, u)| {
            simd::vectorized(
                #[inline(always)]
                || {
                    for (g, &u) in g.iter_mut().zip(u) {
                        *g *= gelu_and_slope(u).1;
                    }
                },
            )
        }),
        Some((m, scale)) => chunks.zip(m.par_chunks(CHUNK)).for_each(|((g, u), m)| {
            simd::vectorized(
                #[inline(always)]
                || {
                    for ((g, &u), &m) in g.iter_mut().zip(u).zip(m) {
                        *g = *g * m * scale * gelu_and_slope(u).1;
                    }
                },
            )
        }),
    }
}
