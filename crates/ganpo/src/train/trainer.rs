//! Everything a run holds, as plain values: the policy and its optimizer, the frozen reference, the
//! loss and its state, and (with GANPO) two discriminators with their own optimizers and the
//! running means. Which optimizer updates which parameters is a data fact: each optimizer is built
//! from exactly the variables it owns.

use candle_core::{DType, Device};

use crate::config::train::{Compat, GanpoSection, TrainConfig};
use crate::ganpo::init_from::{CHOSEN_FILE, REJECTED_FILE, load_initial_weights};
use crate::ganpo::{Discriminator, RunningMeans};
use crate::losses::{Loss, LossState};
use crate::model::{CausalLm, Trainability, load_model};
use crate::optim::{AdamW, AdamWConfig, Schedule, ScheduleKind};
use crate::tokenize::Tokenizer;
use crate::train::data_order::DataCursor;
use crate::train::grad_accum::GradAccumulator;
use crate::train::phases::PhaseTimes;
use crate::{Error, Result};

/// The GANPO half of a run.
pub struct GanpoParts {
    /// The `[ganpo]` settings.
    pub settings: GanpoSection,
    /// D⁺, scoring chosen sequences.
    pub plus: Discriminator,
    /// D⁻, scoring rejected sequences.
    pub minus: Discriminator,
    /// The six running means.
    pub means: RunningMeans,
    /// D⁺'s optimizer (its variables only).
    pub opt_plus: AdamW,
    /// D⁻'s optimizer (its variables only).
    pub opt_minus: AdamW,
    /// Discriminator learning-rate schedule: the policy's shape and warmup, indexed by optimizer
    /// step; with `compat = "authors"` their cosine over the run's steps, indexed by update.
    pub schedule: Schedule,
    /// `compat = "authors"`: discriminator gradients summed since the last gated update.
    pub pending: GradAccumulator,
}

impl GanpoParts {
    /// Both discriminators (fresh from `settings.seed`, or from `settings.init_from`), their
    /// optimizers and empty running means. `policy_schedule` gives the warmup and length.
    pub fn new(
        settings: &GanpoSection,
        hidden_size: usize,
        learning_rate: f64,
        policy_schedule: Schedule,
        device: &Device,
    ) -> Result<Self> {
        let authors = settings.compat == Compat::Authors;
        let disc = |offset: u64, file: &str| -> Result<Discriminator> {
            let seed = settings.seed.wrapping_mul(2).wrapping_add(offset);
            let mut d = Discriminator::new(
                &settings.discriminator,
                hidden_size,
                seed,
                DType::F32,
                device,
            )?;
            if let Some(dir) = &settings.init_from {
                load_initial_weights(&mut d, dir, file)?;
            }
            Ok(d)
        };
        let plus = disc(1, CHOSEN_FILE)?;
        let minus = disc(2, REJECTED_FILE)?;
        let opt_config = AdamWConfig {
            weight_decay: settings.disc_weight_decay,
            ..AdamWConfig::default()
        };
        let optimizer = |d: &Discriminator| -> Result<AdamW> {
            let opt = AdamW::new(&d.named_vars(), opt_config)?;
            // The authors' torch AdamW decays every discriminator parameter.
            Ok(if authors {
                opt.decaying_every_parameter()
            } else {
                opt
            })
        };
        Ok(GanpoParts {
            opt_plus: optimizer(&plus)?,
            opt_minus: optimizer(&minus)?,
            plus,
            minus,
            means: RunningMeans::new(settings.momentum)?,
            schedule: Schedule {
                learning_rate,
                // `get_scheduler("cosine", ...)` hard-coded in their `create_optimizer_and_scheduler`.
                kind: if authors {
                    ScheduleKind::Cosine
                } else {
                    policy_schedule.kind
                },
                ..policy_schedule
            },
            pending: GradAccumulator::default(),
            settings: settings.clone(),
        })
    }

    /// The discriminator learning rate of the next update after `policy_step` optimizer steps:
    /// the schedule at that step (ganpo), or at the number of updates made so far (authors).
    pub fn learning_rate(&self, policy_step: u64) -> f64 {
        let index = match self.settings.compat {
            Compat::Authors => self.opt_plus.step_count(),
            Compat::None => policy_step,
        };
        self.schedule.lr(index)
    }
}

/// A training run's state.
pub struct Trainer {
    /// The resolved configuration.
    pub config: TrainConfig,
    /// The policy (trainable).
    pub policy: CausalLm,
    /// The frozen reference, when the loss or GANPO needs it.
    pub reference: Option<CausalLm>,
    /// The policy's tokenizer.
    pub tokenizer: Tokenizer,
    /// `generation_config.json` of the starting checkpoint, saved with the policy.
    pub generation_config: Option<serde_json::Value>,
    /// The resolved loss.
    pub loss: Loss,
    /// Loss state carried across steps (BCO-pair's running mean).
    pub loss_state: LossState,
    /// The policy's AdamW.
    pub optimizer: AdamW,
    /// The policy's learning-rate schedule.
    pub schedule: Schedule,
    /// GANPO, when `[ganpo]` is present.
    pub ganpo: Option<GanpoParts>,
    /// Optimizer steps completed.
    pub step: u64,
    /// Position in the training data.
    pub cursor: DataCursor,
    /// The compute device.
    pub device: Device,
    /// `Some`: each step adds its wall-clock time per phase here (`ganpo bench`); `None` (the
    /// default): no clock is read.
    pub phase_times: Option<PhaseTimes>,
}

/// Whether the run's loss or GANPO uses the frozen reference.
pub fn needs_reference(config: &TrainConfig) -> Result<bool> {
    Ok(config.loss.resolve()?.requires_reference() || config.ganpo.is_some())
}

/// Parses `cpu` / `cuda:N`.
pub fn parse_device(name: &str) -> Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let index: usize = name
        .strip_prefix("cuda:")
        .or_else(|| (name == "cuda").then_some("0"))
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| Error::Config(format!("unknown device `{name}`; use `cpu` or `cuda:N`")))?;
    Device::new_cuda(index).map_err(|e| {
        Error::Config(format!(
            "device `{name}` is unavailable ({e}); ganpo must be built with `--features cuda`"
        ))
    })
}

impl Trainer {
    /// Builds a fresh run: loads the policy (trainable) and, when needed, the reference (frozen),
    /// and initializes the discriminators. The schedules are sized by [`Trainer::set_total_steps`]
    /// once the run's length is known ([`crate::train::setup::RunSetup`] does both).
    pub fn new(config: TrainConfig) -> Result<Self> {
        let device = parse_device(&config.model.device)?;
        let policy = crate::train::adapter::load_policy(&config, &device)?;
        Self::assemble(
            config,
            policy.model,
            policy.tokenizer,
            policy.generation_config,
            device,
        )
    }

    /// Builds a run around an already loaded policy (used by resume and by tests).
    pub fn assemble(
        config: TrainConfig,
        policy: CausalLm,
        tokenizer: Tokenizer,
        generation_config: Option<serde_json::Value>,
        device: Device,
    ) -> Result<Self> {
        let shared = crate::train::adapter::adapters_off_reference(&config, &policy);
        let reference = if !needs_reference(&config)? {
            None
        } else if shared.is_some() {
            shared
        } else {
            let path = config
                .model
                .reference
                .as_ref()
                .unwrap_or(&config.model.path);
            Some(load_model(path, Trainability::Frozen, DType::F32, &device)?.model)
        };
        Self::assemble_with_reference(
            config,
            policy,
            reference,
            tokenizer,
            generation_config,
            device,
        )
    }

    /// Builds a run around an already built policy and frozen reference (`None` when neither the
    /// loss nor GANPO uses one); `ganpo bench` uses it for randomly initialized models.
    pub fn assemble_with_reference(
        config: TrainConfig,
        mut policy: CausalLm,
        reference: Option<CausalLm>,
        tokenizer: Tokenizer,
        generation_config: Option<serde_json::Value>,
        device: Device,
    ) -> Result<Self> {
        if reference.is_none() && needs_reference(&config)? {
            return Err(Error::Config(
                "this loss (or GANPO) needs a reference model, and none was given".into(),
            ));
        }
        if let Some(r) = &reference
            && r.config().vocab_size != policy.config().vocab_size
        {
            return Err(Error::Config(format!(
                "model.reference has a vocabulary of {} tokens but the policy (model.path) has {}; the reference must read the policy's token ids: point model.reference at a model with the policy's tokenizer (or leave it out to use the policy's own weights)",
                r.config().vocab_size,
                policy.config().vocab_size
            )));
        }
        let loss = config.loss.resolve()?;
        let t = &config.training;
        policy.set_gradient_checkpointing(t.gradient_checkpointing);
        // Unsized (0 steps) until `set_total_steps`.
        let schedule = Schedule {
            learning_rate: t.learning_rate,
            kind: t.lr_scheduler_type,
            warmup_steps: 0,
            total_steps: 0,
        };
        let optimizer = AdamW::new(policy.vars(), config.optimizer)?;
        let ganpo = match (&config.ganpo, config.disc_learning_rate()) {
            (Some(g), Some(disc_lr)) => Some(GanpoParts::new(
                g,
                policy.config().hidden_size,
                disc_lr,
                schedule,
                &device,
            )?),
            _ => None,
        };
        Ok(Trainer {
            loss,
            loss_state: LossState::default(),
            optimizer,
            schedule,
            ganpo,
            reference,
            policy,
            tokenizer,
            generation_config,
            step: 0,
            cursor: DataCursor::default(),
            device,
            config,
            phase_times: None,
        })
    }

    /// Sizes the policy and discriminator schedules for `total` optimizer steps (warmup from
    /// `warmup_steps`, else `warmup_ratio` of the total): the one place the warmup is computed.
    /// Schedules are pure functions of the step, so this is called once the dataset (and so the
    /// run length, [`crate::train::setup::total_steps`]) is known; a trainer steps only once sized.
    pub fn set_total_steps(&mut self, total: u64) {
        let t = &self.config.training;
        let warmup = if t.warmup_steps > 0 {
            t.warmup_steps
        } else {
            Schedule::warmup_from_ratio(t.warmup_ratio, total)
        };
        self.schedule.total_steps = total;
        self.schedule.warmup_steps = warmup;
        if let Some(g) = self.ganpo.as_mut() {
            g.schedule.total_steps = total;
            g.schedule.warmup_steps = warmup;
        }
    }

    /// Whether GANPO runs in the authors' compatibility mode.
    pub fn authors_compat(&self) -> bool {
        self.ganpo
            .as_ref()
            .is_some_and(|g| g.settings.compat == Compat::Authors)
    }
}
