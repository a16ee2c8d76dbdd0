//! Products with few rows (decoding's shape), which skip the `gemm` crate's packing: against the
//! composition in f64 over the shapes that exercise every block and remainder (one row, pairs and
//! triples of rows, blocks of four or eight weight rows and the single rows left over, `k` not a
//! multiple of 8), with gradients; and each row's result independent of the rest of the batch.

use candle_core::{D, IndexOp};
use ganpo::kernels;

use super::{check, max_rel_diff, tensor};

#[test]
fn few_row_products_match_the_composition_in_f64() {
    for (m, k, n) in [
        (1, 256, 1),
        (1, 263, 9),
        (1, 64, 9),
        (4, 37, 21),
        (2, 264, 5),
        (3, 300, 12),
        (5, 576, 197),
        (32, 267, 33),
        (64, 256, 70),
        (65, 256, 10),
    ] {
        let inputs = [
            tensor(&[m, k], 1, 1.0),
            tensor(&[n, k], 2, 0.5),
            tensor(&[m, n], 3, 1.0),
        ];
        check(
            &format!("linear {m}×{k}·{k}×{n}"),
            &inputs[..2],
            |t| kernels::linear(&t[0], &t[1], None).unwrap(),
            |t| t[0].matmul(&t[1].t().unwrap()).unwrap(),
            1e-5,
        );
        // The accumulating form (the residual is added into the product's output).
        check(
            &format!("linear_residual {m}×{k}·{k}×{n}"),
            &inputs,
            |t| kernels::linear_residual(&t[0], &t[1], &t[2]).unwrap(),
            |t| (t[0].matmul(&t[1].t().unwrap()).unwrap() + &t[2]).unwrap(),
            1e-5,
        );
    }
}

/// Guaranteed by the few-row path (one dot product per output, in one fixed order), which runs on
/// x86-64 CPUs with AVX2 and FMA; elsewhere products go to the `gemm` crate, which promises no
/// such thing.
#[test]
#[cfg(target_arch = "x86_64")]
fn a_rows_product_does_not_depend_on_the_other_rows() {
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        return;
    }
    let (k, n) = (283, 45);
    let w = tensor(&[n, k], 4, 0.5);
    for m in [2, 3, 7, 32] {
        let x = tensor(&[m, k], 5, 1.0);
        let together = kernels::linear(&x, &w, None).unwrap();
        for row in 0..m {
            let alone = kernels::linear(&x.i(row..row + 1).unwrap(), &w, None).unwrap();
            let diff = (together.i(row..row + 1).unwrap() - &alone)
                .unwrap()
                .abs()
                .unwrap()
                .max(D::Minus1)
                .unwrap()
                .max(D::Minus1)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(diff, 0.0, "row {row} of {m}");
        }
        // And the product is the composition's.
        let reference = x.matmul(&w.t().unwrap()).unwrap();
        assert!(max_rel_diff(&together, &reference) < 1e-5);
    }
}
