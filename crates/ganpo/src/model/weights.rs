//! A checked map from Hugging Face parameter names to tensors, used while building a model:
//! every lookup checks the shape the config implies, every tensor in the checkpoint must be used,
//! and a trainable model wraps each tensor in a `Var` (a frozen one keeps plain tensors).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};

use crate::{Error, Result};

/// Whether a loaded model is trained (its tensors are `Var`s) or frozen (plain tensors, no graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trainability {
    /// Parameters are variables that receive gradients.
    Trainable,
    /// Parameters are constants (the reference model).
    Frozen,
}

/// The parameters a model was built from.
#[derive(Debug, Clone)]
pub struct LoadedParams {
    /// Trainable variables by Hugging Face name (empty when frozen).
    pub vars: Vec<(String, Var)>,
    /// Every parameter tensor by Hugging Face name.
    pub named: Vec<(String, Tensor)>,
}

/// Named tensors being turned into a model.
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    used: BTreeSet<String>,
    vars: Vec<(String, Var)>,
    named: Vec<(String, Tensor)>,
    trainability: Trainability,
    dtype: DType,
    device: Device,
    source: PathBuf,
}

impl Weights {
    /// Wraps `tensors` (already on any device/dtype) loaded from `source`.
    pub fn new(
        tensors: HashMap<String, Tensor>,
        source: &Path,
        trainability: Trainability,
        dtype: DType,
        device: &Device,
    ) -> Self {
        Weights {
            tensors,
            used: BTreeSet::new(),
            vars: Vec::new(),
            named: Vec::new(),
            trainability,
            dtype,
            device: device.clone(),
            source: source.to_owned(),
        }
    }

    /// The file or directory the tensors came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Takes `name`, checking its shape, converting it to the model dtype and device, and making it a
    /// variable when trainable.
    pub fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self.tensors.get(name).ok_or_else(|| {
            Error::model(
                &self.source,
                format!("missing weight `{name}` (expected shape {shape:?} from config.json)"),
            )
        })?;
        if tensor.dims() != shape {
            return Err(Error::model(
                &self.source,
                format!(
                    "weight `{name}` has shape {:?} but config.json implies {shape:?}",
                    tensor.dims()
                ),
            ));
        }
        if !matches!(
            tensor.dtype(),
            DType::F32 | DType::F16 | DType::BF16 | DType::F64
        ) {
            return Err(Error::model(
                &self.source,
                format!(
                    "weight `{name}` has dtype {:?}; only floating-point weights are supported",
                    tensor.dtype()
                ),
            ));
        }
        let tensor = tensor.to_dtype(self.dtype)?.to_device(&self.device)?;
        self.used.insert(name.to_owned());
        let tensor = match self.trainability {
            Trainability::Frozen => tensor.detach(),
            Trainability::Trainable => {
                let var = Var::from_tensor(&tensor)?;
                let t = var.as_tensor().clone();
                self.vars.push((name.to_owned(), var));
                t
            }
        };
        self.named.push((name.to_owned(), tensor.clone()));
        Ok(tensor)
    }

    /// Marks `name` as deliberately ignored (e.g. a stored `lm_head.weight` of a tied model).
    pub fn ignore(&mut self, name: &str) {
        self.used.insert(name.to_owned());
    }

    /// Finishes loading: every tensor must have been used (buffers such as `rotary_emb.inv_freq`
    /// excepted), else the checkpoint does not match the architecture. Returns the variables and
    /// every parameter by name (in load order).
    pub fn finish(self) -> Result<LoadedParams> {
        let mut unused: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| !self.used.contains(*k) && !k.ends_with("rotary_emb.inv_freq"))
            .collect();
        if !unused.is_empty() {
            unused.sort();
            let shown: Vec<&str> = unused.iter().take(5).map(|s| s.as_str()).collect();
            return Err(Error::model(
                &self.source,
                format!(
                    "{} weight(s) not used by the architecture in config.json (e.g. {}); the checkpoint and config do not match",
                    unused.len(),
                    shown.join(", ")
                ),
            ));
        }
        Ok(LoadedParams {
            vars: self.vars,
            named: self.named,
        })
    }
}
