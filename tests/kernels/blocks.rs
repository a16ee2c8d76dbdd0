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
    for (add_one, act) in [(false, Activation::Silu), (true, Activation::GeluTanh)] {
        let name = format!("mlp block add_one={add_one} {act:?}");
        let inputs = mlp_inputs();
        let fused: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let reference: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(&t.to_dtype(DType::F64).unwrap()).unwrap())
            .collect();
        let ft: Vec<Tensor> = fused.iter().map(|v| v.as_tensor().clone()).collect();
        let rt: Vec<Tensor> = reference.iter().map(|v| v.as_tensor().clone()).collect();
        let sink = ParamGrads::default();
        let a = kernels::mlp_block(&ft[0], &block(&ft, add_one, act), Some(&sink)).unwrap();
        let b = kernels::mlp_block_composed(&rt[0], &block(&rt, add_one, act)).unwrap();
        let err = max_rel_diff(&a, &b);
        assert!(err < 2e-6, "{name}: output differs by {err:e}");
        let (ga, gb) = (grads_of(&a, &sink), grads_of(&b, &ParamGrads::default()));
        for (i, (va, vb)) in fused.iter().zip(&reference).enumerate() {
            let da = ga
                .get(va)
                .unwrap_or_else(|| panic!("{name}: no gradient {i}"));
            let err = max_rel_diff(da, gb.get(vb).unwrap());
            assert!(
                err < 1e-5,
                "{name}: gradient of input {i} differs by {err:e}"
            );
        }
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
