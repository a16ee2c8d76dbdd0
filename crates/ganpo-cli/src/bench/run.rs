//! One benchmark run: for each mode (DPO, DPO + GANPO), build a trainer, take warm-up steps, then
//! time steps of the real [`Trainer::train_step`] with its per-phase clock on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use candle_core::{DType, Device};
use ganpo::config::train::TrainConfig;
use ganpo::model::init::random_weights;
use ganpo::model::{CausalLm, Trainability, Weights};
use ganpo::sysinfo::{peak_rss_mib, reset_peak_rss, rss_mib};
use ganpo::tokenize::{SpecialTokens, Tokenizer};
use ganpo::train::phases::PhaseTimes;
use ganpo::train::trainer::{Trainer, needs_reference, parse_device};
use ganpo::{Error, Result};

use super::batch::synthetic_batch;
use super::flops::step_flops;
use super::matmul::measure_peak;
use super::report::{BenchReport, ModeReport, ModelInfo};
use super::shape::BenchShape;

/// Which model is benchmarked.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A randomly initialized model of this shape (standard deviation 0.02).
    Random(BenchShape),
    /// A Hugging Face directory or GGUF file.
    Path(PathBuf),
}

/// What is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
    /// The preference loss alone (DPO sigmoid, β 0.1, unless overridden).
    Dpo,
    /// The preference loss plus GANPO's discriminators and generator term.
    Ganpo,
}

impl BenchMode {
    /// The mode's key in the report (`dpo`, `ganpo`).
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Dpo => "dpo",
            BenchMode::Ganpo => "ganpo",
        }
    }
}

impl FromStr for BenchMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dpo" => Ok(BenchMode::Dpo),
            "ganpo" => Ok(BenchMode::Ganpo),
            other => Err(Error::Config(format!(
                "unknown bench loss `{other}`; use `dpo` or `ganpo` (DPO + GANPO)"
            ))),
        }
    }
}

/// What to benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// The model.
    pub model: ModelSource,
    /// Preference pairs per step (`B`).
    pub batch_pairs: usize,
    /// Tokens per sequence (`T`), every one of them real (no padding).
    pub seq_len: usize,
    /// Prompt tokens per sequence (default `T / 2`).
    pub prompt_len: Option<usize>,
    /// Untimed steps per mode.
    pub warmup: usize,
    /// Timed steps per mode.
    pub steps: usize,
    /// Modes, run in this order.
    pub modes: Vec<BenchMode>,
    /// Seed of the random weights and token ids.
    pub seed: u64,
    /// `--set key=value` overrides of the training config (`ganpo.*` ones apply to GANPO only).
    pub overrides: Vec<String>,
    /// Build (and warm up) every mode's trainer first, then take their timed steps in turn, one of
    /// each per round: a slower stretch of the machine then slows every mode alike, which makes
    /// their ratio the fairest this process can measure. Peak RSS is then the process's, shared.
    pub interleave: bool,
}

impl BenchConfig {
    /// The defaults: 4 pairs × 256 tokens, 1 warm-up and 3 timed steps, DPO then DPO + GANPO.
    pub fn new(model: ModelSource) -> Self {
        BenchConfig {
            model,
            batch_pairs: 4,
            seq_len: 256,
            prompt_len: None,
            warmup: 1,
            steps: 3,
            modes: vec![BenchMode::Dpo, BenchMode::Ganpo],
            seed: 0,
            overrides: Vec::new(),
            interleave: false,
        }
    }

    /// Prompt tokens per sequence.
    pub fn prompt_len(&self) -> usize {
        self.prompt_len.unwrap_or(self.seq_len / 2)
    }

    /// The training config of `mode`: ganpo's defaults (TrainConfig's, the authors' discriminator
    /// unless the shape is tiny) for this batch, then the overrides.
    pub fn train_config(&self, mode: BenchMode) -> Result<TrainConfig> {
        let path = match &self.model {
            ModelSource::Random(shape) => format!("random:{}", shape.name()),
            ModelSource::Path(p) => p.display().to_string(),
        };
        let mut text = format!(
            "[model]\npath = {path:?}\n\n[data]\ntrain_file = \"synthetic\"\nmax_length = {}\nmax_prompt_length = {}\n\n\
             [training]\nper_device_train_batch_size = {}\nmax_steps = {}\nseed = {}\n",
            self.seq_len,
            self.prompt_len(),
            self.batch_pairs,
            self.warmup + self.steps,
            self.seed
        );
        if mode == BenchMode::Ganpo {
            text.push_str("\n[ganpo]\n");
            if let ModelSource::Random(shape) = self.model {
                let d = shape.discriminator();
                text.push_str(&format!(
                    "[ganpo.discriminator]\nwidth = {}\ndepth = {}\nheads = {}\ndropout = {}\nmax_positions = {}\n",
                    d.width, d.depth, d.heads, d.dropout, d.max_positions
                ));
            }
        }
        let overrides: Vec<String> = self
            .overrides
            .iter()
            .filter(|o| mode == BenchMode::Ganpo || !o.trim_start().starts_with("ganpo."))
            .cloned()
            .collect();
        let config = TrainConfig::from_toml(&text, &overrides, "ganpo bench")?;
        if config.training.gradient_accumulation_steps != 1 {
            return Err(Error::Config(
                "ganpo bench times one micro-batch per step; leave gradient_accumulation_steps at 1 and set --batch-pairs".into(),
            ));
        }
        if config.model.device != "cpu" {
            return Err(Error::Config(format!(
                "ganpo bench times CPU steps (device `{}` runs asynchronously, so wall-clock phases would be wrong)",
                config.model.device
            )));
        }
        Ok(config)
    }
}

/// A tokenizer with no vocabulary: the bench feeds token ids directly.
fn no_tokenizer() -> Tokenizer {
    let inner = tokenizers::Tokenizer::new(tokenizers::models::bpe::BPE::default());
    Tokenizer::from_parts(inner, SpecialTokens::default(), None, serde_json::json!({}))
}

/// The trainer of one mode, its schedules sized for the bench's warm-up and timed steps: loaded from the model path, or built around random weights with the
/// reference a frozen copy of the policy's initial weights.
fn build_trainer(bench: &BenchConfig, config: TrainConfig) -> Result<Trainer> {
    let total = (bench.warmup + bench.steps) as u64;
    let mut trainer = match bench.model {
        ModelSource::Random(shape) => random_trainer(bench, shape, config)?,
        ModelSource::Path(_) => Trainer::new(config)?,
    };
    trainer.set_total_steps(total);
    Ok(trainer)
}

/// A trainer around random weights of `shape`, the reference a frozen copy of them.
fn random_trainer(bench: &BenchConfig, shape: BenchShape, config: TrainConfig) -> Result<Trainer> {
    let device = parse_device(&config.model.device)?;
    let model_config = shape.model_config()?;
    let tensors = random_weights(&model_config, 0.02, bench.seed, &device)?;
    let build = |trainability| {
        let weights = Weights::new(
            tensors.clone(),
            Path::new("<random init>"),
            trainability,
            DType::F32,
            &device,
        );
        CausalLm::from_weights(model_config.clone(), weights, DType::F32, &device)
    };
    let policy = build(Trainability::Trainable)?;
    let reference = if needs_reference(&config)? {
        Some(build(Trainability::Frozen)?)
    } else {
        None
    };
    drop(tensors);
    Trainer::assemble_with_reference(config, policy, reference, no_tokenizer(), None, device)
}

/// One mode's trainer and batch after its warm-up, and the timed steps taken so far.
struct Timed {
    mode: BenchMode,
    trainer: Trainer,
    batch: ganpo::data::BatchTensors,
    rss_before_mib: Option<f64>,
    steps: Vec<f64>,
    phases: PhaseTimes,
    loss: f64,
}

/// Builds one mode's trainer and takes its warm-up steps.
fn prepare(bench: &BenchConfig, mode: BenchMode, progress: &mut dyn FnMut(&str)) -> Result<Timed> {
    let config = bench.train_config(mode)?;
    let rss_before_mib = rss_mib();
    let mut trainer = build_trainer(bench, config)?;
    let batch = synthetic_batch(
        bench.batch_pairs,
        bench.seq_len,
        bench.prompt_len(),
        trainer.policy.config().vocab_size,
        bench.seed,
        &trainer.device,
    )?;
    for i in 0..bench.warmup {
        let started = Instant::now();
        trainer.train_step(std::slice::from_ref(&batch), false)?;
        progress(&format!(
            "{}: warm-up step {}/{} {:.2} s",
            mode.name(),
            i + 1,
            bench.warmup,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(Timed {
        mode,
        trainer,
        batch,
        rss_before_mib,
        steps: Vec::new(),
        phases: PhaseTimes::default(),
        loss: f64::NAN,
    })
}

impl Timed {
    /// Takes one timed step.
    fn step(&mut self, bench: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Result<()> {
        self.trainer.phase_times = Some(PhaseTimes::default());
        let started = Instant::now();
        let metrics = self
            .trainer
            .train_step(std::slice::from_ref(&self.batch), false)?;
        let secs = started.elapsed().as_secs_f64();
        let times = self.trainer.phase_times.take().unwrap_or_default();
        for p in PhaseTimes::ALL {
            self.phases.add(p, times.get(p) / bench.steps as f64);
        }
        self.steps.push(secs);
        self.loss = metrics.get("loss").copied().unwrap_or(f64::NAN);
        progress(&format!(
            "{}: step {}/{} {secs:.2} s",
            self.mode.name(),
            self.steps.len(),
            bench.steps
        ));
        Ok(())
    }

    /// The mode's report (peak RSS measured by the caller), and the trainer's model config.
    fn report(
        self,
        bench: &BenchConfig,
        peak_rss_mib: Option<f64>,
    ) -> (ModeReport, ganpo::model::ModelConfig) {
        let model = self.trainer.policy.config().clone();
        let disc = self
            .trainer
            .ganpo
            .as_ref()
            .map(|g| (&g.settings.discriminator, g.settings.disc_steps));
        let flops = step_flops(&model, disc, bench.batch_pairs, bench.seq_len).total();
        let steps = self.steps;
        let step_s = steps.iter().sum::<f64>() / steps.len() as f64;
        let tokens = (2 * bench.batch_pairs * bench.seq_len) as f64;
        let report = ModeReport {
            step_s,
            step_s_min: steps.iter().copied().fold(f64::INFINITY, f64::min),
            step_s_all: steps,
            other_s: step_s - self.phases.total(),
            phases_s: self.phases,
            tokens_per_s: tokens / step_s,
            gflop_per_step: flops / 1e9,
            gflops: flops / 1e9 / step_s,
            fraction_of_peak: f64::NAN,
            rss_before_mib: self.rss_before_mib,
            peak_rss_mib,
            loss: self.loss,
        };
        (report, model)
    }
}

/// Every mode's report, one mode after the other or interleaved.
fn run_modes(
    bench: &BenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<(ModeReport, ganpo::model::ModelConfig)>> {
    if !bench.interleave {
        let mut reports = Vec::new();
        for &mode in &bench.modes {
            reset_peak_rss();
            let mut timed = prepare(bench, mode, progress)?;
            for _ in 0..bench.steps {
                timed.step(bench, progress)?;
            }
            reports.push(timed.report(bench, peak_rss_mib()));
        }
        return Ok(reports);
    }
    reset_peak_rss();
    let mut all = Vec::new();
    for &mode in &bench.modes {
        all.push(prepare(bench, mode, progress)?);
    }
    for _ in 0..bench.steps {
        for timed in &mut all {
            timed.step(bench, progress)?;
        }
    }
    let peak = peak_rss_mib();
    Ok(all.into_iter().map(|t| t.report(bench, peak)).collect())
}

/// Runs every mode of `bench`, then measures the matmul peak in the same process. `progress`
/// receives one line per step.
pub fn run_bench(bench: &BenchConfig, mut progress: impl FnMut(&str)) -> Result<BenchReport> {
    if bench.steps == 0 || bench.modes.is_empty() {
        return Err(Error::Config(
            "ganpo bench needs at least one timed step and one loss".into(),
        ));
    }
    ganpo::cpu::init_compute_threads();
    let mut modes = BTreeMap::new();
    let mut model = None;
    for (mode, (report, config)) in bench.modes.iter().zip(run_modes(bench, &mut progress)?) {
        modes.insert(mode.name().to_string(), report);
        model = Some(config);
    }
    let model = model.ok_or_else(|| Error::Config("no mode ran".into()))?;
    let tokens = 2 * bench.batch_pairs * bench.seq_len;
    progress("timing f32 matmuls");
    let matmul = measure_peak(&model, tokens, &Device::Cpu)?;
    let peak = matmul.iter().map(|t| t.gflops).fold(0.0, f64::max);
    for r in modes.values_mut() {
        r.fraction_of_peak = r.gflops / peak;
    }
    let ganpo_overhead = match (modes.get("dpo"), modes.get("ganpo")) {
        (Some(d), Some(g)) => Some(g.step_s / d.step_s),
        _ => None,
    };
    Ok(BenchReport {
        tool: "ganpo".into(),
        model: ModelInfo {
            source: match &bench.model {
                ModelSource::Random(s) => format!("random:{}", s.name()),
                ModelSource::Path(p) => p.display().to_string(),
            },
            parameters: model.num_parameters(),
            layers: model.num_hidden_layers,
            hidden_size: model.hidden_size,
            vocab_size: model.vocab_size,
        },
        dtype: "f32".into(),
        batch_pairs: bench.batch_pairs,
        seq_len: bench.seq_len,
        prompt_len: bench.prompt_len(),
        tokens_per_step: tokens,
        threads: candle_core::utils::get_num_threads(),
        warmup: bench.warmup,
        steps: bench.steps,
        overrides: bench.overrides.clone(),
        interleaved: bench.interleave,
        matmul_peak_gflops: peak,
        matmul,
        modes,
        ganpo_overhead,
    })
}
