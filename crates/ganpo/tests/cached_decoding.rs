//! Cached (incremental) decoding gives the same logits as a full forward pass on the same tokens,
//! for every architecture, including left-padded batches.

mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::{VARIANTS, assert_close, fixture};
use ganpo::model::{Trainability, load_model};

/// Same f32 arithmetic in a different order (one query at a time vs all at once): rounding only.
const TOL: f64 = 1e-5;

fn ids(rows: &[Vec<u32>]) -> Tensor {
    Tensor::new(rows.to_vec(), &Device::Cpu).unwrap()
}

#[test]
fn prefill_then_token_by_token_matches_full_forward() {
    let seqs = vec![
        vec![5u32, 9, 17, 33, 8, 41, 12, 77, 3, 60, 21],
        vec![90, 4, 4, 61, 22, 13, 7, 8, 55, 31, 44],
    ];
    for name in VARIANTS {
        let m = load_model(
            &fixture(&format!("models/{name}")),
            Trainability::Frozen,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
        .model;
        let all = ids(&seqs);
        let full = m.forward(&all, &all.ones_like().unwrap()).unwrap().logits;
        let mut cache = m.new_cache(2);
        let prefill = 4;
        let first = m
            .forward_cached(
                &all.narrow(1, 0, prefill).unwrap(),
                &vec![vec![1; prefill]; 2],
                &mut cache,
            )
            .unwrap();
        assert_close(
            &first,
            &full.narrow(1, 0, prefill).unwrap(),
            TOL,
            &format!("{name} prefill"),
        );
        for pos in prefill..seqs[0].len() {
            let step = m
                .forward_cached(
                    &all.narrow(1, pos, 1).unwrap(),
                    &[vec![1], vec![1]],
                    &mut cache,
                )
                .unwrap();
            assert_close(
                &step,
                &full.narrow(1, pos, 1).unwrap(),
                TOL,
                &format!("{name} position {pos}"),
            );
        }
        assert_eq!(cache.len(), seqs[0].len());
    }
}

#[test]
fn left_padded_rows_match_their_unpadded_forward() {
    let long = vec![5u32, 9, 17, 33, 8, 41, 12];
    let short = vec![90u32, 4, 61, 22];
    for name in VARIANTS {
        let m = load_model(
            &fixture(&format!("models/{name}")),
            Trainability::Frozen,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
        .model;
        let pad = long.len() - short.len();
        let mut padded = vec![0u32; pad];
        padded.extend(&short);
        let batch = ids(&[long.clone(), padded]);
        let mask = vec![
            vec![1; long.len()],
            [vec![0; pad], vec![1; short.len()]].concat(),
        ];
        let mut cache = m.new_cache(2);
        let prefill = m.forward_cached(&batch, &mask, &mut cache).unwrap();
        // Then one more token for each row.
        let next = m
            .forward_cached(&ids(&[vec![70], vec![71]]), &[vec![1], vec![1]], &mut cache)
            .unwrap();

        for (row, seq, extra) in [(0usize, &long, 70u32), (1, &short, 71)] {
            let mut s = seq.clone();
            s.push(extra);
            let alone = ids(std::slice::from_ref(&s));
            let full = m
                .forward(&alone, &alone.ones_like().unwrap())
                .unwrap()
                .logits
                .i(0)
                .unwrap();
            let offset = if row == 1 { pad } else { 0 };
            let got = prefill
                .i(row)
                .unwrap()
                .narrow(0, offset, seq.len())
                .unwrap();
            assert_close(
                &got,
                &full.narrow(0, 0, seq.len()).unwrap(),
                TOL,
                &format!("{name} row {row} prompt"),
            );
            assert_close(
                &next.i(row).unwrap(),
                &full.narrow(0, seq.len(), 1).unwrap(),
                TOL,
                &format!("{name} row {row} next"),
            );
        }
    }
}

#[test]
fn last_position_logits_are_the_full_forwards_last_row() {
    let rows = [vec![5u32, 9, 17, 33], vec![0u32, 0, 61, 22]];
    let mask = vec![vec![1; 4], vec![0, 0, 1, 1]];
    for name in VARIANTS {
        let m = load_model(
            &fixture(&format!("models/{name}")),
            Trainability::Frozen,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
        .model;
        let (mut all_cache, mut last_cache) = (m.new_cache(2), m.new_cache(2));
        let all = m
            .forward_cached(&ids(&rows), &mask, &mut all_cache)
            .unwrap();
        let last = m
            .forward_cached_last(&ids(&rows), &mask, &mut last_cache)
            .unwrap();
        assert_eq!(last.dims(), &[2, all.dim(2).unwrap()]);
        assert_close(&last, &all.i((.., 3)).unwrap(), TOL, name);
        // Both caches hold the same keys and values: the next step agrees too.
        let step = [vec![70u32], vec![71]];
        let ones = [vec![1], vec![1]];
        let a = m
            .forward_cached(&ids(&step), &ones, &mut all_cache)
            .unwrap();
        let b = m
            .forward_cached_last(&ids(&step), &ones, &mut last_cache)
            .unwrap();
        assert_close(&b, &a.i((.., 0)).unwrap(), TOL, name);
    }
}

#[test]
fn a_preallocated_cache_and_a_growing_one_decode_alike() {
    // The growing cache starts at the prompt's 4 slots and doubles twice over 9 steps (copying
    // what it holds); the preallocated one never moves. Attention reads both in place.
    let prompt = [vec![5u32, 9, 17, 33], vec![0u32, 61, 22, 13]];
    let mask = vec![vec![1; 4], vec![0, 1, 1, 1]];
    for name in VARIANTS {
        let m = load_model(
            &fixture(&format!("models/{name}")),
            Trainability::Frozen,
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
        .model;
        let mut growing = m.new_cache(2);
        let mut fixed = m.new_cache_with_capacity(2, 13);
        let a = m
            .forward_cached_last(&ids(&prompt), &mask, &mut growing)
            .unwrap();
        let b = m
            .forward_cached_last(&ids(&prompt), &mask, &mut fixed)
            .unwrap();
        assert_close(&a, &b, 0.0, name);
        for step in 0..9u32 {
            let next = [vec![40 + step], vec![50 + step]];
            let ones = [vec![1], vec![1]];
            let a = m
                .forward_cached_last(&ids(&next), &ones, &mut growing)
                .unwrap();
            let b = m
                .forward_cached_last(&ids(&next), &ones, &mut fixed)
                .unwrap();
            assert_close(&a, &b, 0.0, &format!("{name} step {step}"));
        }
        assert_eq!(growing.len(), 13);
        assert_eq!(fixed.len(), 13);
    }
}
