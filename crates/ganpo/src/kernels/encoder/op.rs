//! The encoder stack as a candle op: validation, the forward over the layers, and the backward
//! that hands `∂L/∂x` to candle and the parameters' gradients to the sink.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::super::ParamGrads;
use super::super::op_io::f32_inputs;
use super::super::storage::{with_f32, with_f32_all};
use super::backward;
use super::forward::{self, End, LayerTape};
use super::{PARAMS, Param, Shapes, StackLayer, StackPool};
use crate::{Error, Result};

/// The most attention probabilities (`R · heads · T²` per layer) the forward keeps for the
/// backward instead of recomputing them from `q kᵀ` (as the attention op's limit).
const KEEP_PROBS_LIMIT: usize = 1 << 24;

/// Runs `layers` on `x` `[R, T, w]` (f32, CPU) and returns the masked mean pool of the output
/// `[R, w]`. `pool` marks the positions attended to and pooled (at least one per sequence).
/// Differentiable in `x`; the gradients of the layers that carry `vars` go to `sink` during the
/// backward pass (to be drained by the caller).
pub fn encoder_stack(
    x: &Tensor,
    layers: Vec<StackLayer>,
    pool: &StackPool,
    eps: f64,
    sink: Option<ParamGrads>,
) -> Result<Tensor> {
    let (rows, len, width) = x.dims3()?;
    let bad = |what: String| Err(Error::Training(format!("encoder stack: {what}")));
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return bad("the fused encoder runs f32 tensors on the CPU".into());
    }
    let Some(first) = layers.first() else {
        return bad("no layers".into());
    };
    let heads = first.heads;
    let ffn = first
        .params
        .get(Param::L1B as usize)
        .map_or(0, Tensor::elem_count);
    if heads == 0 || !width.is_multiple_of(heads) || ffn == 0 {
        return bad(format!("{heads} heads, width {width}, ffn {ffn}"));
    }
    if pool.weights.len() != rows * len {
        return bad(format!(
            "{} pooling weights for {rows} × {len} positions",
            pool.weights.len()
        ));
    }
    for (i, layer) in layers.iter().enumerate() {
        check_layer(i, layer, [rows, len, width, ffn, heads])?;
    }
    let mut pool_weights = pool.weights.clone();
    let mut attention_mask = Vec::with_capacity(rows * len * len);
    for (r, weights) in pool_weights.chunks_exact_mut(len).enumerate() {
        let count: f32 = weights.iter().sum();
        if count == 0.0 || weights.iter().any(|&w| w != 0.0 && w != 1.0) {
            return bad(format!(
                "pooling weights of sequence {r} are not 0/1 with at least one 1"
            ));
        }
        let bias: Vec<f32> = weights
            .iter()
            .map(|&w| if w == 1.0 { 0.0 } else { -1.0e30 })
            .collect();
        for _ in 0..len {
            attention_mask.extend_from_slice(&bias);
        }
        for w in weights.iter_mut() {
            *w /= count;
        }
    }
    let trains = layers.iter().any(|l| l.vars.is_some()) && sink.is_some();
    let save = x.track_op() || trains;
    let op = EncoderStack {
        keep_probs: save && rows * heads * len * len <= KEEP_PROBS_LIMIT,
        layers,
        dims: [rows, len, width, ffn, heads],
        eps: eps as f32,
        attention_mask,
        pool_weights,
        sink: sink.filter(|_| trains),
        save,
        tape: Mutex::new(None),
    };
    Ok(x.contiguous()?.apply_op1(op)?)
}

/// Fails unless `layer`'s parameters, variables and masks fit `[R, T, w, ffn, heads]`.
fn check_layer(i: usize, layer: &StackLayer, [r, t, w, f, h]: [usize; 5]) -> Result<()> {
    let shapes: [&[usize]; PARAMS] = [
        &[3 * w, w],
        &[3 * w],
        &[w, w],
        &[w],
        &[f, w],
        &[f],
        &[w, f],
        &[w],
        &[w],
        &[w],
        &[w],
        &[w],
    ];
    let fits = layer.params.len() == PARAMS
        && layer.heads == h
        && layer.params.iter().zip(shapes).all(|(p, s)| {
            p.dims() == s && p.dtype() == candle_core::DType::F32 && p.device().is_cpu()
        })
        && layer.vars.as_ref().is_none_or(|v| v.len() == PARAMS)
        && layer.dropout.as_ref().is_none_or(|d| {
            d.attention.len() == r * h * t * t
                && d.attention_output.len() == r * t * w
                && d.hidden.len() == r * t * f
                && d.output.len() == r * t * w
        });
    match fits {
        true => Ok(()),
        false => Err(Error::Training(format!(
            "encoder stack: layer {i}'s parameters, heads or dropout masks do not fit \
             [{r}, {t}, {w}] with ffn {f} and {h} heads"
        ))),
    }
}

/// The op: layers, constants, and what the forward kept.
struct EncoderStack {
    layers: Vec<StackLayer>,
    /// `[R, T, w, ffn, heads]`.
    dims: [usize; 5],
    eps: f32,
    attention_mask: Vec<f32>,
    pool_weights: Vec<f32>,
    sink: Option<ParamGrads>,
    save: bool,
    keep_probs: bool,
    /// Shared so that the graph can be back-propagated more than once, as candle allows.
    tape: Mutex<Option<Arc<Tape>>>,
}

/// The forward's record: the input of every layer after the first, and each layer's tape.
struct Tape {
    inputs: Vec<Vec<f32>>,
    layers: Vec<LayerTape>,
}

impl EncoderStack {
    fn shapes(&self) -> Shapes<'_> {
        let [rows, len, width, ffn, heads] = self.dims;
        Shapes {
            rows,
            len,
            width,
            ffn,
            heads,
            eps: self.eps,
            attention_mask: &self.attention_mask,
            pool_weights: &self.pool_weights,
        }
    }

    /// How layer `i` ends: in the pool when it is the last and has no dropout.
    fn end(&self, i: usize) -> End {
        match i + 1 == self.layers.len() && self.layers[i].dropout.is_none() {
            true => End::Pooled,
            false => End::Full,
        }
    }
}

impl CustomOp1 for EncoderStack {
    fn name(&self) -> &'static str {
        "fused-encoder-stack"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let [x] = f32_inputs(self.name(), [(s, l, "input")])?;
        let shapes = self.shapes();
        let (mut inputs, mut tapes) = (Vec::new(), Vec::new());
        let mut current: Option<Vec<f32>> = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let input = current.as_deref().unwrap_or(x);
            let (out, tape) = with_f32_all(&layer.params, "encoder parameter", |p| {
                let dropout = layer.dropout.as_ref();
                forward::layer(input, p, &shapes, dropout, self.end(i), self.keep_probs)
            })?;
            if self.save {
                tapes.push(tape);
                inputs.extend(current.take());
            }
            current = Some(out);
        }
        let Some(out) = current else {
            candle_core::bail!("encoder stack: no layers")
        };
        let pooled = match self.end(self.layers.len() - 1) {
            End::Pooled => out,
            End::Full => shapes.pool(&out, shapes.width),
        };
        if self.save {
            let tape = Tape {
                inputs,
                layers: tapes,
            };
            *self.tape.lock().map_err(|_| poisoned())? = Some(Arc::new(tape));
        }
        Ok((
            CpuStorage::F32(pooled),
            Shape::from((shapes.rows, shapes.width)),
        ))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let Some(tape) = self.tape.lock().map_err(|_| poisoned())?.clone() else {
            candle_core::bail!("encoder stack: a backward pass the forward kept nothing for")
        };
        let shapes = self.shapes();
        let last = self.layers.len() - 1;
        let mut d = with_f32(&grad.contiguous()?, "encoder output gradient", |g| {
            Ok(match self.end(last) {
                End::Pooled => g.to_vec(),
                End::Full => shapes.unpool(g, shapes.width),
            })
        })?;
        let (mut keys, mut sunk) = (Vec::new(), Vec::new());
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let Some(layer_tape) = tape.layers.get(i) else {
                candle_core::bail!("encoder stack: the tape lacks layer {i}")
            };
            // Layer i > 0 reads the previous layer's output; layer 0 the op's input.
            let input = i.checked_sub(1).and_then(|j| tape.inputs.get(j));
            let params = self.sink.is_some() && layer.vars.is_some();
            let run = |x: &[f32]| {
                with_f32_all(&layer.params, "encoder parameter", |p| {
                    let dropout = layer.dropout.as_ref();
                    let end = self.end(i);
                    backward::layer(x, p, &shapes, dropout, end, layer_tape, d, params)
                })
            };
            let (dx, grads) = match input {
                Some(input) => run(input)?,
                None => with_f32(x, "encoder input", run)?,
            };
            if let (Some(grads), Some(vars)) = (grads, &layer.vars) {
                keys.extend(vars.iter().map(|v| v.as_tensor().clone()));
                sunk.extend(grads.into_iter().map(Some));
            }
            d = dx;
        }
        if let Some(sink) = &self.sink {
            sink.push_flat(&keys, sunk)?;
        }
        Ok(Some(Tensor::from_vec(d, x.shape(), x.device())?))
    }
}

fn poisoned() -> candle_core::Error {
    candle_core::Error::Msg("encoder stack: a thread panicked holding its state".into())
}
