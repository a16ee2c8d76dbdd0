//! The fused decoder blocks (one op per half layer, weight gradients in a `ParamGrads` store)
//! against the composition of per-op kernels in f64.

use super::*;
use candle_core::backprop::GradStore;
use ganpo::kernels::{MlpBlock, ParamGrads};

/// The MLP block's inputs: `x` `[2, 5, 8]`, norm `[8]`, gate and up `[12, 8]`, down `[8, 12]`.
fn mlp_inputs() -> Vec<Tensor> {
    vec![
        tensor(&[2, 5, 8], 11, 2.0),
        (tensor(&[8], 12, 0.5) + 1.0).unwrap(),
        tensor(&[12, 8], 13, 0.4),
        tensor(&[12, 8], 14, 0.4),
        tensor(&[8, 12], 15, 0.4),
    ]
}

fn block<'a>(t: &'a [Tensor], add_one: bool, act: Activation) -> MlpBlock<'a> {
    MlpBlock {
        norm: &t[1],
        gate: &t[2],
        up: &t[3],
        down: &t[4],
        eps: 1e-6,
        add_one,
        act,
        post_norm: t.get(5),
    }
}

/// Each input as an f32 variable (the fused path) and as an f64 one (the composition).
fn f32_and_f64_vars(inputs: &[Tensor]) -> (Vec<Var>, Vec<Var>) {
    let vars = |dtype| {
        inputs
            .iter()
            .map(|t| Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap())
            .collect()
    };
    (vars(DType::F32), vars(DType::F64))
}

/// Each variable's gradient in `fused` against its twin's in `reference`, within `tol`.
fn compare_grads(
    name: &str,
    (fused, ga): (&[Var], &GradStore),
    (reference, gb): (&[Var], &GradStore),
    tol: f64,
) {
    for (i, (va, vb)) in fused.iter().zip(reference).enumerate() {
        let da = ga
            .get(va)
            .unwrap_or_else(|| panic!("{name}: no gradient {i}"));
        let err = max_rel_diff(da, gb.get(vb).unwrap());
        assert!(
            err < tol,
            "{name}: gradient of input {i} differs by {err:e}"
        );
    }
}

/// `Σ y ⊙ probe` differentiated; the block's parameter gradients drained into the result.
fn grads_of(y: &Tensor, sink: &ParamGrads) -> GradStore {
    let probe = tensor(y.dims(), 99, 1.0).to_dtype(y.dtype()).unwrap();
    let mut grads = (y * probe).unwrap().sum_all().unwrap().backward().unwrap();
    sink.drain_into(&mut grads).unwrap();
    grads
}

#[test]
fn mlp_block_matches_composition_with_weight_gradients_from_the_store() {
    let gemma2 = [(true, Activation::GeluTanh, true)];
    for (add_one, act, post) in [
        (false, Activation::Silu, false),
        (true, Activation::GeluTanh, false),
    ]
    .into_iter()
    .chain(gemma2)
    {
        let name = format!("mlp block add_one={add_one} {act:?} post-norm={post}");
        let mut inputs = mlp_inputs();
        if post {
            // Gemma-2's post-feedforward norm `[8]`, its (1 + w) weight away from 1.
            inputs.push(tensor(&[8], 16, 0.5));
        }
        let (fused, reference) = f32_and_f64_vars(&inputs);
        let ft: Vec<Tensor> = fused.iter().map(|v| v.as_tensor().clone()).collect();
        let rt: Vec<Tensor> = reference.iter().map(|v| v.as_tensor().clone()).collect();
        let sink = ParamGrads::default();
        let a = kernels::mlp_block(&ft[0], &block(&ft, add_one, act), Some(&sink)).unwrap();
        let b = kernels::mlp_block_composed(&rt[0], &block(&rt, add_one, act)).unwrap();
        let err = max_rel_diff(&a, &b);
        assert!(err < 2e-6, "{name}: output differs by {err:e}");
        let (ga, gb) = (grads_of(&a, &sink), grads_of(&b, &ParamGrads::default()));
        compare_grads(&name, (&fused, &ga), (&reference, &gb), 1e-5);
        // Drained: a second drain adds nothing.
        let mut empty = ga;
        for v in &fused[1..] {
            empty.remove(v);
        }
        sink.drain_into(&mut empty).unwrap();
        assert!(fused[1..].iter().all(|v| empty.get(v).is_none()));
    }
}

#[test]
fn mlp_block_with_frozen_weights_or_an_untracked_input() {
    let inputs = mlp_inputs();
    let reference: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_dtype(DType::F64).unwrap())
        .collect();
    let x64 = Var::from_tensor(&reference[0]).unwrap();
    let mut rt = reference.clone();
    rt[0] = x64.as_tensor().clone();
    let b = kernels::mlp_block_composed(&rt[0], &block(&rt, false, Activation::Silu)).unwrap();
    let gb = grads_of(&b, &ParamGrads::default());

    // Frozen weights (a reference model): only the input gets a gradient, none reaches the store.
    let x = Var::from_tensor(&inputs[0]).unwrap();
    let mut ft = inputs.clone();
    ft[0] = x.as_tensor().clone();
    let sink = ParamGrads::default();
    let a = kernels::mlp_block(&ft[0], &block(&ft, false, Activation::Silu), Some(&sink)).unwrap();
    assert!(max_rel_diff(&a, &b) < 2e-6);
    let ga = grads_of(&a, &sink);
    let err = max_rel_diff(ga.get(&x).unwrap(), gb.get(&x64).unwrap());
    assert!(
        err < 1e-5,
        "frozen weights: input gradient differs by {err:e}"
    );
    assert!(inputs[1..].iter().all(|w| ga.get(w).is_none()));

    // Trained weights after an untracked input (frozen embeddings): the weights still get theirs.
    let vars: Vec<Var> = inputs[1..]
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let mut ft = vec![inputs[0].clone()];
    ft.extend(vars.iter().map(|v| v.as_tensor().clone()));
    let a = kernels::mlp_block(&ft[0], &block(&ft, false, Activation::Silu), Some(&sink)).unwrap();
    let ga = grads_of(&a, &sink);
    for v in &vars {
        assert!(
            ga.get(v).is_some(),
            "untracked input: a weight lacks its gradient"
        );
    }

    // Trained weights without a store take the composed path: plain candle gradients.
    let a = kernels::mlp_block(&ft[0], &block(&ft, false, Activation::Silu), None).unwrap();
    let ga = (&a * 1.0).unwrap().sum_all().unwrap().backward().unwrap();
    for v in &vars {
        assert!(ga.get(v).is_some(), "no store: a weight lacks its gradient");
    }
}

/// A causal mask `[b, 1, t, t]` in which sequence 1 is left-padded by 3 positions (its first
/// query rows see no real key at all).
fn causal_padded_mask(b: usize, t: usize) -> Tensor {
    let mut mask = vec![0f32; b * t * t];
    for (i, m) in mask.iter_mut().enumerate() {
        let (batch, q, k) = (i / (t * t), (i / t) % t, i % t);
        if k > q || (batch == 1 && k < 3) {
            *m = -1e30;
        }
    }
    Tensor::from_vec(mask, (b, 1, t, t), &Device::Cpu).unwrap()
}

/// Rotary tables `[t, half]` for base 10000.
fn rope_tables(t: usize, half: usize) -> (Tensor, Tensor) {
    let angles: Vec<f32> = (0..t * half)
        .map(|i| (i / half) as f32 * 10000f32.powf(-((i % half) as f32) / half as f32))
        .collect();
    let cos = angles.iter().map(|a| a.cos()).collect::<Vec<_>>();
    let sin = angles.iter().map(|a| a.sin()).collect::<Vec<_>>();
    (
        Tensor::from_vec(cos, (t, half), &Device::Cpu).unwrap(),
        Tensor::from_vec(sin, (t, half), &Device::Cpu).unwrap(),
    )
}

#[test]
fn attention_block_matches_composition_with_weight_gradients_from_the_store() {
    // Grouped heads (4 query, 2 key/value, head_dim 4) over 70 positions (two query blocks, the
    // second skipping no key, the first of sequence 1 with rows that see no key); without and
    // with q/k/v biases (Qwen2) and Gemma's (1 + w) norm.
    let (b, t, d, heads, kv, hd) = (2, 70, 12, 4, 2, 4);
    let (cos, sin) = rope_tables(t, hd / 2);
    let mask = causal_padded_mask(b, t);
    for biased in [false, true] {
        let name = format!("attention block, biases {biased}");
        let mut inputs = vec![
            tensor(&[b, t, d], 21, 2.0),
            (tensor(&[d], 22, 0.5) + 1.0).unwrap(),
            tensor(&[heads * hd, d], 23, 0.5),
            tensor(&[kv * hd, d], 24, 0.5),
            tensor(&[kv * hd, d], 25, 0.5),
            tensor(&[d, heads * hd], 26, 0.5),
        ];
        if biased {
            inputs.extend([
                tensor(&[heads * hd], 27, 0.3),
                tensor(&[kv * hd], 28, 0.3),
                tensor(&[kv * hd], 29, 0.3),
            ]);
        }
        let run = |t: &[Tensor], fused: Option<&ParamGrads>| {
            let dt = t[0].dtype();
            let (c, s, m) = (
                cos.to_dtype(dt).unwrap(),
                sin.to_dtype(dt).unwrap(),
                mask.to_dtype(dt).unwrap(),
            );
            let block = kernels::AttentionBlock {
                norm: &t[1],
                q: &t[2],
                k: &t[3],
                v: &t[4],
                o: &t[5],
                qkv_bias: biased.then(|| [&t[6], &t[7], &t[8]]),
                heads,
                kv_heads: kv,
                rope: (&c, &s),
                mask: &m,
                scale: 0.5,
                eps: 1e-6,
                add_one: biased,
            };
            match fused {
                Some(sink) => kernels::attention_block(&t[0], &block, Some(sink)).unwrap(),
                None => kernels::attention_block_composed(&t[0], &block).unwrap(),
            }
        };
        let (fused, reference) = f32_and_f64_vars(&inputs);
        let ft: Vec<Tensor> = fused.iter().map(|v| v.as_tensor().clone()).collect();
        let rt: Vec<Tensor> = reference.iter().map(|v| v.as_tensor().clone()).collect();
        let sink = ParamGrads::default();
        let a = run(&ft, Some(&sink));
        let b64 = run(&rt, None);
        let err = max_rel_diff(&a, &b64);
        assert!(err < 5e-6, "{name}: output differs by {err:e}");
        let (ga, gb) = (grads_of(&a, &sink), grads_of(&b64, &ParamGrads::default()));
        compare_grads(&name, (&fused, &ga), (&reference, &gb), 2e-5);
        // A frozen block (a reference model) is the same function, with no graph.
        let frozen = run(&inputs, Some(&ParamGrads::default()));
        assert!(!frozen.track_op());
        assert_eq!(bits(&frozen), bits(&a));
    }
}
