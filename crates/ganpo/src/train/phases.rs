//! Wall-clock time per phase of a training step, for `ganpo bench`. Off by default, and then no
//! clock is read: [`PhaseClock::lap`] does nothing.
//!
//! candle runs eagerly on the CPU (each op has finished when it returns), so the wall-clock time
//! between two points of the step is the cost of the ops issued between them.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The phases of [`Trainer::train_step`](crate::train::trainer::Trainer::train_step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reference forward and its log-probs (no graph).
    ReferenceForward,
    /// Policy forward up to logits and last hidden states (builds the graph).
    PolicyForward,
    /// Policy log-probs, the preference loss, GANPO's generator term through the frozen
    /// discriminators, and the step's metrics.
    LogpsAndLoss,
    /// GANPO: discriminator scores on detached latents, their backward and AdamW steps.
    DiscriminatorUpdate,
    /// The policy's backward pass (gradient accumulation included).
    Backward,
    /// Global-norm clip, finiteness check and the policy's AdamW step.
    Optimizer,
}

/// Seconds spent in each [`Phase`], accumulated while [`Trainer::phase_times`] is `Some`.
///
/// [`Trainer::phase_times`]: crate::train::trainer::Trainer::phase_times
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// [`Phase::ReferenceForward`].
    pub reference_forward: f64,
    /// [`Phase::PolicyForward`].
    pub policy_forward: f64,
    /// [`Phase::LogpsAndLoss`].
    pub logps_and_loss: f64,
    /// [`Phase::DiscriminatorUpdate`].
    pub discriminator_update: f64,
    /// [`Phase::Backward`].
    pub backward: f64,
    /// [`Phase::Optimizer`].
    pub optimizer: f64,
}

impl PhaseTimes {
    /// Every phase, in the order of the step.
    pub const ALL: [Phase; 6] = [
        Phase::ReferenceForward,
        Phase::PolicyForward,
        Phase::LogpsAndLoss,
        Phase::DiscriminatorUpdate,
        Phase::Backward,
        Phase::Optimizer,
    ];

    /// Seconds spent in `phase`.
    pub fn get(&self, phase: Phase) -> f64 {
        match phase {
            Phase::ReferenceForward => self.reference_forward,
            Phase::PolicyForward => self.policy_forward,
            Phase::LogpsAndLoss => self.logps_and_loss,
            Phase::DiscriminatorUpdate => self.discriminator_update,
            Phase::Backward => self.backward,
            Phase::Optimizer => self.optimizer,
        }
    }

    fn get_mut(&mut self, phase: Phase) -> &mut f64 {
        match phase {
            Phase::ReferenceForward => &mut self.reference_forward,
            Phase::PolicyForward => &mut self.policy_forward,
            Phase::LogpsAndLoss => &mut self.logps_and_loss,
            Phase::DiscriminatorUpdate => &mut self.discriminator_update,
            Phase::Backward => &mut self.backward,
            Phase::Optimizer => &mut self.optimizer,
        }
    }

    /// Seconds in all phases together.
    pub fn total(&self) -> f64 {
        Self::ALL.iter().map(|&p| self.get(p)).sum()
    }

    /// Adds `seconds` to `phase`.
    pub fn add(&mut self, phase: Phase, seconds: f64) {
        *self.get_mut(phase) += seconds;
    }
}

/// A lap timer over one step: [`lap`](Self::lap) charges the time since the previous lap (or the
/// start) to a phase. Without a [`PhaseTimes`] to fill it reads no clock.
pub(crate) struct PhaseClock<'a> {
    running: Option<(&'a mut PhaseTimes, Instant)>,
}

impl<'a> PhaseClock<'a> {
    /// Starts the clock now, accumulating into `times` (or doing nothing when `None`).
    pub(crate) fn start(times: Option<&'a mut PhaseTimes>) -> Self {
        PhaseClock {
            running: times.map(|t| (t, Instant::now())),
        }
    }

    /// Charges the time since the last lap to `phase`.
    pub(crate) fn lap(&mut self, phase: Phase) {
        if let Some((times, mark)) = &mut self.running {
            let now = Instant::now();
            times.add(phase, now.duration_since(*mark).as_secs_f64());
            *mark = now;
        }
    }
}
