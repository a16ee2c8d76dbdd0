"""Independent NumPy forward pass of SmolLM2-135M-Instruct from its GGUF file: the summed log-prob of a
continuation given a prompt, to compare with ganpo's `ganpo::logps::sequence_logps`
(`cargo run --release --example smollm2`). See docs/smollm2.md.

Nothing here comes from ganpo: tensors are read and dequantized by llama.cpp's `gguf` package, the
Q/K row permutation of convert_hf_to_gguf.py is undone here, and RMSNorm, RoPE (Hugging Face's
rotate-half form), grouped-query causal attention and the SwiGLU MLP are written out in float64.
The text is tokenized with the `tokenizers` package from the vocabulary and merges in the file
(digits split one by one, then GPT-2's byte-level regex: `tokenizer.ggml.pre = smollm`).

    python tools/reference/smollm2_logprob.py "$(scripts/fetch-smollm2.sh)" \
        --prompt "The capital of France is" --continuation " Paris."
"""

import argparse

import gguf
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers


def field(reader, key):
    return reader.fields[key].contents()


def load(path):
    reader = gguf.GGUFReader(path)
    tensors = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape))  # ggml lists the fastest dimension first
        tensors[t.name] = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float64).reshape(shape)
    return reader, tensors


def tokenizer(reader):
    assert field(reader, "tokenizer.ggml.model") == "gpt2" and field(reader, "tokenizer.ggml.pre") == "smollm"
    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def unpermute(w, n_head):
    """Inverse of convert_hf_to_gguf.py's permute: rows (head, pair, half) -> (head, half, pair)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, theta):
    """x: [heads, T, head_dim]; Hugging Face's rotate-half RoPE at positions 0..T-1."""
    _, t, d = x.shape
    inv_freq = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    angles = np.arange(t, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos = np.concatenate([np.cos(angles)] * 2, -1)
    sin = np.concatenate([np.sin(angles)] * 2, -1)
    rotated = np.concatenate([-x[..., d // 2:], x[..., : d // 2]], -1)
    return x * cos + rotated * sin


def forward(reader, w, ids):
    a = "llama"
    n_layer = int(field(reader, f"{a}.block_count"))
    n_head = int(field(reader, f"{a}.attention.head_count"))
    n_kv = int(field(reader, f"{a}.attention.head_count_kv"))
    eps = float(field(reader, f"{a}.attention.layer_norm_rms_epsilon"))
    theta = float(field(reader, f"{a}.rope.freq_base"))
    d = w["token_embd.weight"].shape[1]
    hd = d // n_head
    t = len(ids)
    x = w["token_embd.weight"][ids]
    causal = np.triu(np.full((t, t), -np.inf), 1)
    for i in range(n_layer):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm.weight"], eps)
        q = h @ unpermute(w[p + "attn_q.weight"], n_head).T
        k = h @ unpermute(w[p + "attn_k.weight"], n_kv).T
        v = h @ w[p + "attn_v.weight"].T
        q = rope(q.reshape(t, n_head, hd).transpose(1, 0, 2), theta)
        k = rope(k.reshape(t, n_kv, hd).transpose(1, 0, 2), theta)
        v = v.reshape(t, n_kv, hd).transpose(1, 0, 2)
        k = np.repeat(k, n_head // n_kv, axis=0)
        v = np.repeat(v, n_head // n_kv, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + causal
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        x = x + attn.transpose(1, 0, 2).reshape(t, d) @ w[p + "attn_output.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"], eps)
        gate = h @ w[p + "ffn_gate.weight"].T
        mlp = (gate / (1.0 + np.exp(-gate))) * (h @ w[p + "ffn_up.weight"].T)
        x = x + mlp @ w[p + "ffn_down.weight"].T
    x = rms_norm(x, w["output_norm.weight"], eps)
    head = w.get("output.weight", w["token_embd.weight"])  # tied: no output.weight in the file
    return x @ head.T


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf")
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--continuation", default=" Paris.")
    args = ap.parse_args()
    reader, weights = load(args.gguf)
    tok = tokenizer(reader)
    prompt = tok.encode(args.prompt).ids
    cont = tok.encode(args.continuation).ids
    ids = np.array(prompt + cont)
    logits = forward(reader, weights, ids)
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    # Position j predicts token j + 1; count the continuation tokens only.
    token_logps = [logp[j - 1, ids[j]] for j in range(len(prompt), len(ids))]
    print(f"ids {ids.tolist()} (prompt {len(prompt)} tokens)")
    print(f"greedy next token after the prompt: {int(logits[len(prompt) - 1].argmax())} "
          f"{tok.decode([int(logits[len(prompt) - 1].argmax())])!r}")
    print(f"token log-probs {[round(float(v), 6) for v in token_logps]}")
    print(f"log p({args.continuation!r} | {args.prompt!r}) = {sum(token_logps):.7f}")


if __name__ == "__main__":
    main()
