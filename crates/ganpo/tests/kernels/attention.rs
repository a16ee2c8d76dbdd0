//! Attention, grouped-query and packed, against its composition.

use super::*;

/// A causal mask over the last `q` of `k` positions, with padding: row 1's first two keys are
/// masked, and its second query row sees no key at all.
fn attention_mask(b: usize, q: usize, k: usize) -> Tensor {
    let mut mask = vec![0f32; b * q * k];
    for (i, m) in mask.iter_mut().enumerate() {
        let (batch, query, key) = (i / (q * k), (i / k) % q, i % k);
        if key > query + (k - q) || (batch == 1 && (key < 2 || query == 1)) {
            *m = -1e30;
        }
    }
    Tensor::from_vec(mask, (b, 1, q, k), &Device::Cpu).unwrap()
}

#[test]
fn attention_matches_composition_with_grouped_heads_and_padding() {
    // (batch, heads, kv heads, q_len, k_len, head_dim): grouped-query with more query rows than
    // one forward block (64), three blocks of which the later ones skip the keys after their last
    // query (the causal mask) while the first of batch 1 has a row that sees no key, multi-head,
    // and a query window shorter than the keys (a cache); each without and with a dropout mask
    // on the probabilities (0 or 1 / (1 − 0.25)).
    let cases = [
        (2, 6, 2, 70, 70, 8),
        (2, 2, 1, 150, 150, 4),
        (2, 4, 4, 5, 5, 4),
        (2, 2, 1, 3, 7, 4),
    ];
    for (case, &(b, h, kv, t, s, d)) in cases.iter().enumerate() {
        let q = tensor(&[b, h, t, d], 20 + case as u64, 1.5);
        let k = tensor(&[b, kv, s, d], 30 + case as u64, 1.5);
        let v = tensor(&[b, kv, s, d], 40 + case as u64, 1.0);
        let mask = attention_mask(b, t, s);
        let dropped: Vec<f32> = values(b * h * t * s, 50 + case as u64, 1.0)
            .iter()
            .map(|&u| if u < -0.5 { 0.0 } else { 1.0 / 0.75 })
            .collect();
        let dropout = Tensor::from_vec(dropped, (b, h, t, s), &Device::Cpu).unwrap();
        for keep in [None, Some(&dropout)] {
            check(
                &format!(
                    "attention {:?}, dropout {}",
                    (b, h, kv, t, s, d),
                    keep.is_some()
                ),
                &[q.clone(), k.clone(), v.clone()],
                |x| kernels::attention(&x[0], &x[1], &x[2], &mask, 0.35, keep).unwrap(),
                |x| {
                    let m = mask.to_dtype(x[0].dtype()).unwrap();
                    let keep = keep.map(|k| k.to_dtype(x[0].dtype()).unwrap());
                    kernels::attention_composed(&x[0], &x[1], &x[2], &m, 0.35, keep.as_ref())
                        .unwrap()
                },
                2e-5,
            );
        }
    }
}

#[test]
fn packed_attention_matches_composition_with_padding_and_dropout() {
    // (batch, heads, len, head_dim): more rows than one forward block (64), three blocks, and a
    // small case.
    let cases = [(2, 3, 70, 8), (1, 2, 140, 4), (2, 4, 5, 4)];
    for (case, &(b, h, t, d)) in cases.iter().enumerate() {
        let qkv = tensor(&[b, t, 3 * h * d], 60 + case as u64, 1.5);
        let mask = attention_mask(b, t, t);
        let dropped: Vec<f32> = values(b * h * t * t, 70 + case as u64, 1.0)
            .iter()
            .map(|&u| if u < -0.5 { 0.0 } else { 1.0 / 0.75 })
            .collect();
        let dropout = Tensor::from_vec(dropped, (b, h, t, t), &Device::Cpu).unwrap();
        for keep in [None, Some(&dropout)] {
            check(
                &format!(
                    "packed attention {:?}, dropout {}",
                    (b, h, t, d),
                    keep.is_some()
                ),
                std::slice::from_ref(&qkv),
                |x| kernels::packed_attention(&x[0], h, &mask, 0.35, keep).unwrap(),
                |x| {
                    // The composition reads q, k and v as three separate [b, h, t, d] tensors.
                    let split = |i: usize| {
                        x[0].narrow(2, i * h * d, h * d)
                            .unwrap()
                            .reshape((b, t, h, d))
                            .unwrap()
                            .transpose(1, 2)
                            .unwrap()
                            .contiguous()
                            .unwrap()
                    };
                    let m = mask.to_dtype(x[0].dtype()).unwrap();
                    let keep = keep.map(|k| k.to_dtype(x[0].dtype()).unwrap());
                    let (q, k, v) = (split(0), split(1), split(2));
                    kernels::attention_composed(&q, &k, &v, &m, 0.35, keep.as_ref()).unwrap()
                },
                2e-5,
            );
        }
    }
    let qkv = tensor(&[1, 4, 3 * 2 * 4 + 1], 80, 1.0);
    let err = kernels::packed_attention(&qkv, 2, &attention_mask(1, 4, 4), 1.0, None).unwrap_err();
    assert!(err.to_string().contains("heads"), "{err}");
}

#[test]
fn attention_rejects_mismatched_heads_and_masks() {
    let q = tensor(&[1, 3, 4, 8], 1, 1.0);
    let k = tensor(&[1, 2, 4, 8], 2, 1.0);
    let err = kernels::attention(&q, &k, &k, &attention_mask(1, 4, 4), 1.0, None).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    let k = tensor(&[1, 1, 4, 8], 2, 1.0);
    let err = kernels::attention(&q, &k, &k, &attention_mask(1, 4, 5), 1.0, None).unwrap_err();
    assert!(err.to_string().contains("mask"), "{err}");
    let keep = tensor(&[1, 2, 4, 4], 3, 1.0);
    let err =
        kernels::attention(&q, &k, &k, &attention_mask(1, 4, 4), 1.0, Some(&keep)).unwrap_err();
    assert!(err.to_string().contains("dropout mask"), "{err}");
}
