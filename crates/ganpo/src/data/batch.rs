//! Collating pairs into a `[chosen; rejected]` batch: rows `0..B` are the chosen sequences, rows
//! `B..2B` the rejected ones, right-padded to the longest row, with attention and loss masks.

use candle_core::{Device, Tensor};

use super::pair::{Sequence, TokenizedPair};
use crate::{Error, Result};

/// A collated batch of `B` pairs: `2B` rows of `seq_len` tokens, stored row-major.
///
/// This is the layout TRL's `concatenated_forward` feeds the model (after its flush-left):
/// each row is `prompt + completion` followed by padding; `attention_mask` is 1 on real tokens and
/// `loss_mask` is 1 on completion tokens (not yet shifted; [`crate::logps`] shifts labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pairs: usize,
    seq_len: usize,
    input_ids: Vec<u32>,
    attention_mask: Vec<u32>,
    loss_mask: Vec<f32>,
    prompt_lens: Vec<usize>,
    completion_lens: Vec<usize>,
}

/// Rows right-padded to the longest one, row-major: the one padding rule of pairs
/// ([`Batch::collate`]) and of single sequences ([`BatchTensors::from_rows`]).
struct Padded {
    seq_len: usize,
    input_ids: Vec<u32>,
    attention_mask: Vec<u32>,
    loss_mask: Vec<f32>,
}

impl Padded {
    /// Pads `rows` (ids, prompt length) with `pad_id`; the loss mask is 1 on the ids after the
    /// prompt.
    fn new(rows: &[(&[u32], usize)], pad_id: u32) -> Self {
        let seq_len = rows.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0);
        let cells = rows.len() * seq_len;
        let mut out = Padded {
            seq_len,
            input_ids: Vec::with_capacity(cells),
            attention_mask: Vec::with_capacity(cells),
            loss_mask: Vec::with_capacity(cells),
        };
        for &(ids, prompt_len) in rows {
            let (len, padding) = (ids.len(), seq_len - ids.len());
            let prompt = prompt_len.min(len);
            out.input_ids.extend_from_slice(ids);
            out.input_ids.extend(std::iter::repeat_n(pad_id, padding));
            out.attention_mask.extend(std::iter::repeat_n(1, len));
            out.attention_mask.extend(std::iter::repeat_n(0, padding));
            out.loss_mask.extend(std::iter::repeat_n(0.0, prompt));
            out.loss_mask.extend(std::iter::repeat_n(1.0, len - prompt));
            out.loss_mask.extend(std::iter::repeat_n(0.0, padding));
        }
        out
    }
}

/// A batch as candle tensors, all `[2B, T]` (`[N, T]` from [`BatchTensors::from_rows`]).
#[derive(Debug, Clone)]
pub struct BatchTensors {
    /// Token ids (u32), padding = the pad id.
    pub input_ids: Tensor,
    /// 1 on real tokens, 0 on padding (u32).
    pub attention_mask: Tensor,
    /// 1.0 on completion tokens, 0.0 on prompt and padding (f32).
    pub loss_mask: Tensor,
}

impl Batch {
    /// Collates `pairs` (at least one), padding on the right with `pad_id` (the tokenizer's
    /// [`pad_id`](crate::tokenize::Tokenizer::pad_id): pad token, else EOS) to the longest row.
    pub fn collate<'a>(
        pairs: impl IntoIterator<Item = &'a TokenizedPair>,
        pad_id: u32,
    ) -> Result<Self> {
        let pairs: Vec<&TokenizedPair> = pairs.into_iter().collect();
        if pairs.is_empty() {
            return Err(Error::Config(
                "cannot collate an empty batch; the batch size must be at least 1".into(),
            ));
        }
        let rows: Vec<&Sequence> = pairs
            .iter()
            .map(|p| &p.chosen)
            .chain(pairs.iter().map(|p| &p.rejected))
            .collect();
        let padded = Padded::new(
            &rows
                .iter()
                .map(|s| (s.input_ids.as_slice(), s.prompt_len))
                .collect::<Vec<_>>(),
            pad_id,
        );
        Ok(Batch {
            pairs: pairs.len(),
            seq_len: padded.seq_len,
            input_ids: padded.input_ids,
            attention_mask: padded.attention_mask,
            loss_mask: padded.loss_mask,
            prompt_lens: rows.iter().map(|s| s.prompt_len).collect(),
            completion_lens: rows.iter().map(|s| s.completion_len()).collect(),
        })
    }

    /// Number of pairs `B` (the batch has `2B` rows).
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// `(2B, T)`: rows and padded sequence length.
    pub fn shape(&self) -> (usize, usize) {
        (2 * self.pairs, self.seq_len)
    }

    /// Token ids, row-major `[2B, T]`.
    pub fn input_ids(&self) -> &[u32] {
        &self.input_ids
    }

    /// Attention mask (1 = token, 0 = padding), row-major `[2B, T]`.
    pub fn attention_mask(&self) -> &[u32] {
        &self.attention_mask
    }

    /// Loss mask (1.0 = completion token), row-major `[2B, T]`.
    pub fn loss_mask(&self) -> &[f32] {
        &self.loss_mask
    }

    /// Prompt tokens per row (`2B`).
    pub fn prompt_lens(&self) -> &[usize] {
        &self.prompt_lens
    }

    /// Completion tokens per row (`2B`).
    pub fn completion_lens(&self) -> &[usize] {
        &self.completion_lens
    }

    /// The ids of row `row`, padding included; `None` past the last row.
    pub fn row(&self, row: usize) -> Option<&[u32]> {
        (row < 2 * self.pairs)
            .then(|| &self.input_ids[row * self.seq_len..(row + 1) * self.seq_len])
    }

    /// The batch as tensors on `device`: `input_ids` and `attention_mask` u32, `loss_mask` f32,
    /// all `[2B, T]`.
    pub fn to_tensors(&self, device: &Device) -> Result<BatchTensors> {
        let shape = self.shape();
        Ok(BatchTensors {
            input_ids: Tensor::from_slice(&self.input_ids, shape, device)?,
            attention_mask: Tensor::from_slice(&self.attention_mask, shape, device)?,
            loss_mask: Tensor::from_slice(&self.loss_mask, shape, device)?,
        })
    }
}

impl BatchTensors {
    /// `rows` (each prompt + completion ids, with its prompt length) right-padded with `pad_id`,
    /// as `[N, T]` tensors on `device`: the loss mask is 1.0 on completion tokens. For single
    /// sequences (SFT, scoring responses); pairs go through [`Batch::collate`].
    pub fn from_rows(rows: &[(&[u32], usize)], pad_id: u32, device: &Device) -> Result<Self> {
        let padded = Padded::new(rows, pad_id);
        let shape = (rows.len(), padded.seq_len);
        Ok(BatchTensors {
            input_ids: Tensor::from_vec(padded.input_ids, shape, device)?,
            attention_mask: Tensor::from_vec(padded.attention_mask, shape, device)?,
            loss_mask: Tensor::from_vec(padded.loss_mask, shape, device)?,
        })
    }
}
