//! GANPO discriminator, running means and adversarial losses: golden parity with a PyTorch port of
//! the authors' code (`tools/golden/discriminator.py`) and invariants of the discriminator step.

mod common;

#[path = "ganpo_disc/fused_stack.rs"]
mod fused_stack;
#[path = "ganpo_disc/golden.rs"]
mod golden;
#[path = "ganpo_disc/invariants.rs"]
mod invariants;
#[path = "ganpo_disc/stacked.rs"]
mod stacked;
#[path = "ganpo_disc/units.rs"]
mod units;
