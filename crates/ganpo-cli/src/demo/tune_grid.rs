//! The grids `ganpo demo --tune` searches: β × learning rate for a base loss, then λ ×
//! discriminator for GANPO on top of the base loss's choice — the same number of settings for
//! every arm.

use serde::Serialize;

use super::arms::{Arm, BaseLoss};
use super::config::{ArmKnobs, GanpoKnobs, LossKnobs};

/// The grids searched (each arm gets `len × len` settings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneGrid {
    /// DPO's β values.
    pub dpo_betas: Vec<f64>,
    /// SimPO's β values.
    pub simpo_betas: Vec<f64>,
    /// Learning rates (both losses).
    pub learning_rates: Vec<f64>,
    /// GANPO's λ values.
    pub lambdas: Vec<f64>,
    /// Discriminators: (width, depth, learning rate; `None` = the policy's lr / 2, the authors'
    /// ratio).
    pub discriminators: Vec<(usize, usize, Option<f64>)>,
}

impl TuneGrid {
    /// The grid of the default run (3 × 3 per arm), or `--quick`'s (2 × 1, a smoke test).
    pub fn new(quick: bool) -> Self {
        if quick {
            TuneGrid {
                dpo_betas: vec![0.1, 0.3],
                simpo_betas: vec![2.0, 4.0],
                learning_rates: vec![3e-5],
                lambdas: vec![0.3, 1.0],
                discriminators: vec![(64, 1, None)],
            }
        } else {
            TuneGrid {
                dpo_betas: vec![0.05, 0.1, 0.2],
                simpo_betas: vec![1.0, 2.0, 4.0],
                learning_rates: vec![1e-5, 3e-5, 1e-4],
                lambdas: vec![0.3, 1.0, 3.0],
                discriminators: vec![(64, 1, None), (64, 1, Some(3e-4)), (128, 2, Some(3e-4))],
            }
        }
    }
}

/// Settings of `arm` to try: the base grid, or GANPO's on top of the base's `chosen` knobs.
pub fn settings(arm: &Arm, grid: &TuneGrid, chosen: Option<LossKnobs>) -> Vec<ArmKnobs> {
    match (arm.ganpo, chosen) {
        (true, Some(loss)) => grid
            .lambdas
            .iter()
            .flat_map(|&lambda| {
                grid.discriminators.iter().map(move |&(w, d, lr)| ArmKnobs {
                    loss,
                    ganpo: Some(GanpoKnobs {
                        lambda,
                        disc_width: w,
                        disc_depth: d,
                        disc_learning_rate: lr.unwrap_or(loss.learning_rate / 2.0),
                    }),
                })
            })
            .collect(),
        _ => {
            let betas = match arm.loss {
                BaseLoss::Dpo => &grid.dpo_betas,
                BaseLoss::Simpo => &grid.simpo_betas,
            };
            betas
                .iter()
                .flat_map(|&beta| {
                    grid.learning_rates
                        .iter()
                        .map(move |&learning_rate| ArmKnobs {
                            loss: LossKnobs {
                                beta,
                                learning_rate,
                            },
                            ganpo: None,
                        })
                })
                .collect()
        }
    }
}

/// The knobs in words.
pub fn describe(k: &ArmKnobs) -> String {
    let base = format!("β {}, lr {:e}", k.loss.beta, k.loss.learning_rate);
    match k.ganpo {
        Some(g) => format!(
            "{base}; λ {}, D {}×{}, D lr {:e}",
            g.lambda, g.disc_width, g.disc_depth, g.disc_learning_rate
        ),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::arms::ARMS;

    #[test]
    fn every_arm_gets_the_same_number_of_settings() {
        for quick in [false, true] {
            let grid = TuneGrid::new(quick);
            let base = LossKnobs {
                beta: 0.1,
                learning_rate: 3e-5,
            };
            let counts: Vec<usize> = ARMS
                .iter()
                .map(|a| settings(a, &grid, a.ganpo.then_some(base)).len())
                .collect();
            assert!(
                counts.iter().all(|&c| c == counts[0] && c > 1),
                "{counts:?}"
            );
        }
    }

    #[test]
    fn ganpo_settings_keep_the_base_choice_and_default_to_half_its_lr() {
        let grid = TuneGrid::new(false);
        let base = LossKnobs {
            beta: 0.2,
            learning_rate: 1e-4,
        };
        let s = settings(&ARMS[1], &grid, Some(base));
        assert!(s.iter().all(|k| k.loss == base && k.ganpo.is_some()));
        assert_eq!(s[0].ganpo.unwrap().disc_learning_rate, 5e-5);
    }
}
