//! `per_prompt.json`: every per-prompt value behind the report's means and verdicts (no texts;
//! those stay in `eval/`), so the verdicts can be recomputed from one file without the models.

use std::collections::BTreeMap;
use std::path::Path;

use ganpo::Result;
use ganpo::train::checkpoint_dir::write_file_atomically;
use serde::Serialize;

use super::evaluate::TemperatureSamples;
use super::verdicts::SampleTable;

/// One model's values at one temperature, for one seed; every list is in held-out prompt order.
#[derive(Debug, Serialize)]
pub struct PerPrompt {
    /// Sampling temperature.
    pub temperature: f64,
    /// VADER compound of each sample (the reward).
    pub reward: Vec<f64>,
    /// `log π(y) − log π_ref(y)` (the Monte-Carlo sequence-KL term).
    pub log_ratio: Vec<f64>,
    /// Exact token KL summed along the sample.
    pub token_kl_sum: Vec<f64>,
    /// The reference's NLL per scored position.
    pub ref_nll: Vec<f64>,
    /// Generated tokens.
    pub length: Vec<usize>,
    /// Whether the sample ended on EOS.
    pub eos: Vec<bool>,
    /// Distinct-2 (`null`: fewer than 2 words).
    pub distinct2: Vec<Option<f64>>,
    /// Repeated word 4-grams (`null`: fewer than 4 words).
    pub repetition4: Vec<Option<f64>>,
}

impl PerPrompt {
    fn new(t: &TemperatureSamples) -> Self {
        let s = &t.samples;
        PerPrompt {
            temperature: t.temperature,
            reward: s.iter().map(|x| x.reward).collect(),
            log_ratio: s.iter().map(|x| x.log_ratio()).collect(),
            token_kl_sum: s.iter().map(|x| x.token_kl_sum).collect(),
            ref_nll: s.iter().map(|x| x.ref_nll()).collect(),
            length: s.iter().map(|x| x.length).collect(),
            eos: s.iter().map(|x| x.eos).collect(),
            distinct2: s.iter().map(|x| x.distinct2).collect(),
            repetition4: s.iter().map(|x| x.repetition4).collect(),
        }
    }
}

/// Writes `per_prompt.json` into `dir`: `{"prompts": [...], "models": {name: [[per temperature]
/// per seed]}}` (compact JSON; floats round-trip exactly).
pub fn write_per_prompt(dir: &Path, prompts: &[String], samples: &SampleTable) -> Result<()> {
    let models: BTreeMap<&str, Vec<Vec<PerPrompt>>> = samples
        .iter()
        .map(|(name, seeds)| {
            let seeds = seeds
                .iter()
                .map(|per_t| per_t.iter().map(PerPrompt::new).collect())
                .collect();
            (name.as_str(), seeds)
        })
        .collect();
    #[derive(Serialize)]
    struct File<'a> {
        prompts: &'a [String],
        models: BTreeMap<&'a str, Vec<Vec<PerPrompt>>>,
    }
    let path = dir.join("per_prompt.json");
    let text = serde_json::to_string(&File { prompts, models })
        .map_err(|e| ganpo::Error::Config(format!("serializing {}: {e}", path.display())))?;
    write_file_atomically(&path, text.as_bytes())
}
