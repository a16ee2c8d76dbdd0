//! Generation-based evaluation of the demo's models: at each temperature, the rule judge's score
//! (content and structure), the structure-validity rate, response length, win rate against the
//! SFT model's samples on the same prompts and seed, and the Monte-Carlo KL to the reference.

use ganpo::Result;
use ganpo::data::BatchTensors;
use ganpo::generate::{Generation, GenerationConfig, SamplingConfig, generate};
use ganpo::logps::sequence_logps;
use ganpo::model::CausalLm;
use ganpo::tokenize::Tokenizer;
use serde::Serialize;

use super::sft::encode_example;
use super::task::TaskExample;
use crate::judge::{Judge, win_rate};

/// One (model, temperature) row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemperatureRow {
    /// Sampling temperature (0 = greedy).
    pub temperature: f64,
    /// Mean judge score in [0, 1].
    pub score: f64,
    /// Mean content sub-score.
    pub content: f64,
    /// Mean structure sub-score.
    pub structure: f64,
    /// Fraction of responses with a perfect structure score.
    pub structure_valid_rate: f64,
    /// Mean response length in tokens.
    pub mean_length: f64,
    /// Win rate against the SFT model's responses (ties count half).
    pub win_rate_vs_sft: f64,
    /// Monte-Carlo KL(policy ‖ reference) per response, in nats.
    pub kl_to_reference: f64,
}

/// Prompt token ids of `tasks`.
pub fn prompt_ids(tokenizer: &Tokenizer, tasks: &[TaskExample]) -> Result<Vec<Vec<u32>>> {
    tasks
        .iter()
        .map(|t| encode_example(tokenizer, t).map(|(ids, n)| ids[..n].to_vec()))
        .collect()
}

/// Samples one response per prompt.
pub fn sample(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    temperature: f64,
    seed: u64,
) -> Result<Vec<Generation>> {
    let config = GenerationConfig {
        max_new_tokens: 40,
        min_new_tokens: 0,
        sampling: SamplingConfig {
            temperature,
            top_k: None,
            top_p: None,
        },
        seed,
        stop_strings: Vec::new(),
    };
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(16) {
        out.extend(generate(model, tokenizer, chunk, &config)?);
    }
    Ok(out)
}

/// Summed log-probs of each response (its tokens after the prompt) under `model`.
fn response_logps(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    responses: &[Generation],
) -> Result<Vec<f64>> {
    let pad = tokenizer.pad_id();
    let mut all = Vec::with_capacity(prompts.len());
    for (ps, rs) in prompts.chunks(16).zip(responses.chunks(16)) {
        let rows: Vec<(Vec<u32>, usize)> = ps
            .iter()
            .zip(rs)
            .map(|(p, r)| ([p.as_slice(), r.tokens.as_slice()].concat(), p.len()))
            .collect();
        let rows: Vec<(&[u32], usize)> = rows.iter().map(|(ids, p)| (ids.as_slice(), *p)).collect();
        let b = BatchTensors::from_rows(&rows, pad, model.device())?;
        let out = model.forward(&b.input_ids, &b.attention_mask)?;
        let seq = sequence_logps(&out.logits.detach(), &b.input_ids, &b.loss_mask)?;
        all.extend(
            seq.logps
                .to_dtype(candle_core::DType::F64)?
                .to_vec1::<f64>()?,
        );
    }
    Ok(all)
}

/// Per-prompt results of one (model, temperature), in prompt order: what every verdict of the
/// report is recomputed from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerPrompt {
    /// Judge score of each response.
    pub scores: Vec<f64>,
    /// Whether each response's structure is perfect.
    pub structure_valid: Vec<bool>,
    /// Length of each response in tokens.
    pub lengths: Vec<usize>,
}

/// What evaluating one model at one temperature produced.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The summary row.
    pub row: TemperatureRow,
    /// The responses.
    pub texts: Vec<String>,
    /// Per-prompt scores, validity and lengths.
    pub per_prompt: PerPrompt,
}

/// Evaluates `policy` at one temperature against the SFT responses `sft` (same prompts and seed);
/// `None` when `policy` is the SFT model itself (its win rate against itself is ½: all ties).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_at(
    policy: &CausalLm,
    reference: &CausalLm,
    tokenizer: &Tokenizer,
    judge: &dyn Judge,
    tasks: &[TaskExample],
    temperature: f64,
    seed: u64,
    sft: Option<&[String]>,
) -> Result<Evaluation> {
    let prompts = prompt_ids(tokenizer, tasks)?;
    let responses = sample(policy, tokenizer, &prompts, temperature, seed)?;
    let texts: Vec<String> = responses.iter().map(|r| r.text.clone()).collect();
    let n = tasks.len().max(1) as f64;
    let (mut score, mut content, mut structure, mut valid) = (0.0, 0.0, 0.0, 0.0);
    let mut per_prompt = PerPrompt {
        scores: Vec::with_capacity(tasks.len()),
        structure_valid: Vec::with_capacity(tasks.len()),
        lengths: responses.iter().map(|r| r.tokens.len()).collect(),
    };
    for (t, text) in tasks.iter().zip(&texts) {
        let s = judge.score(&t.prompt, text);
        score += s.score;
        content += s.components.get("content").copied().unwrap_or(0.0);
        let st = s.components.get("structure").copied().unwrap_or(0.0);
        structure += st;
        valid += f64::from(u8::from(st >= 1.0));
        per_prompt.scores.push(s.score);
        per_prompt.structure_valid.push(st >= 1.0);
    }
    let policy_lp = response_logps(policy, tokenizer, &prompts, &responses)?;
    let ref_lp = response_logps(reference, tokenizer, &prompts, &responses)?;
    let kl = policy_lp
        .iter()
        .zip(&ref_lp)
        .map(|(p, q)| p - q)
        .sum::<f64>()
        / n;
    let prompts_text: Vec<String> = tasks.iter().map(|t| t.prompt.clone()).collect();
    let wins = match sft {
        Some(sft) => win_rate(judge, &prompts_text, &texts, sft)?.rate,
        None => 0.5,
    };
    let row = TemperatureRow {
        temperature,
        score: score / n,
        content: content / n,
        structure: structure / n,
        structure_valid_rate: valid / n,
        mean_length: responses.iter().map(|r| r.tokens.len() as f64).sum::<f64>() / n,
        win_rate_vs_sft: wins,
        kl_to_reference: kl,
    };
    Ok(Evaluation {
        row,
        texts,
        per_prompt,
    })
}

/// What every model of a demo run is evaluated against: the SFT reference, the held-out tasks,
/// the temperatures and the SFT model's own answers at each.
pub struct EvalContext<'a> {
    /// The SFT model (KL reference).
    pub reference: &'a CausalLm,
    /// The demo tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// The rule judge.
    pub judge: &'a dyn Judge,
    /// Held-out tasks.
    pub tasks: &'a [TaskExample],
    /// Temperatures, in report order.
    pub temperatures: &'a [f64],
    /// The SFT model's answers at each temperature (the win-rate opponent).
    pub sft_texts: &'a [Vec<String>],
}

/// Seed of every evaluation sample (the SFT answers use it too, so comparisons are paired).
pub const EVAL_SEED: u64 = 1000;

impl EvalContext<'_> {
    /// Loads the Hugging Face directory `dir` and evaluates it at every temperature (or, when
    /// `only` is not empty, at those of them that it lists).
    pub fn evaluate_dir(
        &self,
        dir: &std::path::Path,
        only: &[f64],
    ) -> Result<(Vec<TemperatureRow>, Vec<PerPrompt>)> {
        let policy = ganpo::model::load_model(
            dir,
            ganpo::model::Trainability::Frozen,
            candle_core::DType::F32,
            self.reference.device(),
        )?
        .model;
        let (mut rows, mut per_prompt) = (Vec::new(), Vec::new());
        for (i, &t) in self.temperatures.iter().enumerate() {
            if !only.is_empty() && !only.iter().any(|o| (o - t).abs() < 1e-9) {
                continue;
            }
            let e = evaluate_at(
                &policy,
                self.reference,
                self.tokenizer,
                self.judge,
                self.tasks,
                t,
                EVAL_SEED,
                Some(&self.sft_texts[i]),
            )?;
            rows.push(e.row);
            per_prompt.push(e.per_prompt);
        }
        Ok((rows, per_prompt))
    }
}
