//! The discriminator's configuration: a strict serde struct with the authors' defaults, validated once.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Shape and regularization of one GANPO discriminator (the authors' `TransformerDiscriminator`).
///
/// Defaults are the authors' (`GANPO_trl.py`): width 512, 2 layers, 8 heads, dropout 0.1, 2048
/// learned positions. The input dimension is not configured here: it is the policy's hidden size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscriminatorConfig {
    /// Model width: output of the input projection, attention and pooled feature size.
    pub width: usize,
    /// Number of pre-LN transformer encoder layers.
    pub depth: usize,
    /// Attention heads per layer; must divide `width`.
    pub heads: usize,
    /// Dropout probability in training mode (attention weights, both residual branches, FFN).
    pub dropout: f64,
    /// Rows of the learned positional embedding: the longest sequence the discriminator accepts.
    pub max_positions: usize,
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        DiscriminatorConfig {
            width: 512,
            depth: 2,
            heads: 8,
            dropout: 0.1,
            max_positions: 2048,
        }
    }
}

impl DiscriminatorConfig {
    /// The feed-forward width of each encoder layer (`4 · width`, as the authors).
    pub fn ffn_width(&self) -> usize {
        4 * self.width
    }

    /// Checks every field; the error names the offending value.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(format!("ganpo.discriminator: {msg}")));
        if self.width == 0 || self.heads == 0 || self.max_positions == 0 {
            return bad(format!(
                "width ({}), heads ({}) and max_positions ({}) must be positive",
                self.width, self.heads, self.max_positions
            ));
        }
        if !self.width.is_multiple_of(self.heads) {
            return bad(format!(
                "heads ({}) must divide width ({})",
                self.heads, self.width
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        // Weights are allocated from these before any data is seen: bound them so that a typo
        // is an error, not an exhausted machine. Per layer: attention 4·w², feed-forward 8·w².
        let elements = (self.max_positions as u128) * (self.width as u128)
            + (self.depth as u128) * 12 * (self.width as u128).pow(2);
        const MAX_ELEMENTS: u128 = 1 << 31;
        if self.width > 1 << 16 || self.depth > 1 << 10 || elements > MAX_ELEMENTS {
            return bad(format!(
                "width {}, depth {} and max_positions {} would need about {} GiB of weights per discriminator; \
                 use sizes of the authors' order (512, 2, 2048)",
                self.width,
                self.depth,
                self.max_positions,
                elements.saturating_mul(4) >> 30
            ));
        }
        Ok(())
    }
}
