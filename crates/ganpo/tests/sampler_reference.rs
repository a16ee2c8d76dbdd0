//! The sampler against the plain algorithm it speeds up: sort the whole vocabulary by tempered
//! logit, cut to top-k / top-p, normalize, and walk the cumulative probabilities with one uniform
//! draw. The sampler builds the sorted order lazily; the token each draw maps to must not change.

use ganpo::generate::{SamplingConfig, sample};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The reference: a full sort first (the sampler's algorithm before the lazy prefix).
fn sample_by_full_sort(logits: &[f32], config: &SamplingConfig, rng: &mut ChaCha8Rng) -> u32 {
    let t = config.temperature as f32;
    let mut scored: Vec<(usize, f32)> = logits.iter().map(|&x| x / t).enumerate().collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(k) = config.top_k.filter(|&k| k > 0) {
        scored.truncate(k);
    }
    let max = scored[0].1;
    let mut probs: Vec<f64> = scored
        .iter()
        .map(|&(_, x)| ((x - max) as f64).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if let Some(top_p) = config.top_p.filter(|&p| p < 1.0) {
        let mut cumulative = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cumulative += p;
            if cumulative >= top_p {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        let kept: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= kept);
    }
    let mut u: f64 = rng.random::<f64>();
    for (i, p) in probs.iter().enumerate() {
        if u < *p {
            return scored[i].0 as u32;
        }
        u -= p;
    }
    scored[probs.len() - 1].0 as u32
}

/// Logits like a language model's: a few strong candidates over a long tail, with ties.
fn logits(vocab: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..vocab)
        .map(|i| match i % 97 {
            0 => 8.0,
            1..=3 => rng.random_range(2.0..6.0),
            // Rounded so that equal values (ties) occur.
            _ => (rng.random_range(-6.0f32..2.0) * 4.0).round() / 4.0,
        })
        .collect()
}

#[test]
fn the_lazy_sorted_prefix_draws_the_tokens_a_full_sort_draws() {
    let mut data = ChaCha8Rng::seed_from_u64(1);
    let configs = [
        (1.0, None, None),
        (0.7, None, None),
        (2.0, None, None),
        (1.5, Some(40), None),
        (1.0, None, Some(0.9)),
        (2.0, Some(1000), Some(0.95)),
        (1.0, Some(3), None),
    ];
    let mut draws = 0;
    let mut distinct = std::collections::BTreeSet::new();
    for vocab in [5, 300, 20_000] {
        let row = logits(vocab, &mut data);
        for &(temperature, top_k, top_p) in &configs {
            let config = SamplingConfig {
                temperature,
                top_k,
                top_p,
            };
            let mut ours = ChaCha8Rng::seed_from_u64(9);
            let mut reference = ours.clone();
            for _ in 0..300 {
                let token = sample(&row, &config, &mut ours);
                assert_eq!(
                    token,
                    sample_by_full_sort(&row, &config, &mut reference),
                    "vocabulary {vocab}, {config:?}"
                );
                distinct.insert((vocab, token));
                draws += 1;
            }
        }
    }
    assert_eq!(draws, 3 * 7 * 300);
    // The draws reach deep into the tail (past the first sorted chunk), not only the top tokens.
    assert!(distinct.len() > 400, "{} distinct tokens", distinct.len());
}
