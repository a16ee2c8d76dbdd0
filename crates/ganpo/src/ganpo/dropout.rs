//! The dropout masks of one discriminator forward that may score several inputs at once.
//!
//! A training forward draws one mask per dropout site (each layer: the attention probabilities,
//! the attention output, the feed-forward hidden layer and its output). Scoring `n` inputs in one
//! concatenated forward must give every input the masks that `n` successive forwards would have
//! drawn, so that batching changes speed, not results: the site `s` of call `c` uses mask number
//! `first + c · sites_per_call + s + 1` of the generator, and its part of the concatenated batch.

use super::rng::DropoutRng;
use crate::Result;
use crate::kernels::buffer;

/// Mask numbering and placement for the `calls` inputs of one (possibly concatenated) forward.
#[derive(Debug)]
pub struct DropoutDraws<'a> {
    rng: &'a mut DropoutRng,
    /// Batch rows of each call, in call order.
    rows: Vec<usize>,
    sites_per_call: u64,
    next_site: u64,
    p: f64,
}

impl<'a> DropoutDraws<'a> {
    /// Draws for calls with `rows[c]` batch rows each, `sites_per_call` masks per call (0 when the
    /// forward applies no dropout), probability `p`.
    pub fn new(rng: &'a mut DropoutRng, rows: Vec<usize>, sites_per_call: u64, p: f64) -> Self {
        DropoutDraws {
            rng,
            rows,
            sites_per_call,
            next_site: 0,
            p,
        }
    }

    /// The next site's mask over the concatenated batch, `len` elements in all (a multiple of the
    /// total row count), as factors: `keep` where an element is kept, 0 where it is dropped.
    pub fn next(&mut self, len: usize, keep: f32) -> Result<Vec<f32>> {
        let total_rows: usize = self.rows.iter().sum();
        if self.next_site >= self.sites_per_call
            || total_rows == 0
            || !len.is_multiple_of(total_rows)
        {
            return Err(candle_core::Error::Msg(format!(
                "dropout site {} of {} over {len} elements for {total_rows} rows",
                self.next_site, self.sites_per_call
            ))
            .into());
        }
        let per_row = len / total_rows;
        let mut out = buffer::uninit(len);
        let mut offset = 0;
        for (c, &rows) in self.rows.iter().enumerate() {
            let draw = self.rng.draws + c as u64 * self.sites_per_call + self.next_site + 1;
            let part = &mut out[offset..offset + rows * per_row];
            self.rng.fill_keep_factors(draw, part, self.p, keep);
            offset += rows * per_row;
        }
        self.next_site += 1;
        // SAFETY: the parts cover `out` (the rows sum to `total_rows`, `len = total_rows ·
        // per_row`), and `fill_keep_factors` writes every slot of its part.
        Ok(unsafe { buffer::assume_init(out) })
    }

    /// Advances the generator past every mask of these calls; an error if the forward used a
    /// different number of sites than announced (which would break resumption and batching).
    pub fn finish(self) -> Result<()> {
        if self.next_site != self.sites_per_call {
            return Err(candle_core::Error::Msg(format!(
                "the forward drew {} dropout masks per call, expected {}",
                self.next_site, self.sites_per_call
            ))
            .into());
        }
        let calls = self.rows.len() as u64;
        self.rng.draws = self.rng.draws.wrapping_add(calls * self.sites_per_call);
        Ok(())
    }
}
