"""Golden per-step DPO training metrics from TRL 0.23.1's own `DPOTrainer` (legacy code path).

Trains the tiny Llama of tests/fixtures/models/llama on tests/fixtures/train/train.jsonl for four
optimizer steps with `loss_type="sigmoid"`, beta 0.1, a separate reference copy of the same model
(`precompute_ref_log_probs=False`), f32 on CPU, and records what TRL logs at each step (one
micro-batch per step and `logging_steps=1`, so every value is that step's own):

- `loss`: the step's `losses.mean()` (transformers' `tr_loss / steps`, not rounded);
- `rewards/*`, `logps/*`, `logits/*`: means over the step's 8 pairs, computed in
  `get_batch_loss_metrics` during the step's forward pass, i.e. *before* its optimizer update;
- `grad_norm`: the global gradient norm *before* clipping (`accelerator.clip_grad_norm_`'s return);
- `learning_rate`: the rate the step used (transformers reads it before `lr_scheduler.step()`).

Pure f32: TRL's configs turn on bf16 autocast unless told otherwise (`bf16=None` means True),
which moves the log-probs by ~1e-3 relative; the script sets `bf16=False`.

Data order is the file order: the trainer's sampler is replaced by a `SequentialSampler` (ganpo's
side sets `training.shuffle = false`). The optimizer is `adamw_torch` (not the fused default of
transformers 5 with torch ≥ 2.8) with transformers' defaults: betas (0.9, 0.999), eps 1e-8,
weight decay 0 (so which parameters are decay-exempt does not matter). The embedding's pad row
(`padding_idx = pad_token_id = 0`) gets no gradient in PyTorch; ganpo detaches it likewise.

`--loss-type ipo` records the same run with IPO (TRL 0.27.2), whose `logps/*` are the per-token
averages its loss reads (`all_logps / loss_mask.sum(-1)` in `concatenated_forward`), not sums.

Output: tests/fixtures/trl_dpo/golden.json (sigmoid) or golden_ipo.json (ipo). Run from the
repository root:

    pip install trl==0.23.1 datasets && python tools/golden/trl_dpo_steps.py
    pip install trl==0.27.2 datasets && python tools/golden/trl_dpo_steps.py --loss-type ipo
"""

import argparse
import json
import os
import sys

import datasets
import torch
import transformers
from torch.utils.data import SequentialSampler
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

sys.path.insert(0, os.path.dirname(__file__))


# Loss type -> (pinned TRL version, fixture).
PINS = {
    "sigmoid": ("0.23.1", os.path.join("tests", "fixtures", "trl_dpo", "golden.json")),
    "ipo": ("0.27.2", os.path.join("tests", "fixtures", "trl_dpo", "golden_ipo.json")),
}
ARGS = argparse.ArgumentParser(description="golden DPOTrainer steps")
ARGS.add_argument("--loss-type", choices=sorted(PINS), default="sigmoid")
LOSS_TYPE = ARGS.parse_args().loss_type
PINNED, OUT = PINS[LOSS_TYPE]


def import_trl():
    """TRL 0.23.1 predates transformers 5 (see tools/golden/trl_data.py): reduce the
    (bool, version) availability tuples to their booleans before TRL imports its trainers
    (a no-op on later versions)."""
    import trl.import_utils as tiu

    for name, value in list(vars(tiu).items()):
        if name.startswith("_") and name.endswith("_available") and isinstance(value, tuple):
            setattr(tiu, name, value[0])
    import trl
    from trl import DPOConfig, DPOTrainer

    assert trl.__version__ == PINNED, f"this fixture is pinned to trl {PINNED}, found {trl.__version__}"
    return trl, DPOConfig, DPOTrainer


trl, DPOConfig, DPOTrainer = import_trl()

MODEL = os.path.join("tests", "fixtures", "models", "llama")
DATA = os.path.join("tests", "fixtures", "train", "train.jsonl")
SEED = 0
METRICS = [
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
    "logits/chosen",
    "logits/rejected",
    "grad_norm",
    "learning_rate",
]
SETTINGS = {
    "loss_type": LOSS_TYPE,
    "beta": 0.1,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "max_grad_norm": 1.0,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "max_steps": 4,
    "max_length": 64,
    "max_prompt_length": 32,
    "optim": "adamw_torch",
    "weight_decay": 0.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
}


class InFileOrder(DPOTrainer):
    """DPOTrainer with the training data in file order."""

    def _get_train_sampler(self, train_dataset=None):
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)


class Record(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.steps.append({"step": state.global_step, **{k: float(logs[k]) for k in METRICS}})


def main():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    load = lambda: AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager")
    policy, reference = load(), load()
    for m in (policy, reference):
        # transformers 5 dropped `PreTrainedModel.warnings_issued`, which TRL 0.23.1 writes to.
        if not hasattr(m, "warnings_issued"):
            m.warnings_issued = {}
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    train = datasets.load_dataset("json", data_files=DATA, split="train")
    s = SETTINGS
    args = DPOConfig(
        output_dir=os.path.join("/tmp", "trl_dpo_steps"),
        report_to="none",
        use_cpu=True,
        # TRL's configs default to bf16 autocast (`bf16=None` → True); the golden run is pure f32.
        bf16=False,
        fp16=False,
        seed=SEED,
        loss_type=s["loss_type"],
        beta=s["beta"],
        precompute_ref_log_probs=False,
        learning_rate=s["learning_rate"],
        lr_scheduler_type=s["lr_scheduler_type"],
        warmup_steps=s["warmup_steps"],
        max_grad_norm=s["max_grad_norm"],
        per_device_train_batch_size=s["per_device_train_batch_size"],
        gradient_accumulation_steps=s["gradient_accumulation_steps"],
        max_steps=s["max_steps"],
        max_length=s["max_length"],
        max_prompt_length=s["max_prompt_length"],
        optim=s["optim"],
        weight_decay=s["weight_decay"],
        adam_beta1=s["adam_beta1"],
        adam_beta2=s["adam_beta2"],
        adam_epsilon=s["adam_epsilon"],
        logging_steps=1,
        save_strategy="no",
        disable_dropout=True,
        dataloader_num_workers=0,
    )
    record = Record()
    trainer = InFileOrder(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[record],
    )
    trainer.train()
    assert [r["step"] for r in record.steps] == [1, 2, 3, 4], record.steps
    golden = {
        "header": {
            "generator": "tools/golden/trl_dpo_steps.py",
            "versions": {
                "trl": trl.__version__,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "datasets": datasets.__version__,
                "python": sys.version.split()[0],
            },
            "seed": SEED,
            "model": MODEL,
            "data": DATA,
            "data_order": "file order (SequentialSampler)",
            "settings": s,
            "device": "cpu",
            "dtype": "float32",
        },
        "steps": record.steps,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    for r in record.steps:
        print(r)


if __name__ == "__main__":
    main()
