//! Seeded, resumable data order: each epoch is a permutation drawn from a ChaCha8 stream keyed
//! by `(seed, epoch)`, so the position `(epoch, cursor)` is all a checkpoint needs to continue
//! with the same batches.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Where the trainer is in the data: the epoch and the number of examples already consumed in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DataCursor {
    /// 0-based epoch.
    pub epoch: u64,
    /// Examples of this epoch already consumed.
    pub position: usize,
}

/// The permutation of `0..len` used in `epoch` (identity when `shuffle` is false).
pub fn epoch_order(len: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        // ChaCha8 is a portable, versioned stream: the same permutation on every platform.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
    }
    order
}
