"""Golden fixtures for ganpo's tokenizer loading, encoding and decoding, produced by transformers + tokenizers.

Trains a small byte-level BPE tokenizer (tokenizers' BpeTrainer on a fixed corpus, so the output is
deterministic) and writes two Hugging Face tokenizer directories that exercise what transformers honours
in the tokenizer files:

* tests/fixtures/tokenizer_bpe/: a TemplateProcessing post-processor that prepends BOS, padding and
  truncation (max_length 8) switched on inside tokenizer.json (transformers ignores both unless asked, so
  ganpo must too), special tokens given as AddedToken objects, a non-special added token, `add_bos_token:
  false` in tokenizer_config.json (transformers 5 drops that flag when tokenizer.json exists: the
  post-processor decides), and `chat_template` as a list of named templates (`default`, `tool_use`).
* tests/fixtures/tokenizer_bpe_legacy/: no post-processor, special tokens only partly in
  tokenizer_config.json (no `added_tokens_decoder`, so transformers reads special_tokens_map.json and lets it
  override the config), `add_bos_token: true` (dropped as above), and a chat_template.jinja file that takes
  priority over the config's `chat_template`.

For each directory, golden.json records what `AutoTokenizer.from_pretrained(dir)` does: special tokens,
`encode(text, add_special_tokens=...)` ids for sample strings, `decode(ids, skip_special_tokens=...)`, and
`apply_chat_template` text and ids.

Run from the repository root:  python tools/golden/tokenizer_bpe.py
"""

import json
import os
import platform

import tokenizers
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer

ROOT = os.path.join("tests", "fixtures")
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<pad>"]
CORPUS = [
    "Hello world! This is a tiny corpus for a byte-level BPE tokenizer.",
    "The quick brown fox jumps over the lazy dog. The dog sleeps.",
    "Preference optimization trains a policy against a frozen reference model.",
    "Grüß dich! Ça va très bien, merci. Schöne Grüße aus Zürich.",
    "你好，世界。今天天气很好。",
    "def main():\n    return 42\n",
    "user assistant system What is the capital of France? Paris is the capital.",
] * 20

DEFAULT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
TOOL_TEMPLATE = "{{ bos_token }}TOOLS {{ tools | tojson }}{% for message in messages %}|{{ message.content }}{% endfor %}"
LEGACY_CONFIG_TEMPLATE = "config template, must lose against chat_template.jinja"
LEGACY_FILE_TEMPLATE = "{% for message in messages %}<{{ message['role'] }}>{{ message['content'] }}{{ eos_token }}\n{% endfor %}"

SAMPLES = [
    "Hello world",
    "",
    "  leading spaces and trailing  ",
    "Grüß dich! 你好 🌍 — «ça va?»",
    "<|begin_of_text|>inline special<|eot_id|> text",
    "<|eot_id|><|eot_id|>",
    "<tool_call>{\"city\": \"Zürich\"}</tool_call>",
    "A long sentence that has far more than eight tokens, so truncation would cut it if it were on.",
    "\n\n\t tabs\r\nand newlines",
    "family emoji 👩‍👩‍👧 and combining e\u0301",
]
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": " Grüß dich! "},
    {"role": "assistant", "content": "Hallo."},
]
TOOLS = [{"type": "function", "function": {"name": "f", "description": "Zürich"}}]


def train():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.add_tokens([AddedToken("<tool_call>", normalized=False, special=False),
                    AddedToken("</tool_call>", normalized=False, special=False)])
    return tok


def added_token(content):
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=2)
        f.write("\n")


def write_main(tok, out):
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                                       special_tokens=[("<|begin_of_text|>", bos)])
    tok.enable_truncation(max_length=8)
    tok.enable_padding(pad_id=tok.token_to_id("<pad>"), pad_token="<pad>", length=8)
    tok.save(os.path.join(out, "tokenizer.json"))
    # The fixture only tests neutralization if the raw file really pads and truncates.
    raw = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    assert len(raw.encode(SAMPLES[7]).ids) == 8 and len(raw.encode("Hello").ids) == 8
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_bos_token": False,
        "added_tokens_decoder": {str(tok.token_to_id(t)): {k: v for k, v in added_token(t).items() if k != "__type"}
                                 for t in SPECIAL},
        "bos_token": added_token("<|begin_of_text|>"),
        "eos_token": "<|eot_id|>",
        "pad_token": added_token("<pad>"),
        "unk_token": None,
        "chat_template": [{"name": "default", "template": DEFAULT_TEMPLATE},
                          {"name": "tool_use", "template": TOOL_TEMPLATE}],
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1024,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })


def write_legacy(tok, out):
    tok.post_processor = None
    tok.no_truncation()
    tok.no_padding()
    tok.save(os.path.join(out, "tokenizer.json"))
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "add_bos_token": True,
        "bos_token": "<pad>",
        "chat_template": LEGACY_CONFIG_TEMPLATE,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    write_json(os.path.join(out, "special_tokens_map.json"), {
        "bos_token": {k: v for k, v in added_token("<|begin_of_text|>").items() if k not in ("__type", "special")},
        "eos_token": "<|end_of_text|>",
        "pad_token": "<pad>",
    })
    with open(os.path.join(out, "chat_template.jinja"), "w", encoding="utf-8") as f:
        f.write(LEGACY_FILE_TEMPLATE)


def record(out):
    hf = AutoTokenizer.from_pretrained(out)
    encodings = []
    for text in SAMPLES:
        for add_special in (True, False):
            ids = hf.encode(text, add_special_tokens=add_special)
            encodings.append({
                "text": text,
                "add_special_tokens": add_special,
                "ids": ids,
                "decoded": hf.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": hf.decode(ids, skip_special_tokens=True),
            })
    chats = []
    for tools in (None, TOOLS):
        for agp in (True, False):
            text = hf.apply_chat_template(MESSAGES, tools=tools, add_generation_prompt=agp, tokenize=False)
            ids = hf.apply_chat_template(MESSAGES, tools=tools, add_generation_prompt=agp, tokenize=True,
                                         return_dict=False)
            chats.append({"tools": tools, "add_generation_prompt": agp, "text": text, "ids": ids})
    golden = {
        "header": {
            "generator": "tools/golden/tokenizer_bpe.py",
            "python": platform.python_version(),
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "special_tokens": hf.special_tokens_map,
        "special_token_ids": {k: hf.convert_tokens_to_ids(v) for k, v in hf.special_tokens_map.items()},
        "vocab_size": len(hf),
        "messages": MESSAGES,
        "encodings": encodings,
        "chats": chats,
    }
    write_json(os.path.join(out, "golden.json"), golden)
    print(out, hf.special_tokens_map, len(hf))


def main():
    for name, write in (("tokenizer_bpe", write_main), ("tokenizer_bpe_legacy", write_legacy)):
        out = os.path.join(ROOT, name)
        os.makedirs(out, exist_ok=True)
        write(train(), out)
        record(out)


if __name__ == "__main__":
    main()
