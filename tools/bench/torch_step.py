"""The training step `ganpo bench` times, in PyTorch eager on the CPU, printing the same fields.

Same shapes, batch and dtype (f32), same losses, same phase boundaries, same FLOP convention:

- model: a randomly initialized `LlamaForCausalLM` with SmolLM2-135M's shape (or `tiny`, or a
  Hugging Face directory with --model), initializer_range 0.02; the reference is a frozen deep copy
  of the policy's initial weights;
- batch: B pairs of T tokens, no padding, the first T/2 tokens of a pair shared and masked out of the
  loss; token ids from SplitMix64(seed) mod vocab, the very ids `ganpo bench` uses;
- DPO: TRL's sigmoid loss (beta 0.1) on summed completion log-probs (TRL's `selective_log_softmax`),
  plus the metrics TRL logs (rewards, accuracies, mean logits);
- GANPO (ganpo's default settings): the authors' TransformerDiscriminator and quad relativistic
  losses, ported in tools/golden/discriminator.py (imported here), width 512, depth 2, 8 heads,
  dropout 0.1 (tiny: width 32, depth 1, 4 heads), pooling over the attention mask, one
  discriminator AdamW step per policy step (lr = policy lr / 2, weight decay 0.01), then
  L = L_DPO + lambda * L_G through the frozen discriminators (lambda 1);
- then backward, global-norm clip at 1.0 and torch.optim.AdamW (lr 1e-6, betas 0.9/0.999, eps 1e-8).

Phases (time.perf_counter; CPU PyTorch is synchronous): reference_forward (no_grad forward and its
log-probs), policy_forward (up to logits and last hidden states), logps_and_loss, discriminator_update,
backward, optimizer (clip, step, zero_grad). Peak RSS: Linux VmHWM, reset through /proc/self/clear_refs
before each mode (as ganpo does), else resource.getrusage. The learning-rate schedule is left out
(constant lr): it does not change the work.

    python3 tools/bench/torch_step.py --shape smollm2-135m --batch-pairs 4 \
        --seq-len 256 --steps 2 --warmup 1 --threads 2 --output /tmp/torch.json

Not part of CI. tools/bench/side_by_side.sh runs this and `ganpo bench` back to back.
"""

import argparse
import copy
import gc
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
from discriminator import AuthorsObjective, TransformerDiscriminator  # noqa: E402

# crates/ganpo-cli/src/bench/shape.rs, field for field.
SHAPES = {
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
                 rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True),
    "smollm2-360m": dict(vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, head_dim=64, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True),
}
DISCRIMINATORS = {
    "tiny": dict(width=32, depth=1, heads=4, dropout=0.1, max_positions=512),
    "smollm2-135m": dict(width=512, depth=2, heads=8, dropout=0.1, max_positions=2048),
    "smollm2-360m": dict(width=512, depth=2, heads=8, dropout=0.1, max_positions=2048),
}
BETA, LAMBDA, LR, MAX_GRAD_NORM, MOMENTUM = 0.1, 1.0, 1e-6, 1.0, 0.9
PHASES = ["reference_forward", "policy_forward", "logps_and_loss", "discriminator_update", "backward", "optimizer"]
MASK64 = (1 << 64) - 1


# --- batch: crates/ganpo-cli/src/bench/batch.rs ---------------------------------------------------

def splitmix64(seed):
    """SplitMix64 (crates/ganpo/src/ganpo/rng.rs)."""
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


def synthetic_batch(pairs, seq_len, prompt_len, vocab, seed):
    rng = splitmix64(seed)
    draw = lambda n: [next(rng) % vocab for _ in range(n)]  # noqa: E731
    chosen, rejected = [], []
    for _ in range(pairs):
        prompt = draw(prompt_len)
        chosen.append(prompt + draw(seq_len - prompt_len))
        rejected.append(prompt + draw(seq_len - prompt_len))
    ids = torch.tensor(chosen + rejected, dtype=torch.long)
    attention = torch.ones_like(ids)
    loss_mask = torch.zeros(ids.shape, dtype=torch.float32)
    loss_mask[:, prompt_len:] = 1.0
    return ids, attention, loss_mask


# --- FLOPs: crates/ganpo-cli/src/bench/flops.rs ---------------------------------------------------

def decoder_forward_per_token(c, t):
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    q = c["num_attention_heads"] * c["head_dim"]
    kv = c["num_key_value_heads"] * c["head_dim"]
    weights = d * q + 2 * d * kv + q * d + 3 * d * f
    return c["num_hidden_layers"] * (2.0 * weights + 4.0 * t * q) + 2.0 * d * v


def discriminator_forward_per_token(dc, input_dim, t):
    w = dc["width"]
    layer = 2.0 * (4 * w * w + 2 * w * 4 * w) + 4.0 * t * w
    return 2.0 * input_dim * w + dc["depth"] * layer + 2.0 * (w * w + w) / t


def step_flops(c, dc, pairs, t):
    tokens = 2 * pairs * t
    forward = tokens * decoder_forward_per_token(c, t)
    total = 4 * forward  # reference forward + policy forward + 2x backward
    if dc is not None:
        per_token = discriminator_forward_per_token(dc, c["hidden_size"], t)
        total += 3 * tokens * per_token * 3 + tokens * per_token * 2
    return total


# --- the step ------------------------------------------------------------------------------------

def selective_log_softmax(logits, index):
    """TRL's (trl.trainer.utils) for float32: gather, minus a row-by-row logsumexp."""
    selected = torch.gather(logits, dim=-1, index=index.unsqueeze(-1)).squeeze(-1)
    lse = torch.stack([torch.logsumexp(row, dim=-1) for row in logits])
    return selected - lse


def forward(model, ids, attention):
    hidden = model.model(input_ids=ids, attention_mask=attention).last_hidden_state
    return model.lm_head(hidden), hidden


def logps(logits, ids, loss_mask):
    """Summed completion log-probs (labels shifted by one, as crates/ganpo/src/logps.rs) and TRL's
    mean logit."""
    mask = loss_mask[:, 1:]
    per_token = selective_log_softmax(logits[:, :-1], ids[:, 1:]) * mask
    b = ids.shape[0] // 2
    mean_logits = logits[:, :-1].detach().mean(-1)
    mean_logit = lambda s: ((mean_logits[s] * mask[s]).sum() / mask[s].sum()).item()  # noqa: E731
    return per_token.sum(-1), (mean_logit(slice(0, b)), mean_logit(slice(b, None)))


class Clock:
    def __init__(self):
        self.times = dict.fromkeys(PHASES, 0.0)
        self.mark = time.perf_counter()

    def lap(self, phase):
        now = time.perf_counter()
        self.times[phase] += now - self.mark
        self.mark = now


def train_step(run, ids, attention, loss_mask, clock):
    policy, reference, opt = run["policy"], run["reference"], run["opt"]
    b = ids.shape[0] // 2
    with torch.no_grad():
        ref_logits, ref_hidden = forward(reference, ids, attention)
        ref_logps, _ = logps(ref_logits, ids, loss_mask)
        del ref_logits
    clock.lap("reference_forward")
    logits, hidden = forward(policy, ids, attention)
    clock.lap("policy_forward")
    pol_logps, mean_logits = logps(logits, ids, loss_mask)
    clock.lap("logps_and_loss")
    mask = attention.to(torch.float32)  # ganpo's default pooling: the attention mask
    mask_c, mask_r = mask[:b], mask[b:]
    if run["ganpo"]:
        dp, dm, obj = run["dp"], run["dm"], run["obj"]
        h = hidden.detach()
        _, loss_plus, loss_minus = obj.disc_losses(dp, dm, h[:b], h[b:], ref_hidden[:b], ref_hidden[b:], mask_c, mask_r)
        (loss_plus + loss_minus).backward()
        run["opt_dp"].step()
        run["opt_dm"].step()
        run["opt_dp"].zero_grad(set_to_none=True)
        run["opt_dm"].zero_grad(set_to_none=True)
        clock.lap("discriminator_update")
    chosen_rewards = BETA * (pol_logps[:b] - ref_logps[:b]).detach()
    rejected_rewards = BETA * (pol_logps[b:] - ref_logps[b:]).detach()
    margin = (pol_logps[:b] - pol_logps[b:]) - (ref_logps[:b] - ref_logps[b:])
    loss = -F.logsigmoid(BETA * margin).mean()
    metrics = {"rewards/chosen": chosen_rewards.mean().item(), "rewards/rejected": rejected_rewards.mean().item(),
               "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
               "logits/chosen": mean_logits[0], "logits/rejected": mean_logits[1]}
    if run["ganpo"]:
        gen = obj.gen_loss(dp, dm, hidden[:b], hidden[b:], mask_c, mask_r)
        metrics["adv/loss"] = gen.item()
        loss = loss + LAMBDA * gen
    metrics["loss"] = loss.item()
    clock.lap("logps_and_loss")
    loss.backward()
    clock.lap("backward")
    norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), MAX_GRAD_NORM)
    if not (torch.isfinite(loss) and torch.isfinite(norm)):
        raise RuntimeError(f"non-finite loss {loss.item()} or gradient norm {norm.item()}")
    opt.step()
    opt.zero_grad(set_to_none=True)
    clock.lap("optimizer")
    return metrics


# --- setup and reporting -------------------------------------------------------------------------

def status_mib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mib():
    peak = status_mib("VmHWM:")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def build(args, mode, model_cfg, disc_cfg):
    torch.manual_seed(args.seed)
    if args.model:
        policy = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32,
                                                      attn_implementation=args.attn)
    else:
        config = LlamaConfig(**model_cfg, hidden_act="silu", attention_bias=False, mlp_bias=False,
                             initializer_range=0.02, bos_token_id=1, eos_token_id=2, pad_token_id=2,
                             attn_implementation=args.attn)
        policy = LlamaForCausalLM(config).to(torch.float32)
    policy.train()
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    run = {"policy": policy, "reference": reference, "ganpo": mode == "ganpo",
           "opt": torch.optim.AdamW(policy.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)}
    if run["ganpo"]:
        d = model_cfg["hidden_size"]
        make = lambda: TransformerDiscriminator(d, disc_cfg["width"], disc_cfg["depth"], disc_cfg["heads"],  # noqa: E731
                                               disc_cfg["max_positions"], dropout=disc_cfg["dropout"])
        run["dp"], run["dm"] = make(), make()
        run["obj"] = AuthorsObjective(MOMENTUM)
        for key in ["dp", "dm"]:
            run[f"opt_{key}"] = torch.optim.AdamW(run[key].parameters(), lr=LR / 2, weight_decay=0.01)
    return run


def time_matmul(m, k, n):
    x, w = torch.randn(m, k), torch.randn(n, k)
    flops = 2.0 * m * k * n
    torch.mm(x, w.t())
    best, reps, started = 0.0, 0, time.perf_counter()
    while reps < 3 or (time.perf_counter() - started < 0.3 and reps < 50):
        t0 = time.perf_counter()
        torch.mm(x, w.t())
        best = max(best, flops / (time.perf_counter() - t0) / 1e9)
        reps += 1
    return best


def table(r):
    m = r["model"]
    lines = [f"{r['tool']}: {m['source']} ({m['parameters'] / 1e6:.1f} M parameters), {r['batch_pairs']} pairs x "
             f"{r['seq_len']} tokens ({r['prompt_len']} prompt), {r['dtype']}, {r['threads']} threads, "
             f"{r['warmup']} warm-up + {r['steps']} timed steps",
             "f32 matmul peak: {:.1f} GFLOP/s ({})\n".format(r["matmul_peak_gflops"], ", ".join(
                 f"{t['label']} {t['m']}x{t['k']}x{t['n']}: {t['gflops']:.1f}" for t in r["matmul"]))]
    modes = r["modes"]
    lines.append(f"{'seconds per step':<24}" + "".join(f"{n:>12}" for n in modes))
    labels = ["reference forward", "policy forward", "log-probs + loss", "discriminator update", "backward",
              "optimizer (+ clip)"]
    for label, phase in zip(labels, PHASES):
        lines.append(f"{label:<24}" + "".join(f"{v['phases_s'][phase]:>12.4f}" for v in modes.values()))
    rows = [("other", "other_s", "{:.4f}"), ("step (mean)", "step_s", "{:.4f}"), ("step (min)", "step_s_min", "{:.4f}"),
            ("tokens/s", "tokens_per_s", "{:.1f}"), ("GFLOP/step", "gflop_per_step", "{:.1f}"),
            ("GFLOP/s", "gflops", "{:.1f}"), ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
            ("RSS before MiB", "rss_before_mib", "{:.0f}"), ("loss", "loss", "{:.4f}")]
    for label, key, fmt in rows:
        lines.append(f"{label:<24}" + "".join(f"{fmt.format(v[key]) if v[key] is not None else '-':>12}" for v in modes.values()))
    lines.insert(-3, f"{'% of matmul peak':<24}" + "".join(
        f"{100 * v['fraction_of_peak']:>11.1f}%" for v in modes.values()))
    if r["ganpo_overhead"] is not None:
        lines.append(f"\nGANPO overhead: {r['ganpo_overhead']:.3f}x DPO's step time")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a Hugging Face model directory (default: random weights of --shape)")
    ap.add_argument("--shape", default="smollm2-135m", choices=sorted(SHAPES))
    ap.add_argument("--batch-pairs", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--prompt-len", type=int)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--losses", default="dpo,ganpo")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="transformers attention implementation")
    ap.add_argument("--output", help="also write the report as JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as ganpo sets FTZ/DAZ
    modes_wanted = [m.strip() for m in args.losses.split(",")]
    for m in modes_wanted:
        if m not in ("dpo", "ganpo"):
            ap.error(f"unknown loss `{m}`; use dpo or ganpo")
    prompt_len = args.prompt_len or args.seq_len // 2
    if args.model:
        with open(os.path.join(args.model, "config.json")) as f:
            model_cfg = json.load(f)
        model_cfg.setdefault("head_dim", model_cfg["hidden_size"] // model_cfg["num_attention_heads"])
        model_cfg.setdefault("num_key_value_heads", model_cfg["num_attention_heads"])
        disc_cfg = DISCRIMINATORS["smollm2-135m"]
    else:
        model_cfg, disc_cfg = SHAPES[args.shape], DISCRIMINATORS[args.shape]
    ids, attention, loss_mask = synthetic_batch(args.batch_pairs, args.seq_len, prompt_len,
                                                model_cfg["vocab_size"], args.seed)
    tokens = ids.numel()
    started = time.perf_counter()
    log = lambda line: print(f"[{time.perf_counter() - started:>7.1f}s] {line}", file=sys.stderr)  # noqa: E731
    modes, parameters = {}, None
    for mode in modes_wanted:
        gc.collect()
        reset_peak_rss()
        rss_before = status_mib("VmRSS:")
        run = build(args, mode, model_cfg, disc_cfg)
        parameters = sum(p.numel() for p in run["policy"].parameters())
        for i in range(args.warmup):
            t0 = time.perf_counter()
            train_step(run, ids, attention, loss_mask, Clock())
            log(f"{mode}: warm-up step {i + 1}/{args.warmup} {time.perf_counter() - t0:.2f} s")
        steps, phases, metrics = [], dict.fromkeys(PHASES, 0.0), {}
        for i in range(args.steps):
            clock = Clock()
            t0 = time.perf_counter()
            metrics = train_step(run, ids, attention, loss_mask, clock)
            secs = time.perf_counter() - t0
            steps.append(secs)
            for p in PHASES:
                phases[p] += clock.times[p] / args.steps
            log(f"{mode}: step {i + 1}/{args.steps} {secs:.2f} s")
        step_s = sum(steps) / len(steps)
        flops = step_flops(model_cfg, disc_cfg if mode == "ganpo" else None, args.batch_pairs, args.seq_len)
        modes[mode] = dict(step_s=step_s, step_s_min=min(steps), step_s_all=steps, phases_s=phases,
                           other_s=step_s - sum(phases.values()), tokens_per_s=tokens / step_s,
                           gflop_per_step=flops / 1e9, gflops=flops / 1e9 / step_s, fraction_of_peak=None,
                           rss_before_mib=rss_before, peak_rss_mib=peak_rss_mib(), loss=metrics["loss"])
        del run
        gc.collect()
    log("timing f32 matmuls")
    d, f, v = model_cfg["hidden_size"], model_cfg["intermediate_size"], model_cfg["vocab_size"]
    matmul = [dict(label=label, m=m, k=k, n=n, gflops=time_matmul(m, k, n))
              for label, m, k, n in [("square", 1024, 1024, 1024), ("mlp up", tokens, d, f), ("lm head", tokens, d, v)]]
    peak = max(t["gflops"] for t in matmul)
    for r in modes.values():
        r["fraction_of_peak"] = r["gflops"] / peak
    report = dict(
        tool="torch",
        model=dict(source=args.model or f"random:{args.shape}", parameters=parameters,
                   layers=model_cfg["num_hidden_layers"], hidden_size=d, vocab_size=v),
        dtype="f32", batch_pairs=args.batch_pairs, seq_len=args.seq_len, prompt_len=prompt_len,
        tokens_per_step=tokens, threads=torch.get_num_threads(), warmup=args.warmup, steps=args.steps,
        matmul_peak_gflops=peak, matmul=matmul, modes=modes,
        ganpo_overhead=modes["ganpo"]["step_s"] / modes["dpo"]["step_s"] if {"dpo", "ganpo"} <= modes.keys() else None,
        torch_version=torch.__version__, attn_implementation=args.attn,
    )
    print(table(report))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        log(f"report: {args.output}")


if __name__ == "__main__":
    main()
