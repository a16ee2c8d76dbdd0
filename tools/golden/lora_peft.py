"""PEFT golden fixtures for ganpo's LoRA adapters.

(a) `write`: loads the tiny Llama fixture (tests/fixtures/models/llama, made by models.py), wraps it
    with PEFT (r=4, lora_alpha=8, all-linear minus the LM head, use_rslora off), sets every lora_B to
    non-zero random values, saves the adapter with `save_pretrained` under
    tests/fixtures/lora/peft_adapter/ and writes PEFT's logits for fixed input ids to
    tests/fixtures/lora/golden.safetensors (+ golden.json with versions and seed).
(b) `check DIR`: loads an adapter written by ganpo onto the same base with
    `PeftModel.from_pretrained` and compares its logits with ganpo's (DIR/ganpo_logits.safetensors,
    left by `GANPO_LORA_EXPORT=DIR cargo test --test lora ganpo_writes`) and with DIR/merged (ganpo merge).

Run from the repository root:
  python tools/golden/lora_peft.py write
  python tools/golden/lora_peft.py check /tmp/ganpo-adapter
"""

import json
import os
import sys

import torch
import transformers
import peft
import safetensors
from safetensors.torch import save_file, load_file

SEED = 4321
BASE = os.path.join("tests", "fixtures", "models", "llama")
OUT = os.path.join("tests", "fixtures", "lora")
INPUT_IDS = [[1, 5, 17, 33, 60, 2, 9, 41], [1, 70, 3, 88, 12, 54, 0, 0]]
MASK = [[1] * 8, [1] * 6 + [0] * 2]


def base_model():
    model = transformers.AutoModelForCausalLM.from_pretrained(BASE, torch_dtype=torch.float32,
                                                              attn_implementation="eager")
    return model.eval()


def logits(model):
    with torch.no_grad():
        out = model(input_ids=torch.tensor(INPUT_IDS), attention_mask=torch.tensor(MASK))
    return out.logits.float().contiguous()


def write():
    torch.manual_seed(SEED)
    model = base_model()
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                             task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.1)
    model.eval()
    out_dir = os.path.join(OUT, "peft_adapter")
    model.save_pretrained(out_dir)
    # The absolute base path PEFT records would differ per machine.
    cfg_path = os.path.join(out_dir, "adapter_config.json")
    cfg = json.load(open(cfg_path))
    cfg["base_model_name_or_path"] = "tests/fixtures/models/llama"
    json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
    save_file({"input_ids": torch.tensor(INPUT_IDS, dtype=torch.int64),
               "attention_mask": torch.tensor(MASK, dtype=torch.int64),
               "logits": logits(model),
               "base_logits": logits(base_model())},
              os.path.join(OUT, "golden.safetensors"))
    json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
               "peft": peft.__version__, "seed": SEED, "script": "tools/golden/lora_peft.py"},
              open(os.path.join(OUT, "golden.json"), "w"), indent=2)
    os.remove(os.path.join(out_dir, "README.md"))  # PEFT's model card, not needed
    print("wrote", out_dir)


def check(dir_):
    adapter = os.path.join(dir_, "adapter")
    model = peft.PeftModel.from_pretrained(base_model(), adapter).eval()
    want = load_file(os.path.join(dir_, "ganpo_logits.safetensors"))["logits"]
    got = logits(model)
    rel = ((got - want).abs().max() / want.abs().max()).item()
    print(f"PEFT loads ganpo's adapter ({adapter}): max |PEFT - ganpo| / max |ganpo| = {rel:.3e}")
    ok = rel <= 1e-5
    merged = os.path.join(dir_, "merged")
    if os.path.isdir(merged):
        m = transformers.AutoModelForCausalLM.from_pretrained(merged, torch_dtype=torch.float32,
                                                              attn_implementation="eager").eval()
        rel_m = ((logits(m) - want).abs().max() / want.abs().max()).item()
        print(f"transformers loads ganpo merge ({merged}): rel = {rel_m:.3e}")
        ok = ok and rel_m <= 1e-5
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        write()
