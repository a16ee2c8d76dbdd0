//! The discriminator's kernels: LayerNorm, exact GELU, dropout (alone, after GELU, before the
//! residual add), the frozen linear layer and the linear layer as one product.

use super::*;

#[test]
fn layer_norm_matches_composition() {
    let x = tensor(&[3, 5, 67], 21, 3.0);
    let w = tensor(&[67], 22, 1.0);
    let b = tensor(&[67], 23, 0.5);
    check(
        "layer_norm",
        &[x, w, b],
        |t| kernels::layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap(),
        |t| kernels::layer_norm_composed(&t[0], &t[1], &t[2], 1e-5).unwrap(),
        5e-6,
    );
}

#[test]
fn gelu_erf_matches_composition() {
    let x = tensor(&[7, 4099], 31, 6.0);
    check(
        "gelu_erf",
        &[x],
        |t| kernels::gelu_erf(&t[0]).unwrap(),
        |t| kernels::gelu_erf_composed(&t[0]).unwrap(),
        5e-6,
    );
}

#[test]
fn masked_scale_matches_composition_and_leaves_the_mask_without_gradient() {
    let x = tensor(&[5, 999], 41, 3.0);
    let mask = Tensor::from_vec(
        values(5 * 999, 42, 1.0)
            .iter()
            .map(|&v| if v > -0.6 { 1f32 } else { 0.0 })
            .collect::<Vec<_>>(),
        (5, 999),
        &Device::Cpu,
    )
    .unwrap();
    let m64 = mask.to_dtype(DType::F64).unwrap();
    check(
        "masked_scale",
        std::slice::from_ref(&x),
        |t| kernels::masked_scale(&t[0], &mask, 1.0 / 0.9).unwrap(),
        |t| kernels::masked_scale_composed(&t[0], &m64, 1.0 / 0.9).unwrap(),
        1e-6,
    );
    let mask_var = Var::from_tensor(&mask).unwrap();
    let y = kernels::masked_scale(&x, mask_var.as_tensor(), 2.0).unwrap();
    assert!(
        !y.track_op(),
        "an untracked input with a constant mask builds no graph"
    );
}

#[test]
fn gelu_with_dropout_matches_composition_and_the_unfused_ops_bit_for_bit() {
    let x = tensor(&[6, 2053], 43, 5.0);
    let mask = dropout_mask(&[6, 2053], 44);
    let m64 = mask.to_dtype(DType::F64).unwrap();
    check(
        "gelu_erf_masked",
        std::slice::from_ref(&x),
        |t| kernels::gelu_erf_masked(&t[0], &mask, 1.0 / 0.9).unwrap(),
        |t| {
            kernels::masked_scale_composed(
                &kernels::gelu_erf_composed(&t[0]).unwrap(),
                &m64,
                1.0 / 0.9,
            )
            .unwrap()
        },
        5e-6,
    );
    let (xa, xb) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&x).unwrap());
    let fused = kernels::gelu_erf_masked(xa.as_tensor(), &mask, 1.0 / 0.9).unwrap();
    let unfused = kernels::masked_scale(
        &kernels::gelu_erf(xb.as_tensor()).unwrap(),
        &mask,
        1.0 / 0.9,
    )
    .unwrap();
    let probe = tensor(fused.dims(), 45, 1.0);
    let ga = (&fused * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gb = (&unfused * &probe)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(bits(&fused), bits(&unfused));
    assert_eq!(
        bits(ga.get(xa.as_tensor()).unwrap()),
        bits(gb.get(xb.as_tensor()).unwrap())
    );
}

#[test]
fn residual_dropout_matches_composition_and_the_unfused_ops_bit_for_bit() {
    let r = tensor(&[4, 3, 517], 46, 2.0);
    let x = tensor(&[4, 3, 517], 47, 3.0);
    let mask = dropout_mask(&[4, 3, 517], 48);
    let m64 = mask.to_dtype(DType::F64).unwrap();
    check(
        "residual_masked_scale",
        &[r.clone(), x.clone()],
        |t| kernels::residual_masked_scale(&t[0], &t[1], &mask, 1.0 / 0.9).unwrap(),
        |t| kernels::residual_masked_scale_composed(&t[0], &t[1], &m64, 1.0 / 0.9).unwrap(),
        1e-6,
    );
    let unfused = (&r + kernels::masked_scale(&x, &mask, 1.0 / 0.9).unwrap()).unwrap();
    let fused = kernels::residual_masked_scale(&r, &x, &mask, 1.0 / 0.9).unwrap();
    assert_eq!(bits(&fused), bits(&unfused));
}

#[test]
fn frozen_linear_matches_composition_and_gives_no_weight_gradient() {
    let x = tensor(&[3, 7, 37], 51, 2.0);
    let w = tensor(&[29, 37], 52, 0.5);
    let b = tensor(&[29], 53, 0.5);
    let (w64, b64) = (
        w.to_dtype(DType::F64).unwrap(),
        b.to_dtype(DType::F64).unwrap(),
    );
    check(
        "frozen_linear",
        std::slice::from_ref(&x),
        |t| kernels::frozen_linear(&t[0], &w, Some(&b)).unwrap(),
        |t| kernels::frozen_linear_composed(&t[0], &w64, Some(&b64)).unwrap(),
        2e-6,
    );
    check(
        "frozen_linear without bias",
        std::slice::from_ref(&x),
        |t| kernels::frozen_linear(&t[0], &w, None).unwrap(),
        |t| kernels::frozen_linear_composed(&t[0], &w64, None).unwrap(),
        2e-6,
    );
    // Weights given as variables are still constants here.
    let wv = Var::from_tensor(&w).unwrap();
    let xv = Var::from_tensor(&x).unwrap();
    let grads = kernels::frozen_linear(xv.as_tensor(), wv.as_tensor(), Some(&b))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(xv.as_tensor()).is_some());
    assert!(grads.get(wv.as_tensor()).is_none());
}

#[test]
fn linear_as_one_product_matches_candle_nn_linear() {
    let x = tensor(&[3, 7, 37], 61, 2.0);
    let w = tensor(&[29, 37], 62, 0.5);
    let b = tensor(&[29], 63, 0.5);
    check(
        "linear",
        &[x, w, b],
        |t| kernels::linear(&t[0], &t[1], Some(&t[2])).unwrap(),
        |t| {
            let layer = candle_nn::Linear::new(t[1].clone(), Some(t[2].clone()));
            candle_core::Module::forward(&layer, &t[0]).unwrap()
        },
        2e-6,
    );
    // A weight that is not trained gets no gradient product at all.
    let x = Var::from_tensor(&tensor(&[4, 37], 64, 1.0)).unwrap();
    let w = tensor(&[29, 37], 62, 0.5);
    let grads = kernels::linear(x.as_tensor(), &w, None)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(x.as_tensor()).is_some());
    assert!(grads.get(&w).is_none());
}
