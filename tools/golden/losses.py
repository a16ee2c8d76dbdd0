"""Golden fixture for ganpo's preference losses (crates/ganpo/src/losses/), computed by independent
implementations.

Where the installed TRL has the loss, the expected values come from TRL's own code, called in float64:
`DPOTrainer.dpo_loss` (DPO family), `CPOTrainer.cpo_loss` (CPO, SimPO), `ORPOTrainer.odds_ratio_loss`
(ORPO) and `RunningMoments` (BCO-pair's running mean). The glue TRL runs around them in
`get_batch_loss_metrics` (the NLL term, RPO, WPO, loss-type mixes) is transcribed below line by line.
Losses TRL 0.23 lacks are transcribed from their reference code: `sigmoid_norm` and LD-DPO's
completion-relative positions from TRL 1.x (`trl/trainer/dpo_trainer.py`, `_compute_loss`), SimPO's
hinge from princeton-nlp/SimPO `scripts/simpo_trainer.py` (`simpo_loss`).

Inputs are float32 values (so the Rust side sees exactly the same numbers); every reference computation
runs in float64 on them. For each case the fixture holds per-example losses, rewards and the gradient of
sum_i c_i * loss_i with respect to the policy log-probs (c: a fixed random cotangent).

Run from the repository root with a Python that has torch:  python3 tools/golden/losses.py
"""

import json
import os
import platform
import sys
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
import trl
import trl.import_utils as trl_import_utils

# transformers 5's `_is_package_available` returns a `(found, version)` tuple, which TRL 0.23 reads as
# truthy, so it would import optional packages that are not installed. Tell it the truth.
for _name in dir(trl_import_utils):
    _flag = getattr(trl_import_utils, _name)
    if _name.startswith("_") and _name.endswith("_available") and isinstance(_flag, tuple):
        setattr(trl_import_utils, _name, bool(_flag[0]))

from trl.trainer.cpo_trainer import CPOTrainer
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.orpo_trainer import ORPOTrainer
from trl.trainer.utils import RunningMoments

SEED = 20260117
OUT = os.path.join("tests", "fixtures", "losses", "golden.json")
CPU = SimpleNamespace(device=torch.device("cpu"), use_distributed=False)
TRL_VERSION = trl.__version__


def f32(a):
    """Rounds to float32 and back, so fixture inputs are exactly representable in f32."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def make_batch(rng):
    """8 pairs: pair 0 has policy = reference (margin exactly 0), pairs 1 and 2 margins of about +50 and
    -50, pair 3 a chosen average log-prob of -1e-6 (ORPO's log(1 - e^x) near 0), pairs 4-7 random."""
    b = 8
    chosen_counts = rng.integers(2, 40, size=b).astype(np.float64)
    rejected_counts = rng.integers(2, 40, size=b).astype(np.float64)
    chosen_counts[3] = 3.0
    pc = f32(chosen_counts * rng.uniform(-2.5, -0.05, size=b))
    pr = f32(rejected_counts * rng.uniform(-3.0, -0.1, size=b))
    pc[3] = f32(-3e-6)
    rc = f32(pc + rng.normal(0.0, 4.0, size=b))
    rr = f32(pr + rng.normal(0.0, 4.0, size=b))
    rc[0], rr[0] = pc[0], pr[0]
    rc[1], rr[1] = f32(pc[1] - 30.0), f32(pr[1] + 20.0)
    rc[2], rr[2] = f32(pc[2] + 25.0), f32(pr[2] - 25.0)
    return dict(
        policy_chosen_logps=pc,
        policy_rejected_logps=pr,
        ref_chosen_logps=rc,
        ref_rejected_logps=rr,
        chosen_counts=chosen_counts,
        rejected_counts=rejected_counts,
        wpo_chosen_log_weights=f32(rng.uniform(-1.5, 0.6, size=b)),
        wpo_rejected_log_weights=f32(rng.uniform(-1.5, 0.6, size=b)),
        cotangent=f32(rng.uniform(0.5, 1.5, size=b)),
    )


def make_token_batch(rng):
    """3 pairs of padded sequences (prompt positions, completion, right padding) with per-token log-probs,
    for LD-DPO. Prompt lengths differ, so absolute and completion-relative positions disagree."""
    b, t = 3, 12
    prompt = [2, 4, 3, 1, 3, 2]
    length = [5, 2, 3, 6, 4, 4]  # chosen 0..3, rejected 3..6: shared lengths 5∧6, 2∧4, 3∧4
    mask = np.zeros((2 * b, t))
    for row in range(2 * b):
        mask[row, prompt[row] : prompt[row] + length[row]] = 1.0
    token_logps = f32(rng.uniform(-4.0, -0.01, size=(2 * b, t)) * mask)
    sums = f32(token_logps.sum(1))
    counts = mask.sum(1)
    return dict(
        token_logps=token_logps,
        mask=mask,
        policy_chosen_logps=sums[:b],
        policy_rejected_logps=sums[b:],
        ref_chosen_logps=f32(sums[:b] + rng.normal(0.0, 2.0, size=b)),
        ref_rejected_logps=f32(sums[b:] + rng.normal(0.0, 2.0, size=b)),
        chosen_counts=counts[:b],
        rejected_counts=counts[b:],
        cotangent=f32(rng.uniform(0.5, 1.5, size=b)),
    )


def t64(a, grad=False):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def trl_dpo(loss_type, pc, pr, rc, rr, beta, label_smoothing=0.0, discopop_tau=0.05, running=None):
    """TRL's own `DPOTrainer.dpo_loss`, on a stand-in `self` holding only the attributes it reads."""
    me = SimpleNamespace(
        beta=beta,
        label_smoothing=label_smoothing,
        reference_free=False,
        f_divergence_type="reverse_kl",
        f_divergence_params=None,
        accelerator=CPU,
        args=SimpleNamespace(discopop_tau=discopop_tau),
        running=running,
    )
    return DPOTrainer.dpo_loss(me, pc, pr, rc, rr, loss_type=loss_type)


def nll(pc, chosen_counts):
    """TRL's `nll_loss`: token-mean cross-entropy over all chosen completion tokens of the batch."""
    return -pc.sum() / chosen_counts.sum()


def avg(x, n):
    return x / n


def case_fn(name, batch, objective, extra=None):
    """Returns a function of the policy log-prob leaves computing (losses, chosen_rewards, rejected_rewards)
    with the reference implementation, and the reference's description."""
    extra = extra or {}
    rc, rr = t64(batch["ref_chosen_logps"]), t64(batch["ref_rejected_logps"])
    nc, nr = t64(batch["chosen_counts"]), t64(batch["rejected_counts"])
    kind = objective["type"]
    beta = objective.get("beta")
    eps = objective.get("label_smoothing", 0.0)
    trl_ref = f"trl {TRL_VERSION} DPOTrainer.dpo_loss"

    if kind in ("sigmoid", "robust", "hinge", "nca_pair", "sppo_hard", "aot", "apo_zero", "apo_down"):
        return (lambda pc, pr: trl_dpo(kind, pc, pr, rc, rr, beta, eps)), trl_ref
    if kind == "exo_pair":
        return (lambda pc, pr: trl_dpo(kind, pc, pr, rc, rr, beta, eps)), trl_ref
    if kind == "aot_unpaired":
        return (lambda pc, pr: trl_dpo("aot_pair", pc, pr, rc, rr, beta, eps)), trl_ref + " (aot_pair)"
    if kind == "discopop":
        tau = objective["discopop_tau"]
        return (lambda pc, pr: trl_dpo(kind, pc, pr, rc, rr, beta, discopop_tau=tau)), trl_ref
    if kind == "ipo":
        # TRL divides policy and reference log-probs by the counts in concatenated_forward for "ipo".
        return (
            lambda pc, pr: trl_dpo(kind, avg(pc, nc), avg(pr, nr), avg(rc, nc), avg(rr, nr), beta)
        ), trl_ref + " on averaged log-probs (as concatenated_forward)"
    if kind == "sigmoid_norm":

        def sigmoid_norm(pc, pr):
            # TRL 1.x _compute_loss, loss_type == "sigmoid_norm" (reverse-KL scores).
            chosen_scores, rejected_scores = pc - rc, pr - rr
            delta = chosen_scores / nc.clamp(min=1.0) - rejected_scores / nr.clamp(min=1.0)
            losses = -F.logsigmoid(beta * delta)
            return losses, beta * chosen_scores.detach(), beta * rejected_scores.detach()

        return sigmoid_norm, "transcription of TRL 1.x dpo_trainer.py sigmoid_norm"
    if kind == "bco_pair":
        running = extra["running"]
        return (lambda pc, pr: trl_dpo(kind, pc, pr, rc, rr, beta, running=running)), (
            trl_ref + " + trl RunningMoments"
        )
    if kind == "simpo":
        gbr, sft = objective["gamma_beta_ratio"], objective.get("sft_weight", 0.0)
        if objective.get("loss_type", "sigmoid") == "hinge":

            def simpo_hinge(pc, pr):
                # princeton-nlp/SimPO simpo_loss, loss_type == "hinge", plus sft_weight * CE.
                ac, ar = avg(pc, nc), avg(pr, nr)
                logits = (ac - ar) - gbr
                losses = torch.relu(1 - beta * logits) + sft * nll(pc, nc)
                return losses, beta * ac.detach(), beta * ar.detach()

            return simpo_hinge, "transcription of princeton-nlp/SimPO simpo_loss (hinge)"

        def simpo(pc, pr):
            me = SimpleNamespace(
                alpha=0.0, loss_type="simpo", simpo_gamma=beta * gbr, beta=beta, label_smoothing=eps, accelerator=CPU
            )
            losses, cr, rj = CPOTrainer.cpo_loss(me, avg(pc, nc), avg(pr, nr))
            return losses + sft * nll(pc, nc), cr, rj

        return simpo, f"trl {TRL_VERSION} CPOTrainer.cpo_loss(loss_type='simpo', simpo_gamma=beta*gamma_beta_ratio)"
    if kind == "cpo":
        alpha = objective["cpo_alpha"]

        def cpo(pc, pr):
            me = SimpleNamespace(alpha=0.0, loss_type="sigmoid", beta=beta, label_smoothing=eps, accelerator=CPU)
            losses, cr, rj = CPOTrainer.cpo_loss(me, pc, pr)
            return losses + alpha * nll(pc, nc), cr, rj

        return cpo, f"trl {TRL_VERSION} CPOTrainer.cpo_loss + cpo_alpha * nll_loss"
    if kind == "orpo":

        def orpo(pc, pr):
            me = SimpleNamespace(beta=beta, accelerator=CPU)
            losses, cr, rj, _, _ = ORPOTrainer.odds_ratio_loss(me, avg(pc, nc), avg(pr, nr))
            return nll(pc, nc) - losses, cr, rj

        return orpo, f"trl {TRL_VERSION} ORPOTrainer.odds_ratio_loss; loss = nll - losses"
    raise ValueError(kind)


def composed(batch, loss, extra):
    """TRL v0.23 get_batch_loss_metrics: weighted loss types, then + rpo_alpha * nll, then * WPO weight."""
    mix = loss.get("mix") or [dict(weight=1.0, objective=loss["objective"])]
    parts = [(m["weight"], case_fn("", batch, m["objective"], extra)) for m in mix]
    nc = t64(batch["chosen_counts"])
    refs = sorted({desc for _, (_, desc) in parts})

    def run(pc, pr):
        losses, cr, rj = 0, 0, 0
        for weight, (fn, _) in parts:
            l, c, r = fn(pc, pr)
            losses, cr, rj = losses + l * weight, cr + c * weight, rj + r * weight
        if loss.get("rpo_alpha") is not None:
            losses = losses + loss["rpo_alpha"] * nll(pc, nc)
        if loss.get("use_weighting"):
            w = t64(batch["wpo_chosen_log_weights"]) + t64(batch["wpo_rejected_log_weights"])
            losses = losses * torch.clamp(torch.exp(w), max=1)
        return losses, cr, rj

    glued = len(mix) > 1 or loss.get("rpo_alpha") is not None or loss.get("use_weighting")
    glue = "; mix/RPO/WPO glue transcribed from trl 0.23 get_batch_loss_metrics" if glued else ""
    return run, "; ".join(refs) + glue


def evaluate(fn, pc_values, pr_values, cotangent):
    pc, pr = t64(pc_values, True), t64(pr_values, True)
    losses, cr, rj = fn(pc, pr)
    (losses * t64(cotangent)).sum().backward()
    return dict(
        losses=losses.tolist(),
        chosen_rewards=cr.tolist(),
        rejected_rewards=rj.tolist(),
        grad_policy_chosen_logps=pc.grad.tolist(),
        grad_policy_rejected_logps=pr.grad.tolist(),
    )


def ld_case(tok, loss):
    """LD-DPO (policy only) with completion-relative positions (TRL 1.x), then TRL 0.23's dpo_loss."""
    alpha, beta = loss["ld_alpha"], loss["objective"]["beta"]
    b = tok["policy_chosen_logps"].shape[0]
    token_logps = t64(tok["token_logps"], True)
    mask = t64(tok["mask"])
    comp_pos = mask.cumsum(dim=1)
    lens = mask.sum(dim=1)
    shared = torch.minimum(lens[:b], lens[b:])
    shared = torch.cat([shared, shared]).unsqueeze(1)
    shared_mask = (comp_pos > 0) & (comp_pos <= shared) & (mask > 0)
    tail_mask = (comp_pos > shared) & (mask > 0)
    logps = (token_logps * shared_mask).sum(1) + alpha * (token_logps * tail_mask).sum(1)
    rc, rr = t64(tok["ref_chosen_logps"]), t64(tok["ref_rejected_logps"])
    losses, cr, rj = trl_dpo("sigmoid", logps[:b], logps[b:], rc, rr, beta)
    (losses * t64(tok["cotangent"])).sum().backward()
    return dict(
        losses=losses.tolist(),
        chosen_rewards=cr.tolist(),
        rejected_rewards=rj.tolist(),
        grad_token_logps=token_logps.grad.tolist(),
    )


def objective(kind, **params):
    return dict(type=kind, **params)


def main():
    rng = np.random.default_rng(SEED)
    batch = make_batch(rng)
    tok = make_token_batch(rng)
    single = [
        ("sigmoid", objective("sigmoid", beta=0.1, label_smoothing=0.0)),
        ("sigmoid_cdpo", objective("sigmoid", beta=0.1, label_smoothing=0.1)),
        ("sigmoid_beta1", objective("sigmoid", beta=1.0, label_smoothing=0.0)),
        ("robust", objective("robust", beta=0.1, label_smoothing=0.1)),
        ("ipo", objective("ipo", beta=0.1)),
        ("ipo_beta05", objective("ipo", beta=0.5)),
        ("hinge", objective("hinge", beta=0.1)),
        ("exo_pair", objective("exo_pair", beta=0.1, label_smoothing=1e-3)),
        ("exo_pair_eps02", objective("exo_pair", beta=1.0, label_smoothing=0.2)),
        ("nca_pair", objective("nca_pair", beta=0.1)),
        ("sppo_hard", objective("sppo_hard", beta=0.1)),
        ("sppo_hard_paper", objective("sppo_hard", beta=1e-3)),
        ("aot", objective("aot", beta=0.1, label_smoothing=0.0)),
        ("aot_smoothed", objective("aot", beta=0.1, label_smoothing=0.1)),
        ("aot_unpaired", objective("aot_unpaired", beta=0.1, label_smoothing=0.0)),
        ("apo_zero", objective("apo_zero", beta=0.1)),
        ("apo_down", objective("apo_down", beta=0.1)),
        ("discopop", objective("discopop", beta=0.1, discopop_tau=0.05)),
        ("discopop_beta1", objective("discopop", beta=1.0, discopop_tau=0.05)),
        ("sigmoid_norm", objective("sigmoid_norm", beta=0.1)),
        ("sigmoid_norm_beta5", objective("sigmoid_norm", beta=5.0)),
        ("simpo", objective("simpo", beta=2.0, gamma_beta_ratio=0.25)),
        ("simpo_smoothed_sft", objective("simpo", beta=2.5, gamma_beta_ratio=0.5, label_smoothing=0.1, sft_weight=0.5)),
        ("simpo_hinge", objective("simpo", beta=2.0, gamma_beta_ratio=0.3, loss_type="hinge")),
        ("cpo", objective("cpo", beta=0.1, label_smoothing=0.0, cpo_alpha=1.0)),
        ("cpo_smoothed", objective("cpo", beta=0.5, label_smoothing=0.1, cpo_alpha=0.3)),
        ("orpo", objective("orpo", beta=0.1)),
        ("orpo_lambda1", objective("orpo", beta=1.0)),
    ]
    cases = []
    for name, obj in single:
        loss = dict(objective=obj)
        fn, ref = composed(batch, loss, {})
        step = evaluate(fn, batch["policy_chosen_logps"], batch["policy_rejected_logps"], batch["cotangent"])
        cases.append(dict(name=name, reference=ref, loss=loss, steps=[step]))

    composites = [
        ("rpo", dict(objective=objective("sigmoid", beta=0.1), rpo_alpha=1.0)),
        ("rpo_wpo", dict(objective=objective("sigmoid", beta=0.1), rpo_alpha=0.5, use_weighting=True)),
        ("wpo_ipo", dict(objective=objective("ipo", beta=0.1), use_weighting=True)),
        (
            "mpo_mix",
            dict(
                mix=[
                    dict(weight=0.8, objective=objective("sigmoid", beta=0.1)),
                    dict(weight=0.2, objective=objective("bco_pair", beta=0.1)),
                ],
                rpo_alpha=1.0,
            ),
        ),
        (
            "mix_simpo_apo_zero",
            dict(
                mix=[
                    dict(weight=0.5, objective=objective("simpo", beta=2.0, gamma_beta_ratio=0.25)),
                    dict(weight=1.5, objective=objective("apo_zero", beta=0.1)),
                ]
            ),
        ),
    ]
    for name, loss in composites:
        extra = dict(running=RunningMoments(accelerator=CPU))
        fn, ref = composed(batch, loss, extra)
        step = evaluate(fn, batch["policy_chosen_logps"], batch["policy_rejected_logps"], batch["cotangent"])
        if "running" in extra and any(m["objective"]["type"] == "bco_pair" for m in loss.get("mix", [])):
            step["bco_mean"] = extra["running"].mean
        cases.append(dict(name=name, reference=ref, loss=loss, steps=[step]))

    # BCO-pair over three steps: the running mean is state carried between calls.
    running = RunningMoments(accelerator=CPU)
    loss = dict(objective=objective("bco_pair", beta=0.1))
    fn, ref = composed(batch, loss, dict(running=running))
    steps = []
    for k in range(3):
        pc = f32(batch["policy_chosen_logps"] + 1.5 * k)
        pr = f32(batch["policy_rejected_logps"] - 0.7 * k * k)
        step = evaluate(fn, pc, pr, batch["cotangent"])
        step.update(policy_chosen_logps=pc.tolist(), policy_rejected_logps=pr.tolist(), bco_mean=running.mean)
        steps.append(step)
    cases.append(dict(name="bco_pair_three_steps", reference=ref, loss=loss, steps=steps))

    ld_loss = dict(objective=objective("sigmoid", beta=0.1), ld_alpha=0.5)
    ld_cases = [
        dict(
            name="ld_dpo",
            reference=f"LD-DPO masks transcribed from TRL 1.x _compute_loss (policy only); trl {TRL_VERSION} dpo_loss",
            loss=ld_loss,
            steps=[ld_case(tok, ld_loss)],
        )
    ]

    fixture = dict(
        header=dict(
            generator="tools/golden/losses.py",
            seed=SEED,
            dtype="inputs float32, references float64",
            versions=dict(
                python=platform.python_version(),
                numpy=np.__version__,
                torch=torch.__version__,
                trl=TRL_VERSION,
            ),
        ),
        batch={k: v.tolist() for k, v in batch.items()},
        token_batch={k: v.tolist() for k, v in tok.items()},
        cases=cases,
        token_cases=ld_cases,
    )
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases) + len(ld_cases)} cases, trl {TRL_VERSION}", file=sys.stderr)


if __name__ == "__main__":
    main()
