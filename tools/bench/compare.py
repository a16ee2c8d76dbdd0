"""Ratios of bench reports with the same fields: `ganpo bench --output` and torch_step.py --output.

    python tools/bench/compare.py --ours ganpo-dpo.json ganpo-ganpo.json --theirs torch-dpo.json torch-ganpo.json

Each side may be several reports of one tool (e.g. one process per loss): their modes are merged,
the matmul peak is the best of them, and the GANPO overhead is recomputed from the merged modes.
Ratios are ours / theirs: below 1 is faster (time) or smaller (memory); above 1 is more GFLOP/s.
"""

import argparse
import json
import sys

PHASES = ["reference_forward", "policy_forward", "logps_and_loss", "discriminator_update", "backward", "optimizer"]


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def merge(paths):
    reports = []
    for path in paths:
        with open(path) as f:
            reports.append(json.load(f))
    merged = dict(reports[0])
    merged["modes"] = {k: v for r in reports for k, v in r["modes"].items()}
    best = max(reports, key=lambda r: r["matmul_peak_gflops"])
    merged["matmul_peak_gflops"], merged["matmul"] = best["matmul_peak_gflops"], best["matmul"]
    for mode in merged["modes"].values():
        mode["fraction_of_peak"] = mode["gflops"] / merged["matmul_peak_gflops"]
    modes = merged["modes"]
    merged["ganpo_overhead"] = (modes["ganpo"]["step_s"] / modes["dpo"]["step_s"]
                                if {"dpo", "ganpo"} <= modes.keys() else None)
    return merged


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", nargs="+", required=True)
    ap.add_argument("--theirs", nargs="+", required=True)
    args = ap.parse_args()
    ours, theirs = merge(args.ours), merge(args.theirs)
    for key in ["batch_pairs", "seq_len", "prompt_len", "threads", "dtype"]:
        if ours[key] != theirs[key]:
            print(f"warning: {key} differs: {ours[key]} vs {theirs[key]}", file=sys.stderr)
    if ours["model"]["parameters"] != theirs["model"]["parameters"]:
        print(f"warning: parameter counts differ: {ours['model']['parameters']} vs {theirs['model']['parameters']}",
              file=sys.stderr)
    a, b = ours["tool"], theirs["tool"]
    print(f"{ours['model']['source']}, {ours['batch_pairs']} pairs x {ours['seq_len']} tokens, {ours['dtype']}, "
          f"{ours['threads']} threads; ratios are {a} / {b}\n")
    print(f"{'f32 matmul peak GFLOP/s':<28}{ours['matmul_peak_gflops']:>10.1f}{theirs['matmul_peak_gflops']:>10.1f}"
          f"{ratio(ours['matmul_peak_gflops'], theirs['matmul_peak_gflops']):>10}")
    for mode in ours["modes"]:
        if mode not in theirs["modes"]:
            continue
        o, t = ours["modes"][mode], theirs["modes"][mode]
        print(f"\n{mode:<28}{a:>10}{b:>10}{'ratio':>10}")
        for p in PHASES:
            print(f"  {p + ' s':<26}{o['phases_s'][p]:>10.3f}{t['phases_s'][p]:>10.3f}"
                  f"{ratio(o['phases_s'][p], t['phases_s'][p]):>10}")
        for label, key, fmt in [("step s (mean)", "step_s", "{:.3f}"), ("step s (min)", "step_s_min", "{:.3f}"),
                                ("tokens/s", "tokens_per_s", "{:.1f}"), ("GFLOP/s", "gflops", "{:.1f}"),
                                ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
                                ("RSS before MiB", "rss_before_mib", "{:.0f}")]:
            ov, tv = o[key], t[key]
            print(f"  {label:<26}{fmt.format(ov) if ov is not None else '-':>10}"
                  f"{fmt.format(tv) if tv is not None else '-':>10}{ratio(ov, tv):>10}")
        own = [r["peak_rss_mib"] - r["rss_before_mib"] if r.get("peak_rss_mib") and r.get("rss_before_mib") else None
               for r in (o, t)]
        if None not in own:
            print(f"  {'peak - before MiB':<26}{own[0]:>10.0f}{own[1]:>10.0f}{ratio(*own):>10}")
        print(f"  {'% of own matmul peak':<26}{100 * o['fraction_of_peak']:>9.1f}%{100 * t['fraction_of_peak']:>9.1f}%")
    if ours.get("ganpo_overhead") and theirs.get("ganpo_overhead"):
        print(f"\n{'GANPO overhead (step time)':<28}{ours['ganpo_overhead']:>9.3f}x{theirs['ganpo_overhead']:>9.3f}x")
        o_min = ours["modes"]["ganpo"]["step_s_min"] / ours["modes"]["dpo"]["step_s_min"]
        t_min = theirs["modes"]["ganpo"]["step_s_min"] / theirs["modes"]["dpo"]["step_s_min"]
        print(f"{'GANPO overhead (min step)':<28}{o_min:>9.3f}x{t_min:>9.3f}x")


if __name__ == "__main__":
    main()
