//! The library's typed error, grouped by area, with messages that name the offending input and what to do.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T> = std::result::Result<T, Error>;

/// Every failure the library reports. Variants are grouped by the area of the pipeline that failed;
/// each message names the offending file, record or value and, where possible, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An invalid configuration value (TOML config, CLI override, or a model's `config.json`).
    #[error("config error: {0}")]
    Config(String),

    /// Bad preference data: `location` is `file:line` (JSONL) or `file:row N` (Parquet).
    #[error("{location}: {message}")]
    Data {
        /// Where the bad record is, e.g. `train.jsonl:12`.
        location: String,
        /// What is wrong with it and what to do.
        message: String,
    },

    /// A model checkpoint that cannot be loaded or does not match its config.
    #[error("model error in {path}: {message}", path = path.display())]
    Model {
        /// The file or directory being loaded.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A tokenizer or chat-template problem.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// A training checkpoint that cannot be written or resumed.
    #[error("checkpoint error: {0}")]
    Checkpoint(String),

    /// Training stopped: a non-finite loss or gradient, or an inconsistent resume.
    #[error("training stopped: {0}")]
    Training(String),

    /// Non-finite numbers where finite ones are needed (e.g. a model whose weights hold NaN).
    #[error("non-finite values: {0}")]
    Numeric(String),

    /// An I/O failure, with the path or action that failed.
    #[error("{context}: {source}")]
    Io {
        /// The file or action involved.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A tensor operation failed (shape mismatch, unsupported dtype on a device, ...).
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    /// A [`Error::Model`] for `path`.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A [`Error::Data`] at `location`.
    pub fn data(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Data {
            location: location.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Io`] for an action on `path`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
