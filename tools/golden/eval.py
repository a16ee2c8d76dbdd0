"""Golden fixtures for ganpo's evaluation metrics (NumPy / PyTorch).

Writes tests/fixtures/eval/golden.json: two point sets with their median-heuristic bandwidth and
unbiased Gaussian-kernel MMD², and random policy/reference logits with the exact per-sequence KL.

Run from the repository root:  python tools/golden/eval.py
"""

import json
import sys

import numpy as np
import torch

SEED = 5


def mmd2_unbiased(x, y, s2):
    def k(a, b):
        d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d / (2 * s2))
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


def main():
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(7, 5))
    y = rng.normal(loc=0.5, size=(6, 5))
    z = np.concatenate([x, y])
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    s2 = float(np.median(d[np.triu_indices(len(z), 1)]))
    p = torch.tensor(rng.normal(size=(2, 4, 9)) * 2, dtype=torch.float32)
    q = torch.tensor(rng.normal(size=(2, 4, 9)) * 2, dtype=torch.float32)
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]], dtype=torch.float32)
    lp, lq = torch.log_softmax(p, -1), torch.log_softmax(q, -1)
    kl = ((lp.exp() * (lp - lq)).sum(-1) * mask).sum(-1)
    json.dump({
        "generator": "tools/golden/eval.py", "seed": SEED, "numpy": np.__version__, "torch": torch.__version__,
        "python": sys.version.split()[0],
        "x": x.tolist(), "y": y.tolist(), "median_sq_distance": s2, "mmd2": float(mmd2_unbiased(x, y, s2)),
        "policy_logits": p.tolist(), "ref_logits": q.tolist(), "mask": mask.tolist(), "token_kl": kl.tolist(),
    }, open("tests/fixtures/eval/golden.json", "w"), indent=1)


if __name__ == "__main__":
    main()
