"""Golden fixtures for ganpo's data pipeline, produced by TRL's own legacy DPO code path.

TRL 0.23.1 (inside the 0.22-0.28 range the GANPO authors used; before TRL 0.27.2 stopped appending
EOS to conversational completions). For every record of tests/fixtures/data/golden_input.jsonl and
every data config below, this script runs exactly what `DPOTrainer` does to a row:

1. `trl.data_utils.maybe_extract_prompt`            (implicit prompt of conversational pairs)
2. `trl.data_utils.maybe_apply_chat_template`       (render prompt / completions as text)
3. `DPOTrainer.tokenize_row(..., add_special_tokens=False)`, as `DPOTrainer._prepare_dataset` calls it
4. `DataCollatorForPreference` + `DPOTrainer.concatenated_forward` up to the model call: the
   `[chosen; rejected]` concatenation and the `max_length` / `truncation_mode` truncation. The model
   is a stub that captures `input_ids`, `attention_mask` and the frame's `loss_mask` and stops there.

It also writes the fixtures those tests read: a tiny byte-level BPE tokenizer with a chat template
(tests/fixtures/data/tokenizer/), the JSONL input, and Parquet files in the layout of a Hugging Face
dataset exported with `Dataset.to_parquet` (plus a few malformed ones for the error tests).

Output: tests/fixtures/data/golden_trl.json. Run from the repository root:

    pip install trl==0.23.1 datasets pyarrow
    python tools/golden/trl_data.py
"""

import json
import os
import re
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = os.path.join("tests", "fixtures", "data")
TOKENIZER_DIR = os.path.join(OUT, "tokenizer")


def import_trl():
    """TRL 0.23.1 predates transformers 5, whose `_is_package_available` returns a (bool, version)
    tuple; TRL stores those tuples as availability flags, so every optional package looks installed.
    Reduce them to their booleans before TRL imports its trainers."""
    import trl.import_utils as tiu

    for name, value in list(vars(tiu).items()):
        if name.startswith("_") and name.endswith("_available") and isinstance(value, tuple):
            setattr(tiu, name, value[0])
    import trl
    from trl import DPOTrainer
    from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    assert trl.__version__ == "0.23.1", f"this fixture is pinned to trl 0.23.1, found {trl.__version__}"
    return trl, DPOTrainer, maybe_extract_prompt, maybe_apply_chat_template, DataCollatorForPreference


trl, DPOTrainer, maybe_extract_prompt, maybe_apply_chat_template, DataCollatorForPreference = import_trl()

SPECIAL = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<think>"]

# ChatML-like, with BOS from the template (as Llama 3 / Gemma do), `trim` on the content (so that
# `continue_final_message` meets trimmed trailing spaces), and a DeepSeek-R1-style generation
# prompt: without a system message it opens `<think>`, which the rendered prompt+completion does not
# contain, so TRL's common-prefix trimming of the prompt is exercised; with a system message the
# generation prompt is an exact prefix.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] | trim + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|assistant|>\n' }}"
    "{% if messages[0]['role'] != 'system' %}{{ '<think>\n' }}{% endif %}"
    "{% endif %}"
)

CORPUS = [
    "The sky is blue. The grass is green. What color is the sky?",
    "Question: what is two plus two? Answer: four. Answer: five.",
    "You are a helpful assistant. Write a short poem about the sea.",
    "The quick brown fox jumps over the lazy dog, again and again.",
    "Caf\u00e9 au lait \u2615 costs three euros; the tea costs two.",
]


def build_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=330,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    hf.add_special_tokens({"additional_special_tokens": SPECIAL[3:]})
    hf.chat_template = CHAT_TEMPLATE
    os.makedirs(TOKENIZER_DIR, exist_ok=True)
    hf.save_pretrained(TOKENIZER_DIR)
    # Load it back the way a user would, so the fixture is what ganpo reads.
    return transformers.AutoTokenizer.from_pretrained(TOKENIZER_DIR)


def msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


LONG_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog."] * 4)
LONG_ANSWER = " ".join(["The sky is blue and the grass is green."] * 4)

# Golden input records, one per JSONL line (line numbers are 1-based, as in error messages).
RECORDS = [
    # 1-3: plain text with an explicit prompt.
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
    {"prompt": "Question: what is two plus two?", "chosen": " Answer: four.", "rejected": " Answer: five.",
     "source": "extra fields are ignored"},
    {"prompt": "Caf\u00e9 au lait \u2615 costs", "chosen": " three euros.", "rejected": " two euros; the tea costs two."},
    # 4: plain text without a prompt: TRL extracts the common character prefix (backing up one space).
    {"chosen": "Is the sky blue? Answer: yes.", "rejected": "Is the sky blue? Answer: no."},
    # 5-6: conversational, explicit prompt (without / with a system message).
    {"prompt": msgs(("user", "What color is the sky?")),
     "chosen": msgs(("assistant", "It is blue.")), "rejected": msgs(("assistant", "It is green."))},
    {"prompt": msgs(("system", "You are a helpful assistant."), ("user", "Write a short poem about the sea.")),
     "chosen": msgs(("assistant", "The sea is blue, the sky is too.")), "rejected": msgs(("assistant", "No."))},
    # 7-8: conversational, implicit prompt (longest common message prefix), single and multi turn.
    {"chosen": msgs(("user", "What color is the grass?"), ("assistant", "Green.")),
     "rejected": msgs(("user", "What color is the grass?"), ("assistant", "Blue."))},
    {"chosen": msgs(("user", "Hi"), ("assistant", "Hello!"), ("user", "What is two plus two?"), ("assistant", "Four.")),
     "rejected": msgs(("user", "Hi"), ("assistant", "Hello!"), ("user", "What is two plus two?"), ("assistant", "Five."))},
    # 9: implicit prompt where one conversation continues the other (TRL keeps one message back).
    {"chosen": msgs(("user", "Say hi."), ("assistant", "Hi.")),
     "rejected": msgs(("user", "Say hi."), ("assistant", "Hi."), ("user", "Again."), ("assistant", "Hi hi."))},
    # 10: UltraFeedback layout: a string prompt next to full conversations; TRL ignores the string.
    {"prompt": "What color is the sea?",
     "chosen": msgs(("user", "What color is the sea?"), ("assistant", "Blue.")),
     "rejected": msgs(("user", "What color is the sea?"), ("assistant", "Green, like the grass."))},
    # 11: the prompt ends with an assistant message (continue_final_message), trailing space trimmed.
    {"prompt": msgs(("user", "Finish the sentence."), ("assistant", "The quick brown ")),
     "chosen": msgs(("assistant", "fox jumps.")), "rejected": msgs(("assistant", "dog sleeps."))},
    # 12-13: long prompt / long completion, for truncation.
    {"prompt": LONG_PROMPT, "chosen": " " + LONG_ANSWER, "rejected": " No."},
    {"prompt": msgs(("user", LONG_PROMPT)),
     "chosen": msgs(("assistant", "Yes.")), "rejected": msgs(("assistant", LONG_ANSWER))},
]

# Data configs (TRL DPOConfig names). `null` = no limit.
CONFIGS = [
    {"name": "trl_defaults", "config": {"max_length": 1024, "max_prompt_length": 512,
                                        "max_completion_length": None, "truncation_mode": "keep_end"}},
    {"name": "keep_end_short", "config": {"max_length": 28, "max_prompt_length": 20,
                                          "max_completion_length": 12, "truncation_mode": "keep_end"}},
    {"name": "keep_start_short", "config": {"max_length": 28, "max_prompt_length": 20,
                                            "max_completion_length": 12, "truncation_mode": "keep_start"}},
    {"name": "keep_end_unbounded_parts", "config": {"max_length": 24, "max_prompt_length": None,
                                                    "max_completion_length": None, "truncation_mode": "keep_end"}},
    {"name": "keep_start_unbounded_parts", "config": {"max_length": 24, "max_prompt_length": None,
                                                      "max_completion_length": None, "truncation_mode": "keep_start"}},
]


class _Captured(Exception):
    pass


class CaptureModel(torch.nn.Module):
    """Stands in for the policy: records what `concatenated_forward` feeds it, including the
    `loss_mask` local of the calling frame (the mask TRL applies, before its label shift)."""

    def forward(self, input_ids, attention_mask=None, **kwargs):
        frame = sys._getframe()
        while frame is not None and frame.f_code.co_name != "concatenated_forward":
            frame = frame.f_back
        raise _Captured(input_ids.clone(), attention_mask.clone(), frame.f_locals["loss_mask"].clone())


def trl_concatenate(rows, pad_id, config):
    """TRL's collator and `concatenated_forward` (decoder-only, no padding-free, no logits_to_keep)."""
    trainer = object.__new__(DPOTrainer)
    trainer.padding_value = pad_id
    trainer.is_encoder_decoder = False
    trainer.aux_loss_enabled = False
    trainer.max_length = config["max_length"]
    trainer.truncation_mode = config["truncation_mode"]
    trainer.use_logits_to_keep = False
    trainer.padding_free = False
    batch = DataCollatorForPreference(pad_token_id=pad_id)(rows)
    try:
        trainer.concatenated_forward(CaptureModel(), batch)
    except _Captured as captured:
        ids, attention, loss = captured.args
        return ids.tolist(), attention.tolist(), loss.int().tolist()
    raise RuntimeError("concatenated_forward did not call the model")


def ganpo_drop_reason(row, chosen, rejected):
    """ganpo's policy (TRL drops nothing): a pair is dropped when its prompt has no tokens, when a
    sequence lost its whole prompt to keep_end truncation, or lost its whole completion."""
    if len(row["prompt_input_ids"]) == 0:
        return "empty_prompt"
    for seq in (chosen, rejected):
        if seq["loss_mask"][0] == 1:
            return "prompt_truncated_away"
        if sum(seq["loss_mask"]) == 0:
            return "completion_truncated_away"
    return None


def unpad(ids, attention, loss):
    n = sum(attention)
    assert attention[:n] == [1] * n, "TRL rows are flushed left"
    return {"input_ids": ids[:n], "loss_mask": loss[:n]}


def run_config(entry, tokenizer):
    config = entry["config"]
    pad_id = tokenizer.pad_token_id
    examples, kept_rows = [], []
    for line, record in enumerate(RECORDS, start=1):
        extracted = maybe_extract_prompt(dict(record))
        rendered = maybe_apply_chat_template(extracted, tokenizer)
        row = DPOTrainer.tokenize_row(
            rendered, tokenizer, config["max_prompt_length"], config["max_completion_length"],
            add_special_tokens=False,
        )
        ids, attention, loss = trl_concatenate([row], pad_id, config)
        chosen, rejected = unpad(ids[0], attention[0], loss[0]), unpad(ids[1], attention[1], loss[1])
        dropped = ganpo_drop_reason(row, chosen, rejected)
        examples.append({
            "line": line,
            "rendered": {k: rendered[k] for k in ("prompt", "chosen", "rejected")},
            "tokenize_row": row,
            "chosen": chosen,
            "rejected": rejected,
            "dropped": dropped,
        })
        if dropped is None:
            kept_rows.append(row)
    ids, attention, loss = trl_concatenate(kept_rows, pad_id, config)
    return {"name": entry["name"], "config": config, "examples": examples,
            "batch": {"input_ids": ids, "attention_mask": attention, "loss_mask": loss}}


def write_parquet_fixtures():
    """Hugging Face `Dataset.to_parquet` layouts (strings, list<struct<role, content>>), grouped by
    layout since a column has one type; the golden test maps each row back to its JSONL line."""
    groups = {
        "plain.parquet": [1, 2, 3, 12],
        "chat.parquet": [5, 6, 11, 13],
        "chat_implicit.parquet": [7, 8, 9],
        "ultrafeedback.parquet": [10],
    }
    for name, lines in groups.items():
        rows = [dict(RECORDS[i - 1]) for i in lines]
        for i, row in enumerate(rows):
            row.pop("source", None)
            row["score_chosen"] = 8.0 + i  # extra columns are ignored
        datasets.Dataset.from_list(rows).to_parquet(os.path.join(OUT, name))

    # Malformed files for the error tests; several row groups, so row numbers must carry across them.
    strings = pa.array(["a", "b", "c", "d", "e"])
    pq.write_table(pa.table({"prompt": strings, "chosen": strings, "rejected": pa.array([1, 2, 3, 4, 5])}),
                   os.path.join(OUT, "bad_type.parquet"), row_group_size=2)
    pq.write_table(pa.table({"prompt": strings, "chosen": strings,
                             "rejected": pa.array(["a", "b", "c", None, "e"])}),
                   os.path.join(OUT, "null_cell.parquet"), row_group_size=2)
    bad_struct = pa.array([[{"role": "user", "text": "hi"}]] * 2)
    pq.write_table(pa.table({"chosen": bad_struct, "rejected": bad_struct}),
                   os.path.join(OUT, "bad_struct.parquet"))
    pq.write_table(pa.table({"prompt": strings, "chosen": strings}), os.path.join(OUT, "missing_column.parquet"))
    empty = pa.array([], type=pa.string())
    pq.write_table(pa.table({"prompt": empty, "chosen": empty, "rejected": empty}),
                   os.path.join(OUT, "empty.parquet"))
    return groups


def main():
    os.makedirs(OUT, exist_ok=True)
    tokenizer = build_tokenizer()
    with open(os.path.join(OUT, "golden_input.jsonl"), "w", encoding="utf-8") as f:
        for record in RECORDS:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    parquet = write_parquet_fixtures()
    golden = {
        "header": {
            "generator": "tools/golden/trl_data.py",
            "trl": trl.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "datasets": datasets.__version__,
            "pyarrow": pa.__version__,
            "torch": torch.__version__,
            "pad_id": tokenizer.pad_token_id,
            "eos_id": tokenizer.eos_token_id,
        },
        "input": "golden_input.jsonl",
        "tokenizer": "tokenizer",
        "parquet": parquet,
        "configs": [run_config(entry, tokenizer) for entry in CONFIGS],
    }
    text = json.dumps(golden, ensure_ascii=False, indent=1)
    # One line per token list keeps the file small and diffs readable.
    text = re.sub(r"\[[\d,\s]*\]", lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)
    with open(os.path.join(OUT, "golden_trl.json"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    for entry in golden["configs"]:
        drops = [(e["line"], e["dropped"]) for e in entry["examples"] if e["dropped"]]
        print(entry["name"], "batch", len(entry["batch"]["input_ids"]), "x",
              len(entry["batch"]["input_ids"][0]), "dropped", drops)


if __name__ == "__main__":
    main()
