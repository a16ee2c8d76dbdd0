//! llama.cpp tensor names → Hugging Face parameter names, the shape each one must have, and
//! undoing the row permutation llama.cpp applies to Llama's query/key projections.

use candle_core::Tensor;

use crate::Result;
use crate::model::config::ModelConfig;

/// Per-layer tensors: llama.cpp suffix after `blk.N.` → Hugging Face suffix after `model.layers.N.`.
const LAYER_NAMES: &[(&str, &str)] = &[
    ("attn_norm.weight", "input_layernorm.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_v.bias", "self_attn.v_proj.bias"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("attn_output.bias", "self_attn.o_proj.bias"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
];

/// The Hugging Face name of llama.cpp tensor `name`, or `None` for a tensor ganpo does not know.
pub fn hf_name(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, suffix) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (_, hf) = LAYER_NAMES.iter().find(|(gg, _)| *gg == suffix)?;
    Some(format!("model.layers.{layer}.{hf}"))
}

/// How many heads the rows of Hugging Face parameter `name` are grouped into for llama.cpp's
/// permutation: query heads for `q_proj`, key/value heads for `k_proj`; `None` for the rest.
pub fn permuted_heads(config: &ModelConfig, name: &str) -> Option<usize> {
    if name.ends_with("self_attn.q_proj.weight") || name.ends_with("self_attn.q_proj.bias") {
        Some(config.num_attention_heads)
    } else if name.ends_with("self_attn.k_proj.weight") || name.ends_with("self_attn.k_proj.bias") {
        Some(config.num_key_value_heads)
    } else {
        None
    }
}

/// Undoes llama.cpp's query/key row permutation.
///
/// Hugging Face's Llama rotates the two halves of each head (`rotate_half`), llama.cpp rotates
/// adjacent pairs. `convert_hf_to_gguf.py` therefore stores `permute(W, n_head)`: the rows of each
/// head, indexed `(pair p, half t)` as `(t, p)` in Hugging Face order, are written as `(p, t)`, i.e.
/// `W.reshape(n_head, 2, head_dim/2, …).swapaxes(1, 2)`. The inverse reshapes the stored rows to
/// `(n_head, head_dim/2, 2, …)` and swaps the same two axes back. Works for weights `[rows, in]`
/// and biases `[rows]`.
pub fn unpermute_rows(t: &Tensor, n_heads: usize) -> Result<Tensor> {
    let dims = t.dims().to_vec();
    let rows = dims.first().copied().unwrap_or(0);
    if n_heads == 0 || rows % (2 * n_heads) != 0 {
        return Err(candle_core::Error::Msg(format!(
            "cannot un-permute {rows} rows into {n_heads} heads of paired rows"
        ))
        .into());
    }
    let half = rows / n_heads / 2;
    let mut grouped = vec![n_heads, half, 2];
    grouped.extend_from_slice(&dims[1..]);
    Ok(t.reshape(grouped)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn maps_llama_cpp_names() {
        assert_eq!(
            hf_name("blk.12.attn_k.weight").as_deref(),
            Some("model.layers.12.self_attn.k_proj.weight")
        );
        assert_eq!(
            hf_name("token_embd.weight").as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(hf_name("blk.x.attn_k.weight"), None);
        assert_eq!(hf_name("rope_freqs.weight"), None);
    }

    /// One head of 6 rows: HF order (t, p) = 0..6; llama.cpp stores (p, t) = [0, 3, 1, 4, 2, 5].
    #[test]
    fn unpermute_inverts_llama_cpp_order() -> Result<()> {
        let stored = Tensor::new(&[0f32, 3., 1., 4., 2., 5.], &Device::Cpu)?;
        let hf: Vec<f32> = unpermute_rows(&stored, 1)?.to_vec1()?;
        assert_eq!(hf, vec![0., 1., 2., 3., 4., 5.]);
        // Two heads of 4 rows, 2 columns: each head permuted on its own.
        let stored = Tensor::new(&[0f32, 2., 1., 3., 4., 6., 5., 7.], &Device::Cpu)?
            .reshape((8, 1))?
            .repeat((1, 2))?;
        let hf: Vec<Vec<f32>> = unpermute_rows(&stored, 2)?.to_vec2()?;
        let rows: Vec<f32> = hf.iter().map(|r| r[1]).collect();
        assert_eq!(rows, vec![0., 1., 2., 3., 4., 5., 6., 7.]);
        Ok(())
    }
}
