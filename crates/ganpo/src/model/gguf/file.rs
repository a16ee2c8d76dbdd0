//! One GGUF file: the header parsed by candle's reader, typed access to its metadata, and its
//! tensors dequantized to f32 after checking, with overflow-free arithmetic, that their bytes are
//! really in the file.
//!
//! Format: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>. Dequantization is
//! candle's (`QTensor::dequantize`), which covers every type ganpo accepts: F32, F16, BF16,
//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q2_K–Q6_K. The i-quants (IQ*), ternary
//! (TQ*) and FP4 types are not in candle 0.11 and are reported as unsupported.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// An open GGUF file.
pub struct GgufFile {
    path: PathBuf,
    reader: BufReader<File>,
    content: Content,
    file_len: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("tensors", &self.content.tensor_infos.len())
            .field("metadata", &self.content.metadata.len())
            .finish()
    }
}

/// ggml's names for tensor type codes candle does not read, so that the error can name them.
fn ggml_type_name(code: u32) -> Option<&'static str> {
    Some(match code {
        4 | 5 => "Q4_2/Q4_3 (removed from ggml)",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24..=28 => "an integer type (I8/I16/I32/I64/F64)",
        29 => "IQ1_M",
        31..=33 => "Q4_0_4_4/Q4_0_4_8/Q4_0_8_8 (repacked)",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return None,
    })
}

/// The message of a candle error without the backtrace candle attaches when `RUST_BACKTRACE` is
/// set (it would otherwise end up in ganpo's user-facing message).
fn candle_message(err: &candle_core::Error) -> String {
    match err {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        other => other.to_string(),
    }
}

/// Rewords candle's header-parsing errors into what went wrong and what to do.
fn header_error(path: &Path, err: candle_core::Error) -> Error {
    let text = candle_message(&err);
    if let Some(code) = text
        .strip_prefix("unknown dtype for tensor ")
        .and_then(|c| c.trim().parse::<u32>().ok())
    {
        let name = ggml_type_name(code).unwrap_or("an unknown type");
        return Error::model(
            path,
            format!(
                "unsupported tensor type {code} ({name}); ganpo reads F32, F16, BF16, Q4_0, Q4_1, \
                 Q5_0, Q5_1, Q8_0 and Q2_K..Q6_K: re-quantize the model with one of these (llama-quantize)"
            ),
        );
    }
    if text.contains("magic") {
        return Error::model(path, format!("not a GGUF file: {text}"));
    }
    Error::model(
        path,
        format!("cannot read the GGUF header (truncated or corrupt file?): {text}"),
    )
}

impl GgufFile {
    /// Opens `path` and parses its header (metadata and tensor directory; no tensor data yet).
    pub fn open(path: &Path) -> Result<Self> {
        let file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
            .len();
        let mut reader = BufReader::new(file);
        // candle 0.11 divides by `general.alignment` without checking it; a file declaring 0
        // would panic inside the reader, so a panic there is reported as a corrupt header.
        let content = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Content::read(&mut reader)
        }))
        .map_err(|_| {
            Error::model(
                path,
                "corrupt GGUF header (candle's reader failed on it; is `general.alignment` 0?)",
            )
        })?
        .map_err(|e| header_error(path, e))?;
        Ok(GgufFile {
            path: path.to_owned(),
            reader,
            content,
            file_len,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw metadata values by key.
    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::model(&self.path, message)
    }

    /// An unsigned integer metadata value (any integer width), or `None` if the key is absent.
    pub fn get_usize(&self, key: &str) -> Result<Option<usize>> {
        let Some(value) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let n: Option<i128> = match value {
            Value::U8(v) => Some((*v).into()),
            Value::U16(v) => Some((*v).into()),
            Value::U32(v) => Some((*v).into()),
            Value::U64(v) => Some((*v).into()),
            Value::I8(v) => Some((*v).into()),
            Value::I16(v) => Some((*v).into()),
            Value::I32(v) => Some((*v).into()),
            Value::I64(v) => Some((*v).into()),
            Value::Array(_) => {
                return Err(self.err(format!(
                    "metadata `{key}` is a per-layer array; ganpo needs one value for all layers"
                )));
            }
            _ => None,
        };
        match n.map(usize::try_from) {
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => Err(self.err(format!("metadata `{key}` = {value:?} is out of range"))),
            None => Err(self.err(format!("metadata `{key}` = {value:?} should be an integer"))),
        }
    }

    /// A required unsigned integer metadata value.
    pub fn require_usize(&self, key: &str) -> Result<usize> {
        self.get_usize(key)?
            .ok_or_else(|| self.err(format!("missing metadata `{key}`")))
    }

    /// A floating-point metadata value. An f32 is widened through its shortest decimal form, so
    /// that `1e-5` stored as f32 reads back as `1e-5` (and is written as such to `config.json`).
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>> {
        let Some(value) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        match value {
            Value::F32(v) => Ok(Some(v.to_string().parse().unwrap_or(f64::from(*v)))),
            Value::F64(v) => Ok(Some(*v)),
            _ => match self.get_usize(key) {
                Ok(Some(n)) => Ok(Some(n as f64)),
                _ => Err(self.err(format!("metadata `{key}` = {value:?} should be a number"))),
            },
        }
    }

    /// A boolean metadata value.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => {
                Err(self.err(format!("metadata `{key}` = {other:?} should be a boolean")))
            }
        }
    }

    /// A string metadata value.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(format!(
                "metadata `{key}` should be a string, found {:?}",
                other.value_type()
            ))),
        }
    }

    /// An array-of-strings metadata value.
    pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&str>>> {
        let Some(value) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let bad = || self.err(format!("metadata `{key}` should be an array of strings"));
        let Value::Array(items) = value else {
            return Err(bad());
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// An array-of-integers metadata value (e.g. `tokenizer.ggml.token_type`).
    pub fn get_int_array(&self, key: &str) -> Result<Option<Vec<i64>>> {
        let Some(value) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let bad = || self.err(format!("metadata `{key}` should be an array of integers"));
        let Value::Array(items) = value else {
            return Err(bad());
        };
        items
            .iter()
            .map(|v| match v {
                Value::I32(x) => Ok(i64::from(*x)),
                Value::U32(x) => Ok(i64::from(*x)),
                Value::I8(x) => Ok(i64::from(*x)),
                Value::U8(x) => Ok(i64::from(*x)),
                Value::I16(x) => Ok(i64::from(*x)),
                Value::U16(x) => Ok(i64::from(*x)),
                Value::I64(x) => Ok(*x),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// An array-of-floats metadata value (e.g. `tokenizer.ggml.scores`).
    pub fn get_f32_array(&self, key: &str) -> Result<Option<Vec<f32>>> {
        let Some(value) = self.content.metadata.get(key) else {
            return Ok(None);
        };
        let bad = || self.err(format!("metadata `{key}` should be an array of numbers"));
        let Value::Array(items) = value else {
            return Err(bad());
        };
        items
            .iter()
            .map(|v| match v {
                Value::F32(x) => Ok(*x),
                Value::F64(x) => Ok(*x as f32),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The names of all tensors, sorted.
    pub fn tensor_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .content
            .tensor_infos
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    /// Whether the file holds a tensor called `name`.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// The shape (row-major, outermost first, as candle and PyTorch order it) and storage type of
    /// tensor `name`.
    pub fn tensor_info(&self, name: &str) -> Option<(&[usize], GgmlDType)> {
        self.content
            .tensor_infos
            .get(name)
            .map(|info| (info.shape.dims(), info.ggml_dtype))
    }

    /// Reads tensor `name` and dequantizes it to an f32 CPU tensor of its stored shape.
    pub fn dequantize(&mut self, name: &str) -> Result<Tensor> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| self.err(format!("no tensor `{name}`")))?;
        let dtype = info.ggml_dtype;
        let dims = info.shape.dims();
        let elems = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| self.err(format!("tensor `{name}` has an absurd shape {dims:?}")))?;
        let block = dtype.block_size();
        if elems % block != 0 {
            return Err(self.err(format!(
                "tensor `{name}` ({dtype:?}, shape {dims:?}) has {elems} elements, not a multiple of its block size {block}"
            )));
        }
        let bytes = (elems / block)
            .checked_mul(dtype.type_size())
            .and_then(|b| u64::try_from(b).ok());
        let start = self.content.tensor_data_offset.checked_add(info.offset);
        let end = bytes.zip(start).and_then(|(b, s)| s.checked_add(b));
        match end {
            Some(end) if end <= self.file_len => {}
            _ => {
                return Err(self.err(format!(
                    "truncated file: tensor `{name}` ({dtype:?}, shape {dims:?}) needs {} bytes at offset {} but the file has {} bytes",
                    bytes.map_or("too many".into(), |b| b.to_string()),
                    start.map_or("(overflow)".into(), |s| s.to_string()),
                    self.file_len
                )));
            }
        }
        let qtensor = self
            .content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(|e| {
                Error::model(
                    &self.path,
                    format!("reading tensor `{name}`: {}", candle_message(&e)),
                )
            })?;
        qtensor.dequantize(&Device::Cpu).map_err(|e| {
            Error::model(
                &self.path,
                format!("dequantizing tensor `{name}`: {}", candle_message(&e)),
            )
        })
    }
}
