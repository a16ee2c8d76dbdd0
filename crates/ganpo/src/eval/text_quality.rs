//! Surface measures of a generated text's quality that need no model: distinct-n (the fraction of
//! its word n-grams that are distinct, Li et al. 2016) and a repetition rate (the fraction of its
//! word n-grams that repeat an earlier one, Welleck et al. 2020's seq-rep-n). Words are the text's
//! whitespace-separated tokens, lower-cased.

use std::collections::HashSet;

/// The lower-cased whitespace-separated words of `text`.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_lowercase).collect()
}

/// Distinct n-grams over all n-grams of `words`; `None` when it has fewer than `n` words.
pub fn distinct_n(words: &[String], n: usize) -> Option<f64> {
    if n == 0 || words.len() < n {
        return None;
    }
    let grams: Vec<&[String]> = words.windows(n).collect();
    let distinct: HashSet<&[String]> = grams.iter().copied().collect();
    Some(distinct.len() as f64 / grams.len() as f64)
}

/// The fraction of `words`' n-grams that already occurred earlier in it (0 for a text without
/// repeats, near 1 for a loop); `None` when it has fewer than `n` words.
pub fn repetition_rate(words: &[String], n: usize) -> Option<f64> {
    distinct_n(words, n).map(|d| 1.0 - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_repeat_and_fresh_text_does_not() {
        let fresh = words("the cat sat on a mat today");
        assert_eq!(distinct_n(&fresh, 2), Some(1.0));
        assert_eq!(repetition_rate(&fresh, 4), Some(0.0));
        let looped = words("go on go on go on go on");
        // 7 bigrams, 2 distinct ("go on", "on go").
        assert!((distinct_n(&looped, 2).unwrap() - 2.0 / 7.0).abs() < 1e-12);
        assert!(repetition_rate(&looped, 4).unwrap() > 0.5);
        assert_eq!(distinct_n(&words("one"), 2), None);
    }
}
