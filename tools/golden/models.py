"""Golden fixtures for ganpo's decoders, produced by Hugging Face transformers (PyTorch, eager attention).

For each architecture variant this script builds a tiny randomly initialized model, saves it in
Hugging Face layout (config.json, model.safetensors, tokenizer files) under
tests/fixtures/models/<name>/, runs a fixed padded batch through it, and writes golden.safetensors
with the inputs and the expected logits, last hidden states (hidden_states[-1]) and per-sequence
completion log-probs, plus golden.json with the versions and seed.

Run from the repository root:  python tools/golden/models.py
"""

import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers

SEED = 1234
VOCAB = 96
OUT = os.path.join("tests", "fixtures", "models")

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    attn_implementation="eager",
)

VARIANTS = {
    "llama": (transformers.LlamaConfig, dict(rope_theta=10000.0, tie_word_embeddings=False)),
    "llama3_scaled_tied": (
        transformers.LlamaConfig,
        dict(
            rope_theta=500000.0,
            tie_word_embeddings=True,
            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                              original_max_position_embeddings=16),
        ),
    ),
    "qwen2": (transformers.Qwen2Config, dict(rope_theta=1000000.0, tie_word_embeddings=False)),
    "qwen2_tied": (transformers.Qwen2Config, dict(rope_theta=10000.0, tie_word_embeddings=True)),
    "mistral": (transformers.MistralConfig, dict(rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False)),
    "gemma": (transformers.GemmaConfig, dict(head_dim=8, hidden_activation="gelu_pytorch_tanh")),
    "gemma2": (
        transformers.Gemma2Config,
        dict(head_dim=8, hidden_activation="gelu_pytorch_tanh", sliding_window=4, query_pre_attn_scalar=16,
             attn_logit_softcapping=5.0, final_logit_softcapping=3.0),
    ),
}

# A padded batch: right padding (rows 0-2), a full row (3) and a left-padded row (4).
LENGTHS = [9, 12, 5, 12, 7]
SEQ = 12


def make_inputs(gen):
    ids = torch.zeros((len(LENGTHS), SEQ), dtype=torch.long)
    mask = torch.zeros_like(ids)
    loss = torch.zeros_like(ids)
    for r, n in enumerate(LENGTHS):
        toks = torch.randint(3, VOCAB, (n,), generator=gen)
        prompt = max(1, n // 2)
        if r == 4:  # left padding
            ids[r, SEQ - n:] = toks
            mask[r, SEQ - n:] = 1
            loss[r, SEQ - n + prompt:] = 1
        else:
            ids[r, :n] = toks
            mask[r, :n] = 1
            loss[r, prompt:n] = 1
    return ids, mask, loss


def randomize(model, gen):
    """Replace the default (near-zero) init with weights large enough that every path matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
            elif "norm" in name:
                base = 0.0 if model.config.model_type.startswith("gemma") else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            else:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def tiny_tokenizer():
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    for i in range(3, VOCAB):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def main():
    for name, (cls, extra) in VARIANTS.items():
        gen = torch.Generator().manual_seed(SEED)
        config = cls(**COMMON, **extra)
        torch.manual_seed(SEED)
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
        randomize(model, gen)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        tiny_tokenizer().save(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                       "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=1)
        ids, mask, loss_mask = make_inputs(gen)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        logits = out.logits.float()
        last_hidden = out.hidden_states[-1].float()
        # Reference log-probs: full log-softmax, labels shifted by one, completion mask applied.
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        m = loss_mask[:, 1:].float()
        seq_logps = (logp * m).sum(-1)
        save_file(
            {
                "input_ids": ids.to(torch.int64).contiguous(),
                "attention_mask": mask.to(torch.int64).contiguous(),
                "loss_mask": loss_mask.to(torch.int64).contiguous(),
                "logits": logits.contiguous(),
                "last_hidden": last_hidden.contiguous(),
                "logps": seq_logps.contiguous(),
                "counts": m.sum(-1).contiguous(),
            },
            os.path.join(d, "golden.safetensors"),
        )
        with open(os.path.join(d, "golden.json"), "w") as f:
            json.dump({
                "generator": "tools/golden/models.py",
                "seed": SEED,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "numpy": np.__version__,
                "python": sys.version.split()[0],
                "attn_implementation": "eager",
            }, f, indent=1)
        print(f"{name}: logits {tuple(logits.shape)} |logits| max {logits.abs().max():.3f}")


if __name__ == "__main__":
    main()
