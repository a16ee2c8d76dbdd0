//! Offline preference losses: pure functions of per-pair summed log-probs and token counts that return
//! per-example losses and detached rewards; the caller reduces them.
//!
//! One file per loss family, each with its formula, paper and TRL convention next to the code:
//!
//! | `type` | function | uses |
//! |---|---|---|
//! | `sigmoid` (DPO, cDPO) | [`sigmoid`] | sums |
//! | `robust` | [`robust`] | sums |
//! | `ipo` | [`ipo()`] | averages |
//! | `hinge` | [`hinge`] | sums |
//! | `exo_pair` | [`exo_pair`] | sums |
//! | `nca_pair` | [`nca_pair`] | sums |
//! | `bco_pair` (legacy, running δ) | [`bco_pair`] | sums |
//! | `sppo_hard` | [`sppo_hard`] | sums |
//! | `aot`, `aot_unpaired` | [`aot()`], [`aot_unpaired`] | sums, sorted over the batch |
//! | `apo_zero`, `apo_down` | [`apo_zero`], [`apo_down`] | sums |
//! | `discopop` | [`discopop()`] | sums |
//! | `sigmoid_norm` | [`sigmoid_norm`] | averages |
//! | `simpo` (reference-free) | [`simpo()`] | averages |
//! | `cpo` (reference-free) | [`cpo()`] | sums |
//! | `orpo` (reference-free) | [`orpo()`] | averages |
//!
//! Composable terms, configured on [`LossConfig`] and applied by [`Loss::compute`]: RPO's NLL
//! ([`nll()`]), WPO weighting ([`wpo_weights`]), LD-DPO ([`length_desensitized_logps`]) and weighted
//! mixes. Shared numerics (stable log σ, softplus, log(1 − eˣ)) live in [`numerics`].
//!
//! Every loss is checked against TRL or a transcription of its paper by the golden test
//! `tests/losses.rs` (fixture generator `tools/golden/losses.py`).

mod aot;
mod apo;
mod bco;
mod config;
mod cpo;
mod discopop;
mod dpo;
mod exo;
mod inputs;
mod ipo;
mod ld;
mod loss;
mod nca;
mod nll;
pub mod numerics;
mod objective;
mod orpo;
mod simpo;
mod wpo;

pub use aot::{aot, aot_unpaired};
pub use apo::{apo_down, apo_zero};
pub use bco::{BcoRunningMean, bco_pair};
pub use config::{LossConfig, MixComponent};
pub use cpo::cpo;
pub use discopop::discopop;
pub use dpo::{hinge, robust, sigmoid, sigmoid_norm};
pub use exo::exo_pair;
pub use inputs::{LossInputs, LossOutput, TokenLogps, WpoLogWeights};
pub use ipo::{ipo, sppo_hard};
pub use ld::length_desensitized_logps;
pub use loss::{Loss, LossState};
pub use nca::nca_pair;
pub use nll::nll;
pub use objective::{
    BetaParams, CpoParams, DiscopopParams, ExoParams, Objective, SimpoParams, SmoothedParams,
};
pub use orpo::orpo;
pub use simpo::{SimpoLossType, simpo};
pub use wpo::wpo_weights;
