//! The discriminator's tensors: names (the authors' PyTorch `state_dict` keys), shapes and initializers.
//!
//! One list drives fresh initialization, loading, saving and shape checks, so a checkpoint written by
//! the authors' `TransformerDiscriminator` (converted to safetensors) loads as is.

use super::config::DiscriminatorConfig;

/// How a tensor is initialized, following `TransformerDiscriminator.__init__` and torch's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// `xavier_uniform_`: U(−a, a), a = √(6 / (fan_in + fan_out)) for a `[fan_out, fan_in]` matrix.
    XavierUniform,
    /// Drawn once for layer 0 with `XavierUniform` and copied to every other layer: torch's
    /// `TransformerEncoder` deep-copies one layer, and the authors' re-initialization visits only
    /// `nn.Linear` modules, which `MultiheadAttention.in_proj_weight` is not.
    SharedXavierUniform,
    /// All zeros (biases, LayerNorm shifts).
    Zeros,
    /// All ones (LayerNorm scales).
    Ones,
    /// N(0, std²) (the positional embedding, std 0.02).
    Normal(f64),
    /// A standard normal vector scaled to unit length (spectral-norm u/v, as torch draws them).
    UnitNormal,
}

/// Whether a tensor is trained or is spectral-norm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A trainable parameter: a `Var` in the discriminator's `VarMap`.
    Parameter,
    /// A power-iteration vector (`*.weight_u`, `*.weight_v`): state, never differentiated.
    SpectralState,
}

/// One tensor of the discriminator.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// PyTorch `state_dict` key.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Initializer.
    pub init: Init,
    /// Parameter or state.
    pub role: Role,
}

/// The spectrally normalized linear layers, by key prefix.
pub const SPECTRAL_LAYERS: [&str; 3] = ["project_in", "head.0", "head.2"];

/// The key prefix of encoder layer `i`.
pub fn layer_prefix(i: usize) -> String {
    format!("transformer.layers.{i}")
}

/// Every tensor of a discriminator with `config` on `input_dim`-wide latents, in a fixed order.
pub fn tensor_specs(config: &DiscriminatorConfig, input_dim: usize) -> Vec<TensorSpec> {
    let (w, ffn) = (config.width, config.ffn_width());
    let mut s = Specs(Vec::new());
    s.spectral_linear(SPECTRAL_LAYERS[0], input_dim, w);
    s.param(
        "pos_embedding",
        vec![1, config.max_positions, w],
        Init::Normal(0.02),
    );
    for layer in 0..config.depth {
        let p = layer_prefix(layer);
        let attn_in = Init::SharedXavierUniform;
        s.param(
            format!("{p}.self_attn.in_proj_weight"),
            vec![3 * w, w],
            attn_in,
        );
        s.param(
            format!("{p}.self_attn.in_proj_bias"),
            vec![3 * w],
            Init::Zeros,
        );
        s.param(
            format!("{p}.self_attn.out_proj.weight"),
            vec![w, w],
            Init::XavierUniform,
        );
        s.param(format!("{p}.self_attn.out_proj.bias"), vec![w], Init::Zeros);
        s.param(
            format!("{p}.linear1.weight"),
            vec![ffn, w],
            Init::XavierUniform,
        );
        s.param(format!("{p}.linear1.bias"), vec![ffn], Init::Zeros);
        s.param(
            format!("{p}.linear2.weight"),
            vec![w, ffn],
            Init::XavierUniform,
        );
        s.param(format!("{p}.linear2.bias"), vec![w], Init::Zeros);
        for norm in ["norm1", "norm2"] {
            s.param(format!("{p}.{norm}.weight"), vec![w], Init::Ones);
            s.param(format!("{p}.{norm}.bias"), vec![w], Init::Zeros);
        }
    }
    s.spectral_linear(SPECTRAL_LAYERS[1], w, w);
    s.spectral_linear(SPECTRAL_LAYERS[2], w, 1);
    s.0
}

/// Accumulates specs in order.
struct Specs(Vec<TensorSpec>);

impl Specs {
    fn push(&mut self, name: impl Into<String>, shape: Vec<usize>, init: Init, role: Role) {
        self.0.push(TensorSpec {
            name: name.into(),
            shape,
            init,
            role,
        });
    }

    fn param(&mut self, name: impl Into<String>, shape: Vec<usize>, init: Init) {
        self.push(name, shape, init, Role::Parameter);
    }

    /// `spectral_norm(nn.Linear(fan_in, fan_out))`: `weight_orig`, `bias`, `weight_u`, `weight_v`.
    fn spectral_linear(&mut self, prefix: &str, fan_in: usize, fan_out: usize) {
        let orig = vec![fan_out, fan_in];
        self.param(format!("{prefix}.weight_orig"), orig, Init::XavierUniform);
        self.param(format!("{prefix}.bias"), vec![fan_out], Init::Zeros);
        let state = Role::SpectralState;
        self.push(
            format!("{prefix}.weight_u"),
            vec![fan_out],
            Init::UnitNormal,
            state,
        );
        self.push(
            format!("{prefix}.weight_v"),
            vec![fan_in],
            Init::UnitNormal,
            state,
        );
    }
}
