//! What every demo run shares before any arm trains: the task, the tokenizer, the SFT model
//! (saved as a Hugging Face directory), the on-policy preference pairs (JSONL), and the SFT
//! model's own answers to a set of prompts (the baseline every arm is compared with).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use ganpo::model::{CausalLm, Trainability, load_model, save_hf};
use ganpo::tokenize::Tokenizer;
use ganpo::{Error, Result};
use serde::{Deserialize, Serialize};

use super::config::DemoConfig;
use super::defects::inject_defects;
use super::evaluate::{EVAL_SEED, PerPrompt, TemperatureRow, evaluate_at};
use super::pairs::{PairConfig, build_pairs, write_jsonl};
use super::sft::{SftConfig, demo_model_config, init_demo_model, train_sft};
use super::task::{TaskExample, sample_tasks};
use super::tokenizer::train_tokenizer;
use crate::judge::StructuredTaskJudge;

/// Seeds of the task samples: SFT demonstrations, training pairs, held-out generation prompts,
/// held-out pairs, validation prompts (`--tune`). Distinct seeds, distinct draws.
pub mod task_seeds {
    /// SFT demonstrations.
    pub const SFT: u64 = 1;
    /// Prompts of the training pairs.
    pub const TRAIN_PAIRS: u64 = 2;
    /// Held-out prompts of the generation-based evaluation.
    pub const HELDOUT: u64 = 3;
    /// Prompts of the held-out pairs.
    pub const HELDOUT_PAIRS: u64 = 4;
    /// Validation prompts (what `--tune` chooses knobs on).
    pub const VALIDATION: u64 = 5;
}

/// The SFT model, its tokenizer and the pair files.
pub struct Prepared {
    /// The demo tokenizer.
    pub tokenizer: Tokenizer,
    /// The SFT model, frozen (every arm's starting point and KL reference).
    pub reference: CausalLm,
    /// Where the SFT model is saved.
    pub sft_dir: PathBuf,
    /// Training pairs (JSONL).
    pub train_path: PathBuf,
    /// Held-out pairs (JSONL).
    pub eval_path: PathBuf,
    /// SFT loss, first and last step.
    pub sft_loss: (f64, f64),
    /// Training pairs, held-out pairs, prompts skipped (score gap below `min_gap`).
    pub pairs: (usize, usize, usize),
}

/// Creates directory `p` (and its parents), naming it in the error.
pub(super) fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(format!("creating {}", p.display()), e))
}

/// The settings that decide what [`prepare`] makes (its cache key), and what it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PreparedRecord {
    /// `[sft_examples, sft_steps, train_prompts, heldout_prompts, samples_per_prompt]`.
    sizes: [usize; 5],
    /// `[sft_defect_rate, sft_systematic_rate, min_gap, label_noise]`.
    rates: [f64; 4],
    sft_loss: (f64, f64),
    pairs: (usize, usize, usize),
}

impl PreparedRecord {
    fn key(config: &DemoConfig) -> ([usize; 5], [f64; 4]) {
        (
            [
                config.sft_examples,
                config.sft_steps as usize,
                config.train_prompts,
                config.heldout_prompts,
                config.samples_per_prompt,
            ],
            [
                config.sft_defect_rate,
                config.sft_systematic_rate,
                config.min_gap,
                config.label_noise,
            ],
        )
    }
}

/// Trains the SFT model and builds the pairs, calling `progress` with a line per stage. A rerun
/// into the same output directory with the same settings loads them back (`prepared.json`,
/// written last, says they are complete).
pub fn prepare(config: &DemoConfig, progress: &mut impl FnMut(&str)) -> Result<Prepared> {
    let out = &config.output;
    mkdir(out)?;
    let record_path = out.join("prepared.json");
    let sft_dir = out.join("sft");
    let data_dir = out.join("data");
    let (train_path, eval_path) = (data_dir.join("train.jsonl"), data_dir.join("eval.jsonl"));
    let key = PreparedRecord::key(config);
    let cached = std::fs::read_to_string(&record_path)
        .ok()
        .and_then(|t| serde_json::from_str::<PreparedRecord>(&t).ok())
        .filter(|r| (r.sizes, r.rates) == key && train_path.exists() && eval_path.exists());
    let record = match cached {
        Some(r) => {
            progress(&format!(
                "SFT model and pairs of an earlier run with the same settings: {} ({} train / {} held-out pairs)",
                sft_dir.display(),
                r.pairs.0,
                r.pairs.1
            ));
            r
        }
        None => {
            let _ = std::fs::remove_file(&record_path);
            let r = make(config, &sft_dir, &data_dir, progress)?;
            let json =
                serde_json::to_string_pretty(&r).map_err(|e| Error::Config(e.to_string()))?;
            ganpo::train::checkpoint_dir::write_file_atomically(&record_path, json.as_bytes())?;
            r
        }
    };
    let loaded = load_model(&sft_dir, Trainability::Frozen, DType::F32, &Device::Cpu)?;
    Ok(Prepared {
        tokenizer: loaded.tokenizer,
        reference: loaded.model,
        sft_dir,
        train_path,
        eval_path,
        sft_loss: record.sft_loss,
        pairs: record.pairs,
    })
}

/// Trains the SFT model into `sft_dir` and writes the pairs into `data_dir`.
fn make(
    config: &DemoConfig,
    sft_dir: &Path,
    data_dir: &Path,
    progress: &mut impl FnMut(&str),
) -> Result<PreparedRecord> {
    let device = Device::Cpu;
    let (tasks, defective) = inject_defects(
        &sample_tasks(task_seeds::SFT, config.sft_examples),
        config.sft_defect_rate,
        config.sft_systematic_rate,
        1,
    );
    let corpus: Vec<String> = tasks
        .iter()
        .flat_map(|t| [t.prompt.clone(), t.answer.clone()])
        .collect();
    let tok = train_tokenizer(&corpus, 400)?;
    let model = init_demo_model(demo_model_config(tok.vocab_size(), &tok), 3, &device)?;
    progress(&format!(
        "SFT: {} steps on {} task examples ({defective} with a defect)",
        config.sft_steps,
        tasks.len()
    ));
    let losses = train_sft(
        &model,
        &tok,
        &tasks,
        SftConfig {
            steps: config.sft_steps,
            batch_size: 16,
            learning_rate: 3e-3,
            seed: 0,
        },
    )?;
    save_hf(&model, &tok, None, sft_dir)?;
    let sft_loss = (losses[0], losses[losses.len() - 1]);
    progress(&format!(
        "SFT loss {:.3} → {:.3}; model saved to {}",
        sft_loss.0,
        sft_loss.1,
        sft_dir.display()
    ));
    let judge = StructuredTaskJudge;
    let pc = PairConfig {
        samples: config.samples_per_prompt,
        temperature: 1.0,
        max_new_tokens: 40,
        min_gap: config.min_gap,
        label_noise: config.label_noise,
        seed: 11,
    };
    let train_pairs = build_pairs(
        &model,
        &tok,
        &judge,
        &sample_tasks(task_seeds::TRAIN_PAIRS, config.train_prompts),
        pc,
    )?;
    // Held-out pairs are never noisy: they measure what the policy learned.
    let heldout_pairs = build_pairs(
        &model,
        &tok,
        &judge,
        &sample_tasks(task_seeds::HELDOUT_PAIRS, config.heldout_prompts),
        PairConfig {
            label_noise: 0.0,
            seed: 13,
            ..pc
        },
    )?;
    progress(&format!(
        "pairs: {} train ({} labels swapped) / {} held out; {} + {} prompts skipped (score gap < {})",
        train_pairs.records.len(),
        train_pairs.flipped,
        heldout_pairs.records.len(),
        train_pairs.ties_skipped,
        heldout_pairs.ties_skipped,
        config.min_gap,
    ));
    if train_pairs.records.is_empty() || heldout_pairs.records.is_empty() {
        return Err(Error::Training(
            "too few preference pairs; the SFT model's samples scored too alike".into(),
        ));
    }
    mkdir(data_dir)?;
    write_jsonl(&train_pairs.records, &data_dir.join("train.jsonl"))?;
    write_jsonl(&heldout_pairs.records, &data_dir.join("eval.jsonl"))?;
    let (sizes, rates) = PreparedRecord::key(config);
    Ok(PreparedRecord {
        sizes,
        rates,
        sft_loss,
        pairs: (
            train_pairs.records.len(),
            heldout_pairs.records.len(),
            train_pairs.ties_skipped + heldout_pairs.ties_skipped,
        ),
    })
}

/// The SFT model's answers to `tasks` at each temperature: its rows, its texts (the win-rate
/// opponent of every arm) and its per-prompt results.
pub struct Baseline {
    /// One row per temperature.
    pub rows: Vec<TemperatureRow>,
    /// The answers, per temperature.
    pub texts: Vec<Vec<String>>,
    /// Per-prompt results, per temperature.
    pub per_prompt: Vec<PerPrompt>,
}

impl Prepared {
    /// Samples and scores the SFT model's answers to `tasks` at each of `temperatures`.
    pub fn baseline(&self, tasks: &[TaskExample], temperatures: &[f64]) -> Result<Baseline> {
        let judge = StructuredTaskJudge;
        let mut b = Baseline {
            rows: Vec::new(),
            texts: Vec::new(),
            per_prompt: Vec::new(),
        };
        for &t in temperatures {
            let e = evaluate_at(
                &self.reference,
                &self.reference,
                &self.tokenizer,
                &judge,
                tasks,
                t,
                EVAL_SEED,
                None,
            )?;
            b.rows.push(e.row);
            b.per_prompt.push(e.per_prompt);
            b.texts.push(e.texts);
        }
        Ok(b)
    }
}
