//! Starting discriminators from saved weights (`[ganpo] init_from = "DIR"`): D⁺ from
//! `DIR/disc_chosen.safetensors`, D⁻ from `DIR/disc_rejected.safetensors`, with the authors'
//! PyTorch `state_dict` names (parameters and spectral-norm u/v). Their `disc_chosen.pt` /
//! `disc_rejected.pt` convert with `tools/convert_authors_disc.py`.

use std::path::Path;

use super::discriminator::Discriminator;
use super::tensors::read_safetensors;
use crate::{Error, Result};

/// D⁺'s file name inside an `init_from` directory (the authors' name, as safetensors).
pub const CHOSEN_FILE: &str = "disc_chosen.safetensors";
/// D⁻'s file name inside an `init_from` directory.
pub const REJECTED_FILE: &str = "disc_rejected.safetensors";

/// Replaces every parameter and u/v of `disc` with those in `dir/file`; its dropout generator is
/// kept. Errors name the file and what to do.
pub fn load_initial_weights(disc: &mut Discriminator, dir: &Path, file: &str) -> Result<()> {
    let path = dir.join(file);
    if !path.is_file() {
        return Err(Error::Config(format!(
            "[ganpo] init_from: {} does not exist; the directory needs {CHOSEN_FILE} and \
             {REJECTED_FILE} (convert the authors' disc_chosen.pt / disc_rejected.pt with \
             `python tools/convert_authors_disc.py DIR`)",
            path.display()
        )));
    }
    let tensors = read_safetensors(&path)?;
    disc.set_tensors(&tensors).map_err(|e| {
        Error::Config(format!(
            "[ganpo] init_from: {}: {e}; its shapes must match [ganpo.discriminator] and the \
             policy's hidden size ({})",
            path.display(),
            disc.input_dim()
        ))
    })
}
