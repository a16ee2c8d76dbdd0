"""Golden per-step GANPO training values from the authors' own, unmodified trainer.

Runs `QuadGANDPOTrainer` from `GANPO_trl.py` (github.com/enyijiang/GANPO at commit 58ca06d, fetched
at run time and checked against its sha256; never committed here) on TRL 0.27.2 / transformers 5.0
for five optimizer steps, twice: 12 pairs as one micro-batch (gradient accumulation 1) and 2 × 6
pairs (accumulation 2). The policy and reference are the tiny Llama of tests/fixtures/models/llama,
the data tests/fixtures/train/train.jsonl in file order (the one change to their setup: a
`SequentialSampler`, as ganpo's `training.shuffle = false`), f32 on CPU (`bf16=False`).

Both discriminators are the authors' `TransformerDiscriminator` (width 64, 4 heads, 2 layers,
64 positions, dropout 0) drawn with torch's seed 0; their initial `state_dict`s (parameters and
spectral-norm u/v) are written to tests/fixtures/authors_ganpo/init/, which ganpo reads through
`[ganpo] init_from`, so both sides start from the same weights.

Recorded per optimizer step (what their trainer logs, plus its state read after the step):
- `loss`, `grad_norm`, `learning_rate`: the transformers `Trainer` log (pre-clip norm; the policy's
  linear schedule);
- `dpo_loss`, `g_loss_mimic`, `g_loss_mimic_rej`: their `self.log` per micro-batch, averaged over
  the step's micro-batches (each is a mean over its pairs);
- `disc_loss_pos`, `disc_loss_neg`: their `self.log` per micro-batch (already divided by the
  accumulation steps), summed over the step's micro-batches;
- `disc_learning_rates`: the learning rate of each discriminator update made during the step (read
  by an optimizer pre-step hook; empty when their gate did not fire);
- `running_means`: their six running means after the step, under ganpo's names;
- `spectral`: every spectral-norm u/v of both discriminators after the step.

Output: tests/fixtures/authors_ganpo/golden.json (+ init/*.safetensors). Run from the repository
root, in an environment with the pinned packages:

    pip install torch==2.15.0 transformers==5.0.0 trl==0.27.2 accelerate datasets peft safetensors
    python tools/golden/authors_ganpo_steps.py                      # downloads GANPO_trl.py
    python tools/golden/authors_ganpo_steps.py --authors-file PATH  # or reads a copy
"""

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import urllib.request

import datasets
import safetensors.torch
import torch
import transformers
from torch.utils.data import SequentialSampler
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

COMMIT = "58ca06deaf9685d2ab2f6b18e49052ed7642ebad"
URL = f"https://raw.githubusercontent.com/enyijiang/GANPO/{COMMIT}/GANPO_trl.py"
SHA256 = "2bbe3184ed2ec51a6550c216b6946885661e312a5c9998a7f124ff39388210da"
MODEL = os.path.join("tests", "fixtures", "models", "llama")
DATA = os.path.join("tests", "fixtures", "train", "train.jsonl")
OUT_DIR = os.path.join("tests", "fixtures", "authors_ganpo")
SEED = 0
STEPS = 5
PAIRS_PER_STEP = 12
DISC = {"hidden_dim": 64, "num_layers": 2, "num_heads": 4, "max_seq_len": 64, "dropout": 0.0}
SETTINGS = {
    "beta": 0.1,
    "learning_rate": 1e-3,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0,
    "max_grad_norm": 1.0,
    "max_steps": STEPS,
    "max_length": 64,
    "max_prompt_length": 32,
    "optim": "adamw_torch",
    "weight_decay": 0.0,
}
# Their attribute -> ganpo's name for each running mean.
MEANS = {
    "running_mean_policy": "plus_policy",
    "running_mean_pos": "plus_ref_chosen",
    "running_mean_neg": "plus_ref_rejected",
    "running_mean_policy_rejected_rej": "minus_policy",
    "running_mean_pos_rej": "minus_ref_chosen",
    "running_mean_neg_rej": "minus_ref_rejected",
}
SPECTRAL = ["project_in", "head.0", "head.2"]


def authors_module(path):
    """Their file, by path or downloaded, checked against the pinned sha256, imported as a module."""
    if path is None:
        path = os.path.join(tempfile.mkdtemp(), "GANPO_trl.py")
        with urllib.request.urlopen(URL) as r, open(path, "wb") as f:
            f.write(r.read())
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{path}: sha256 {digest}, expected {SHA256} (GANPO_trl.py at {COMMIT})")
    spec = importlib.util.spec_from_file_location("GANPO_trl", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Record(TrainerCallback):
    """Collects the trainer's logs and reads its GANPO state after each optimizer step."""

    def __init__(self):
        self.trainer = None
        self.micro = {}  # optimizer step (1-based) -> list of their per-micro-batch logs
        self.steps = []
        self.disc_lrs = {}

    def on_train_begin(self, args, state, control, **kwargs):
        # Their discriminator optimizers exist once `create_optimizer_and_scheduler` has run.
        inner = self.trainer.disc_chosen_optimizer.optimizer

        def pre_step(opt, *_):
            self.disc_lrs.setdefault(self.trainer.state.global_step + 1, []).append(
                opt.param_groups[0]["lr"]
            )

        inner.register_step_pre_hook(pre_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in logs:
            step = state.global_step
            micro = self.micro.get(step, [])
            avg = lambda k: sum(m[k] for m in micro if k in m) / sum(1 for m in micro if k in m)
            total = lambda k: sum(m[k] for m in micro if k in m)
            t = self.trainer
            self.steps.append(
                {
                    "step": step,
                    "loss": float(logs["loss"]),
                    "grad_norm": float(logs["grad_norm"]),
                    "learning_rate": float(logs["learning_rate"]),
                    "dpo_loss": avg("dpo_loss"),
                    "g_loss_mimic": avg("g_loss_mimic"),
                    "g_loss_mimic_rej": avg("g_loss_mimic_rej"),
                    "disc_loss_pos": total("disc_loss_pos"),
                    "disc_loss_neg": total("disc_loss_neg"),
                    "disc_learning_rates": self.disc_lrs.get(step, []),
                    "running_means": {ours: float(getattr(t, theirs)) for theirs, ours in MEANS.items()},
                    "spectral": spectral_state(t),
                }
            )
        else:
            # Their own `self.log` calls inside `training_step`, before the step's optimizer update.
            self.micro.setdefault(state.global_step + 1, []).append(dict(logs))


def spectral_state(trainer):
    out = {}
    for side, disc in (("chosen", trainer.disc_chosen), ("rejected", trainer.disc_rejected)):
        sd = disc.state_dict()
        for layer in SPECTRAL:
            for uv in ("u", "v"):
                out[f"{side}/{layer}.weight_{uv}"] = sd[f"{layer}.weight_{uv}"].tolist()
    return out


def run(ganpo, accumulation, init_dir):
    torch.manual_seed(SEED)
    load = lambda: AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation="eager")
    policy, reference = load(), load()
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    discs = {}
    for side in ("chosen", "rejected"):
        d = ganpo.TransformerDiscriminator(input_dim=policy.config.hidden_size, **DISC)
        d.load_state_dict(safetensors.torch.load_file(os.path.join(init_dir, f"disc_{side}.safetensors")))
        discs[side] = d
    train = datasets.load_dataset("json", data_files=DATA, split="train")
    s = SETTINGS
    args = ganpo.DPOConfig(
        output_dir=os.path.join(tempfile.mkdtemp(), "authors_ganpo"),
        report_to="none",
        use_cpu=True,
        bf16=False,
        fp16=False,
        seed=SEED,
        beta=s["beta"],
        precompute_ref_log_probs=False,
        learning_rate=s["learning_rate"],
        lr_scheduler_type=s["lr_scheduler_type"],
        warmup_steps=s["warmup_steps"],
        max_grad_norm=s["max_grad_norm"],
        per_device_train_batch_size=PAIRS_PER_STEP // accumulation,
        gradient_accumulation_steps=accumulation,
        max_steps=s["max_steps"],
        max_length=s["max_length"],
        max_prompt_length=s["max_prompt_length"],
        optim=s["optim"],
        weight_decay=s["weight_decay"],
        logging_steps=1,
        save_strategy="no",
        disable_dropout=True,
        dataloader_num_workers=0,
    )

    class InFileOrder(ganpo.QuadGANDPOTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    record = Record()
    trainer = InFileOrder(
        disc_chosen=discs["chosen"],
        disc_rejected=discs["rejected"],
        projector=None,
        best_model=None,
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[record],
    )
    record.trainer = trainer
    trainer.train()
    assert [r["step"] for r in record.steps] == list(range(1, STEPS + 1)), record.steps
    return record.steps


def write_initial_discriminators(ganpo, init_dir):
    torch.manual_seed(SEED)
    hidden = AutoModelForCausalLM.from_pretrained(MODEL).config.hidden_size
    os.makedirs(init_dir, exist_ok=True)
    for side in ("chosen", "rejected"):
        d = ganpo.TransformerDiscriminator(input_dim=hidden, **DISC)
        state = {k: v.contiguous() for k, v in d.state_dict().items()}
        safetensors.torch.save_file(state, os.path.join(init_dir, f"disc_{side}.safetensors"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-file", help="a local copy of GANPO_trl.py at the pinned commit")
    a = parser.parse_args()
    ganpo = authors_module(a.authors_file)
    torch.use_deterministic_algorithms(True)
    init_dir = os.path.join(OUT_DIR, "init")
    write_initial_discriminators(ganpo, init_dir)
    runs = {f"accumulation_{k}": run(ganpo, k, init_dir) for k in (1, 2)}
    import accelerate
    import trl

    golden = {
        "header": {
            "generator": "tools/golden/authors_ganpo_steps.py",
            "authors_code": {"url": URL, "sha256": SHA256},
            "versions": {
                "trl": trl.__version__,
                "transformers": transformers.__version__,
                "accelerate": accelerate.__version__,
                "torch": torch.__version__,
                "datasets": datasets.__version__,
                "python": sys.version.split()[0],
            },
            "seed": SEED,
            "model": MODEL,
            "data": DATA,
            "data_order": "file order (SequentialSampler)",
            "pairs_per_step": PAIRS_PER_STEP,
            "discriminator": DISC,
            "settings": SETTINGS,
            "device": "cpu",
            "dtype": "float32",
        },
        "runs": runs,
    }
    with open(os.path.join(OUT_DIR, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    for name, steps in runs.items():
        for r in steps:
            print(name, {k: v for k, v in r.items() if k != "spectral"})


if __name__ == "__main__":
    main()
