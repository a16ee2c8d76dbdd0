//! The evaluation report of a policy against its reference: preference metrics on held-out pairs,
//! one row of sampled-response metrics per temperature, and latent diagnostics, with the settings,
//! model paths and date, serializable as JSON (and printable, see [`EvalReport::to_table`]).

use serde::{Deserialize, Serialize};

use super::latent::{LatentDiagnostics, latent_diagnostics};
use super::preference::preference_eval;
use super::probe::ProbeConfig;
use super::sampled::{EvalPrompt, SampleSettings, TemperatureRow, temperature_row};
use crate::data::TokenizedPair;
use crate::judge::Judge;
use crate::model::LoadedModel;
use crate::tokenize::{CivilDateTime, Tokenizer};
use crate::train::metrics::Metrics;
use crate::{Error, Result};

/// What to evaluate and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSettings {
    /// DPO β of the preference metrics (rewards `β·(log π − log π_ref)`).
    pub beta: f64,
    /// One sampled-response row per temperature (0 = greedy).
    pub temperatures: Vec<f64>,
    /// Samples per prompt and temperature.
    pub samples: usize,
    /// Most new tokens per sample.
    pub max_new_tokens: usize,
    /// Base seed of the sampling streams.
    pub seed: u64,
    /// Pairs or prompts per forward pass.
    pub batch_size: usize,
    /// The linear probe's settings.
    pub probe: ProbeConfig,
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            beta: 0.1,
            temperatures: vec![0.0, 0.7, 1.0, 1.5],
            samples: 1,
            max_new_tokens: 64,
            seed: 0,
            batch_size: 8,
            probe: ProbeConfig::default(),
        }
    }
}

/// The full report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// When the evaluation ran (UTC, ISO 8601).
    pub date: String,
    /// Where the policy was loaded from.
    pub policy: String,
    /// Where the reference was loaded from.
    pub reference: String,
    /// The judge's name, if any.
    pub judge: Option<String>,
    /// The settings used.
    pub settings: EvalSettings,
    /// Distinct prompts sampled from.
    pub prompts: usize,
    /// Preference pairs evaluated.
    pub pairs: usize,
    /// Held-out preference metrics (`eval_*`), when preference data was given.
    pub preference: Option<Metrics>,
    /// Latent diagnostics on the preference data, when given.
    pub latent: Option<LatentDiagnostics>,
    /// One row per temperature, in the order given.
    pub temperatures: Vec<TemperatureRow>,
}

/// The distinct prompts of preference pairs (in order of first appearance), as the models saw them
/// (the prompt tokens of each chosen sequence) with their decoded text for judges.
pub fn prompts_from_pairs(
    pairs: &[TokenizedPair],
    tokenizer: &Tokenizer,
) -> Result<Vec<EvalPrompt>> {
    let mut seen = std::collections::HashSet::new();
    let mut prompts = Vec::new();
    for pair in pairs {
        let ids = pair.chosen.input_ids[..pair.chosen.prompt_len].to_vec();
        if seen.insert(ids.clone()) {
            prompts.push(EvalPrompt {
                text: tokenizer.decode(&ids, true)?,
                ids,
            });
        }
    }
    Ok(prompts)
}

/// Prompts from plain texts, tokenized with the tokenizer's special tokens (e.g. BOS).
pub fn prompts_from_texts(texts: &[String], tokenizer: &Tokenizer) -> Result<Vec<EvalPrompt>> {
    texts
        .iter()
        .map(|t| {
            let ids = tokenizer.encode(t, true)?;
            if ids.is_empty() {
                return Err(Error::Config(format!(
                    "prompt {t:?} tokenizes to nothing; cannot sample from it"
                )));
            }
            Ok(EvalPrompt {
                text: t.clone(),
                ids,
            })
        })
        .collect()
}

/// Evaluates `policy` against `reference`: preference metrics and latent diagnostics on `pairs`
/// (if any), and a sampled-response row per temperature on `prompts` (judged when `judge` is
/// given). The models must share a vocabulary; the policy's tokenizer is used for both.
pub fn evaluate(
    policy: &LoadedModel,
    reference: &LoadedModel,
    pairs: Option<&[TokenizedPair]>,
    prompts: &[EvalPrompt],
    judge: Option<&dyn Judge>,
    settings: &EvalSettings,
) -> Result<EvalReport> {
    let (pv, rv) = (
        policy.model.config().vocab_size,
        reference.model.config().vocab_size,
    );
    if pv != rv {
        return Err(Error::Config(format!(
            "policy ({}) and reference ({}) have different vocabularies ({pv} vs {rv} tokens); evaluate a policy against the model it was trained from",
            policy.source.display(),
            reference.source.display()
        )));
    }
    if !settings.beta.is_finite() || settings.beta <= 0.0 {
        return Err(Error::Config(format!(
            "beta must be positive, got {}",
            settings.beta
        )));
    }
    let tokenizer = &policy.tokenizer;
    let (preference, latent) = match pairs {
        None => (None, None),
        Some(pairs) => {
            let pe = preference_eval(
                &policy.model,
                &reference.model,
                pairs,
                tokenizer.pad_id(),
                settings.beta,
                settings.batch_size,
            )?;
            let latent = latent_diagnostics(&pe.latents, &settings.probe)?;
            (Some(pe.metrics), Some(latent))
        }
    };
    let temperatures = settings
        .temperatures
        .iter()
        .map(|&temperature| {
            let sample = SampleSettings {
                temperature,
                samples: settings.samples,
                max_new_tokens: settings.max_new_tokens,
                seed: settings.seed,
                batch_size: settings.batch_size,
            };
            temperature_row(
                &policy.model,
                &reference.model,
                tokenizer,
                prompts,
                judge,
                &sample,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EvalReport {
        date: CivilDateTime::now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy: policy.source.display().to_string(),
        reference: reference.source.display().to_string(),
        judge: judge.map(|j| j.name().to_string()),
        settings: settings.clone(),
        prompts: prompts.len(),
        pairs: pairs.map_or(0, <[TokenizedPair]>::len),
        preference,
        latent,
        temperatures,
    })
}
