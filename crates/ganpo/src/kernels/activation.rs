//! The MLP gate activations the fused kernels implement (the model's config names one of them).

/// MLP gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU / swish (SwiGLU MLP).
    Silu,
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`, GeGLU MLP).
    GeluTanh,
    /// Exact erf GELU.
    Gelu,
}
