//! A discriminator's tensors by PyTorch name: the key and shape check of a state dict, reading one
//! from safetensors, and registering variables in a `VarMap`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

use super::config::DiscriminatorConfig;
use super::layout::tensor_specs;
use crate::{Error, Result};

/// Requires exactly the keys (and shapes) of [`tensor_specs`].
pub(super) fn check_keys(
    config: &DiscriminatorConfig,
    input_dim: usize,
    tensors: &HashMap<String, Tensor>,
) -> Result<()> {
    let specs = tensor_specs(config, input_dim);
    for spec in &specs {
        let t = tensors.get(&spec.name).ok_or_else(|| {
            Error::Checkpoint(format!("discriminator tensor `{}` is missing", spec.name))
        })?;
        if t.dims() != spec.shape.as_slice() {
            return Err(Error::Checkpoint(format!(
                "discriminator tensor `{}` has shape {:?}, expected {:?} (check width, depth, \
                 max_positions and input_dim)",
                spec.name,
                t.dims(),
                spec.shape
            )));
        }
    }
    if let Some(extra) = tensors
        .keys()
        .find(|k| !specs.iter().any(|s| &s.name == *k))
    {
        return Err(Error::Checkpoint(format!(
            "unexpected discriminator tensor `{extra}` (a deeper or different network?)"
        )));
    }
    Ok(())
}

pub(super) fn varmap_insert(varmap: &VarMap, name: String, var: Var) -> Result<()> {
    let mut data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Checkpoint("discriminator VarMap lock poisoned".into()))?;
    data.insert(name, var);
    Ok(())
}

pub(super) fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| Error::Checkpoint(format!("reading discriminator {}: {e}", path.display())))
}
