"""Golden fixtures for ganpo's GGUF loader, written with the `gguf` Python package (llama.cpp's own).

Writes, under tests/fixtures/gguf/:

1. dequant.gguf + dequant_expected.safetensors: one (3, 256) tensor per storage type (F32, F16, BF16,
   Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and the f32 values
   `gguf.quants.dequantize` gives for it. Types gguf can quantize are quantized from Gaussian data;
   K-quants (which it cannot quantize) are random block bytes with finite f16 scales.
2. llama_f32.gguf / llama_q8_0.gguf: the tiny Hugging Face Llama in tests/fixtures/models/llama
   converted as llama.cpp's convert_hf_to_gguf.py does (tensor names, Q/K rows permuted), with all
   tensors F32, or 2-D ones Q8_0 (norms stay F32, as llama.cpp keeps 1-D tensors); likewise
   qwen2_tied_f32.gguf from models/qwen2_tied (q/k/v biases, tied head, no permutation). For Q8_0,
   llama_q8_0_golden.safetensors holds transformers' (eager, f32) logits and completion log-probs of
   the model whose weights are the Q8_0-dequantized values, on the inputs of models/llama/golden.
3. tok_<pre>.gguf + tokenizer_cases.json: a byte-level BPE trained here with `tokenizers`, stored as
   GGUF tokenizer metadata under each pre-tokenizer family (gpt-2, smollm, llama-bpe, qwen2), and the
   ids the equivalent `tokenizers` pipeline (as in those models' tokenizer.json) gives for sample
   strings. tok_llama-spm.gguf: a SentencePiece BPE (byte fallback) trained here with
   `sentencepiece`, stored as llama.cpp stores Llama 2's (pieces, scores, token types, no merges),
   with the ids `sentencepiece` itself gives for the samples without added tokens.

fixtures.json records versions and the seed. Run from the repository root:
    python tools/golden/gguf_fixtures.py
"""

import json
import os
import sys

import gguf
import numpy as np
import sentencepiece
import tokenizers
import torch
import transformers
from gguf import GGMLQuantizationType as Q
from safetensors.numpy import load_file, save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

SEED = 20260501
OUT = os.path.join("tests", "fixtures", "gguf")
LLAMA_DIR = os.path.join("tests", "fixtures", "models", "llama")

QUANTIZABLE = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
# Byte offsets of the f16 scale fields inside one block of each K-quant (ggml-common.h layouts).
K_QUANT_F16_FIELDS = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}


def dequant_fixture(rng):
    writer = gguf.GGUFWriter(os.path.join(OUT, "dequant.gguf"), "none")
    expected = {}
    shape = (3, 256)
    for qtype in QUANTIZABLE:
        data = rng.standard_normal(shape).astype(np.float32)
        if qtype == Q.F32:
            raw = data
        elif qtype == Q.F16:
            raw = data.astype(np.float16)
        else:
            raw = gguf.quants.quantize(data, qtype)
        writer.add_tensor(qtype.name, raw, raw_dtype=qtype)
        expected[qtype.name] = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(shape)
    for qtype, fields in K_QUANT_F16_FIELDS.items():
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        blocks = rng.integers(0, 256, size=(shape[0] * shape[1] // block_size, type_size), dtype=np.uint8)
        for off in fields:
            scale = (rng.uniform(-0.05, 0.05, size=blocks.shape[0])).astype(np.float16)
            blocks[:, off:off + 2] = scale.view(np.uint8).reshape(-1, 2)
        raw = blocks.reshape(shape[0], -1)
        writer.add_tensor(qtype.name, raw, raw_dtype=qtype)
        values = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(shape)
        assert np.isfinite(values).all()
        expected[qtype.name] = values
    finish(writer)
    save_file(expected, os.path.join(OUT, "dequant_expected.safetensors"))


def finish(writer):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def permute(w, n_head):
    """convert_hf_to_gguf.py's `permute`: HF's rotate-half row order -> llama.cpp's interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{GGUF_NAMES[rest]}"


def tiny_vocab():
    """96 tokens for the tiny model: 3 control tokens, 90 byte-level characters, 3 merged tokens."""
    chars = [chr(c) for c in range(ord("!"), ord("!") + 90)]
    return ["<pad>", "<s>", "</s>"] + chars + ["ab", "cd", "abcd"], ["a b", "c d", "ab cd"]


def convert(name, arch, variants):
    """Writes tests/fixtures/models/<name> as <name>_<variant>.gguf the way convert_hf_to_gguf.py does.

    Returns, for the last variant, the weights as ganpo should read them back (dequantized, in
    Hugging Face row order)."""
    src = os.path.join("tests", "fixtures", "models", name)
    cfg = json.load(open(os.path.join(src, "config.json")))
    weights = load_file(os.path.join(src, "model.safetensors"))
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    permuted = arch == "llama"  # llama.cpp's qwen2 graph uses Hugging Face's (NeoX) RoPE layout
    tokens, merges = tiny_vocab()
    assert len(tokens) == cfg["vocab_size"]
    read_back = {}
    for variant in variants:
        writer = gguf.GGUFWriter(os.path.join(OUT, f"{name}_{variant}.gguf"), arch)
        writer.add_name(f"tiny-{name}")
        writer.add_block_count(cfg["num_hidden_layers"])
        writer.add_context_length(cfg["max_position_embeddings"])
        writer.add_embedding_length(cfg["hidden_size"])
        writer.add_feed_forward_length(cfg["intermediate_size"])
        writer.add_head_count(n_head)
        writer.add_head_count_kv(n_kv)
        writer.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
        writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
        writer.add_rope_dimension_count(cfg.get("head_dim", cfg["hidden_size"] // n_head))
        writer.add_vocab_size(cfg["vocab_size"])
        writer.add_file_type(gguf.LlamaFileType.ALL_F32 if variant == "f32" else gguf.LlamaFileType.MOSTLY_Q8_0)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2" if arch == "llama" else "qwen2")
        writer.add_token_list(tokens)
        writer.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
        writer.add_token_merges(merges)
        writer.add_bos_token_id(cfg["bos_token_id"])
        writer.add_eos_token_id(cfg["eos_token_id"])
        writer.add_pad_token_id(cfg["pad_token_id"])
        writer.add_add_bos_token(False)
        for hf in sorted(weights):
            w = weights[hf].astype(np.float32)
            heads = n_head if "q_proj" in hf else n_kv if "k_proj" in hf else None
            if permuted and heads:
                w = permute(w, heads)
            if variant == "q8_0" and w.ndim == 2:
                raw = gguf.quants.quantize(w, Q.Q8_0)
                writer.add_tensor(gguf_name(hf), raw, raw_dtype=Q.Q8_0)
                back = gguf.quants.dequantize(raw, Q.Q8_0).reshape(w.shape)
                read_back[hf] = unpermute(back, heads) if permuted and heads else back
            else:
                writer.add_tensor(gguf_name(hf), np.ascontiguousarray(w))
                read_back[hf] = weights[hf]
        finish(writer)
    return read_back


def llama_fixtures():
    convert("qwen2_tied", "qwen2", ["f32"])
    dequantized = convert("llama", "llama", ["f32", "q8_0"])
    # transformers on the Q8_0-dequantized weights, inputs as in models/llama/golden.safetensors.
    golden = load_file(os.path.join(LLAMA_DIR, "golden.safetensors"))
    model = transformers.AutoModelForCausalLM.from_pretrained(LLAMA_DIR, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(dequantized[name])))
        ids = torch.from_numpy(golden["input_ids"])
        out = model(input_ids=ids, attention_mask=torch.from_numpy(golden["attention_mask"]))
    logits = out.logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    m = torch.from_numpy(golden["loss_mask"])[:, 1:].float()
    save_file({"logits": logits.numpy(), "logps": (logp * m).sum(-1).numpy()},
              os.path.join(OUT, "llama_q8_0_golden.safetensors"))


SAMPLES_FOR_CORPUS = ["The capital of France is Paris", "Hello world! Hello there, world", "multiple spaces",
                      "don't stop, I'm here; they'll see", "why think"]
CORPUS = """The capital of France is Paris. Don't you think it's lovely? I'M SURE we'll go; they've said so.
Numbers: 1234567890, 3.14159, 2026-05-01, 42 apples and 7 oranges cost $12.50.
Café déjà vu, naïve coöperation, Straße, Ελληνικά, русский текст, 你好，世界！ 🙂🚀
def sentencepiece_fixture(cases):
    import io
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS.split("\n")), model_writer=model, model_type="bpe", vocab_size=600,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=False, character_coverage=1.0, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    sp = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    n = sp.get_piece_size()
    tokens = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    # llama.cpp token types: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte (convert_hf_to_gguf.py).
    types = [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i) else 6 if sp.is_byte(i) else 1
             for i in range(n)]
    writer = gguf.GGUFWriter(os.path.join(OUT, "tok_llama-spm.gguf"), "llama")
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    finish(writer)
    # SentencePiece does not match control tokens in text, and handles the space after an added
    # token differently from llama.cpp and transformers, so only samples without them are compared.
    plain = [s for s in SAMPLES if "<" not in s]
    cases["llama-spm"] = [
        {"text": s, "ids": [sp.bos_id()] + sp.encode(s), "ids_plain": sp.encode(s)} for s in plain
    ]


def main():\n    return [x * 2 for x in range(10)]  # code\n\tindented\ttabs\r\nwindows line
    multiple   spaces   here     and\n\n\nnewlines
""" * 3 + "\n".join(SAMPLES_FOR_CORPUS) * 2

# Pre-tokenizers as in each model's tokenizer.json.
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def hf_pre_tokenizer(pre):
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if pre == "gpt-2":
        return bl
    if pre == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), bl])
    split = {"llama-bpe": LLAMA3_SPLIT, "qwen2": QWEN2_SPLIT}[pre]
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])


SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED = ["<think>"]
SAMPLES = [
    "The capital of France is",
    "Hello world! 123",
    "  multiple   spaces",
    "Café déjà vu.",
    "don't stop, I'M here; they'LL see",
    "line1\nline2\r\n\n  indented\n\n\n",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "x<think>why</think>y",
    "12345678 and 3.14159",
    "🙂 ok 你好，世界",
    "\tTab\tseparated",
    "trailing   ",
    "",
]


def tokenizer_fixtures(rng):
    cases = {}
    for pre in ["gpt-2", "smollm", "llama-bpe", "qwen2"]:
        tok = Tokenizer(models.BPE(ignore_merges=(pre == "llama-bpe")))
        tok.pre_tokenizer = hf_pre_tokenizer(pre)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=SPECIAL, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([CORPUS], trainer=trainer)
        tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in USER_DEFINED])
        add_bos = pre == "llama-bpe"
        if add_bos:
            tok.post_processor = processors.TemplateProcessing(
                single="<|im_start|> $A", pair="<|im_start|> $A <|im_start|>:1 $B:1",
                special_tokens=[("<|im_start|>", tok.token_to_id("<|im_start|>"))])
        state = json.loads(tok.to_str())
        vocab = state["model"]["vocab"]
        for added in state["added_tokens"]:
            vocab[added["content"]] = added["id"]
        tokens = [None] * len(vocab)
        for t, i in vocab.items():
            tokens[i] = t
        assert all(t is not None for t in tokens)
        merges = [m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]]
        types = [3 if t in SPECIAL else 4 if t in USER_DEFINED else 1 for t in tokens]
        writer = gguf.GGUFWriter(os.path.join(OUT, f"tok_{pre}.gguf"), "llama")
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre)
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(tok.token_to_id("<|im_start|>"))
        writer.add_eos_token_id(tok.token_to_id("<|im_end|>"))
        writer.add_unk_token_id(tok.token_to_id("<|endoftext|>"))
        if pre != "llama-bpe":  # llama-bpe relies on llama.cpp's default (BOS on)
            writer.add_add_bos_token(False)
        writer.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
        finish(writer)
        cases[pre] = [
            {"text": s, "ids": tok.encode(s, add_special_tokens=True).ids,
             "ids_plain": tok.encode(s, add_special_tokens=False).ids}
            for s in SAMPLES
        ]
    sentencepiece_fixture(cases)
    with open(os.path.join(OUT, "tokenizer_cases.json"), "w") as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)


def sentencepiece_fixture(cases):
    import io
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS.split("\n")), model_writer=model, model_type="bpe", vocab_size=600,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=False, character_coverage=1.0, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    sp = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    n = sp.get_piece_size()
    tokens = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    # llama.cpp token types: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte (convert_hf_to_gguf.py).
    types = [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i) else 6 if sp.is_byte(i) else 1
             for i in range(n)]
    writer = gguf.GGUFWriter(os.path.join(OUT, "tok_llama-spm.gguf"), "llama")
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    finish(writer)
    # SentencePiece does not match control tokens in text, and handles the space after an added
    # token differently from llama.cpp and transformers, so only samples without them are compared.
    plain = [s for s in SAMPLES if "<" not in s]
    cases["llama-spm"] = [
        {"text": s, "ids": [sp.bos_id()] + sp.encode(s), "ids_plain": sp.encode(s)} for s in plain
    ]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    dequant_fixture(rng)
    llama_fixtures()
    tokenizer_fixtures(rng)
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump({
            "generator": "tools/golden/gguf_fixtures.py",
            "seed": SEED,
            "gguf": getattr(gguf, "__version__", None) or __import__("importlib.metadata").metadata.version("gguf"),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "sentencepiece": sentencepiece.__version__,
            "python": sys.version.split()[0],
        }, f, indent=1)


if __name__ == "__main__":
    main()
