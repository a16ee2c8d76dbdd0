//! A lexicon sentiment judge: VADER (Hutto & Gilbert, 2014) through the `vader_sentiment` crate,
//! the Rust port. Its compound scores differ slightly from the Python reference `vaderSentiment`
//! 3.3.2 on some sentences (0.885 against 0.846 on one); ganpo uses the Rust port's values.

use std::collections::BTreeMap;

use super::{Judge, JudgeScore};

/// Scores a response by its VADER compound sentiment, mapped from [−1, 1] to [0, 1]: the classic
/// "controlled sentiment generation" objective of the DPO paper.
pub struct SentimentJudge {
    analyzer: vader_sentiment::SentimentIntensityAnalyzer<'static>,
}

impl std::fmt::Debug for SentimentJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentimentJudge(vader)")
    }
}

impl Default for SentimentJudge {
    fn default() -> Self {
        SentimentJudge {
            analyzer: vader_sentiment::SentimentIntensityAnalyzer::new(),
        }
    }
}

impl Judge for SentimentJudge {
    fn name(&self) -> &str {
        "vader-sentiment"
    }

    fn score(&self, _prompt: &str, response: &str) -> JudgeScore {
        let scores = self.analyzer.polarity_scores(response);
        let compound = scores.get("compound").copied().unwrap_or(0.0);
        let mut components = BTreeMap::new();
        for key in ["pos", "neg", "neu"] {
            components.insert(key.to_string(), scores.get(key).copied().unwrap_or(0.0));
        }
        components.insert("compound".to_string(), compound);
        JudgeScore {
            score: (compound + 1.0) / 2.0,
            components,
        }
    }
}
