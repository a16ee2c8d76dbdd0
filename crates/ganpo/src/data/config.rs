//! Data options, named as TRL's `DPOConfig` (`max_length`, `max_prompt_length`,
//! `max_completion_length`, `truncation_mode`), with TRL's defaults.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which end of a `prompt + completion` sequence longer than `max_length` survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncationMode {
    /// Keep the last `max_length` tokens: the start of the prompt is cut (TRL's default).
    #[default]
    KeepEnd,
    /// Keep the first `max_length` tokens: the end of the completion is cut.
    KeepStart,
}

/// How preference examples are cut to length; the names, meanings and defaults are those of TRL's
/// `DPOConfig` (0.23), so a TRL config's values carry over unchanged.
///
/// In TOML a field left out takes TRL's default; TOML has no `null`, so to lift a limit that has a
/// default (`max_length`, `max_prompt_length`) set it larger than any example. In JSON, `null` means
/// "no limit", as `None` does in TRL.
///
/// ```
/// let config: ganpo::data::DataConfig = toml::from_str(
///     "max_length = 1024\nmax_prompt_length = 512\ntruncation_mode = \"keep_start\"",
/// ).unwrap();
/// assert_eq!(config.max_completion_length, None);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Longest `prompt + completion` sequence, in tokens; longer ones are cut per
    /// [`truncation_mode`](Self::truncation_mode). TRL default 1024.
    pub max_length: Option<usize>,
    /// Longest prompt, in tokens; a longer prompt keeps its last tokens (whatever the truncation
    /// mode, as TRL's `tokenize_row` does). TRL default 512.
    pub max_prompt_length: Option<usize>,
    /// Longest completion (EOS included), in tokens; a longer one keeps its first tokens.
    /// TRL default `None` (no limit).
    pub max_completion_length: Option<usize>,
    /// Which end survives the `max_length` cut. TRL default `keep_end`.
    pub truncation_mode: TruncationMode,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            max_length: Some(1024),
            max_prompt_length: Some(512),
            max_completion_length: None,
            truncation_mode: TruncationMode::KeepEnd,
        }
    }
}

impl DataConfig {
    /// Checks the limits. A limit of 0 is rejected rather than given TRL's meaning (Python's
    /// `ids[-0:]` keeps the whole prompt, `ids[:0]` empties the completion), and `max_length` must
    /// leave room for one prompt and one completion token.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("max_prompt_length", self.max_prompt_length),
            ("max_completion_length", self.max_completion_length),
        ] {
            if value == Some(0) {
                return Err(Error::Config(format!(
                    "data.{name} = 0 leaves no tokens; set it to at least 1, or leave it out"
                )));
            }
        }
        if let Some(max_length) = self.max_length
            && max_length < 2
        {
            return Err(Error::Config(format!(
                "data.max_length = {max_length} leaves no room for a prompt token and a completion token; set it to at least 2"
            )));
        }
        Ok(())
    }
}
