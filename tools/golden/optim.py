"""Golden fixtures for ganpo's optimizer, clipping and schedules, produced by PyTorch and transformers.

Writes tests/fixtures/optim/golden.safetensors (initial parameters, the gradient fed at every step,
the parameters after every step) and golden.json (versions, seed, hyper-parameters, learning rates
per step, pre-clip gradient norms, and transformers' schedule multipliers).

Run from the repository root:  python tools/golden/optim.py
"""

import json
import sys

import torch
import transformers
from safetensors.torch import save_file

SEED = 99
STEPS = 6
LR = 1e-2
HP = dict(adam_beta1=0.8, adam_beta2=0.95, adam_epsilon=1e-6, weight_decay=0.1)
MAX_NORM = 1.5


def main():
    g = torch.Generator().manual_seed(SEED)
    params = {
        "layer.weight": torch.randn(4, 3, generator=g),
        "layer.bias": torch.randn(4, generator=g),
        "model.norm.weight": torch.randn(3, generator=g),
    }
    torch_params = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}
    decay = [p for k, p in torch_params.items() if not (k.endswith("bias") or "norm" in k)]
    no_decay = [p for k, p in torch_params.items() if k.endswith("bias") or "norm" in k]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": HP["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LR, betas=(HP["adam_beta1"], HP["adam_beta2"]), eps=HP["adam_epsilon"],
    )
    sched = transformers.get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=STEPS)
    out = {f"init.{k}": v for k, v in params.items()}
    lrs, norms = [], []
    for step in range(STEPS):
        for k, p in torch_params.items():
            grad = torch.randn(p.shape, generator=g) * (3.0 if step % 2 == 0 else 0.3)
            p.grad = grad.clone()
            out[f"grad{step}.{k}"] = grad
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(torch_params.values()), MAX_NORM)))
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
        for k, p in torch_params.items():
            out[f"after{step}.{k}"] = p.detach().clone()
    save_file({k: v.contiguous() for k, v in out.items()}, "tests/fixtures/optim/golden.safetensors")

    # Schedule multipliers for every kind, with a warmup, over 10 steps.
    dummy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedules = {}
    for kind, name in [("constant", "constant_with_warmup"), ("linear", "linear"), ("cosine", "cosine")]:
        dummy.param_groups[0]["lr"] = 1.0
        dummy.param_groups[0]["initial_lr"] = 1.0
        s = transformers.get_scheduler(name, dummy, num_warmup_steps=3, num_training_steps=10)
        vals = []
        for _ in range(12):
            vals.append(s.get_last_lr()[0])
            dummy.step()
            s.step()
        schedules[kind] = vals
    with open("tests/fixtures/optim/golden.json", "w") as f:
        json.dump({
            "generator": "tools/golden/optim.py", "seed": SEED, "torch": torch.__version__,
            "transformers": transformers.__version__, "python": sys.version.split()[0],
            "lr": LR, "hp": HP, "max_norm": MAX_NORM, "steps": STEPS, "warmup_steps": 2,
            "lrs": lrs, "grad_norms": norms, "schedules": {"warmup_steps": 3, "total_steps": 10, "values": schedules},
        }, f, indent=1)
    print("lrs", lrs, "norms", norms)


if __name__ == "__main__":
    main()
