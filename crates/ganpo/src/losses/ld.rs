//! LD-DPO: length-desensitized sequence log-probs, which damp the tokens of the longer completion
//! beyond the length both completions share.

use candle_core::Tensor;

use super::inputs::TokenLogps;
use crate::{Error, Result};

/// Length-desensitized summed log-probs `(S̃(y_w), S̃(y_l))`, each `[B]`:
///
/// `ℓ_p = min(n_w, n_l)`, `S̃(y) = Σ_{k ≤ ℓ_p} log π(y_k) + α·Σ_{k > ℓ_p} log π(y_k)` with k the
/// 1-based index **within the completion** (the cumulative sum of the mask) and α = `ld_alpha`.
///
/// Liu et al. 2024, "Length desensitization in direct preference optimization" (arXiv 2409.06411),
/// eq. 11. The position convention follows the paper and TRL 1.x; TRL ≤ 0.28 (and the GANPO code that
/// subclasses it) compares absolute sequence positions, prompt included, with ℓ_p, which drops or
/// mis-weights completion tokens whenever the prompt is not empty. As in TRL ≤ 0.28 and the GANPO
/// code, only the **policy** log-probs are desensitized; the caller keeps the reference's plain sums.
pub fn length_desensitized_logps(tokens: &TokenLogps, ld_alpha: f64) -> Result<(Tensor, Tensor)> {
    let (rows, _) = tokens.token_logps.dims2()?;
    if rows == 0 || rows % 2 != 0 {
        return Err(Error::Config(format!(
            "LD-DPO needs token log-probs of a [chosen; rejected] batch (even row count), got {rows} rows"
        )));
    }
    let b = rows / 2;
    let mask = tokens.mask.detach().to_dtype(tokens.token_logps.dtype())?;
    let position = mask.cumsum(1)?;
    let lengths = mask.sum(1)?;
    let shared = lengths
        .narrow(0, 0, b)?
        .minimum(&lengths.narrow(0, b, b)?)?;
    let shared = Tensor::cat(&[&shared, &shared], 0)?.unsqueeze(1)?;
    let ones = mask.ones_like()?;
    let weights = position
        .broadcast_le(&shared)?
        .where_cond(&ones, &ones.affine(ld_alpha, 0.0)?)?
        .mul(&mask)?;
    let logps = tokens.token_logps.mul(&weights)?.sum(1)?;
    Ok((logps.narrow(0, 0, b)?, logps.narrow(0, b, b)?))
}
