"""Ratios of two bench reports with the same fields: `ganpo bench --output` and torch_step.py --output.

    python tools/bench/compare.py ganpo.json torch.json

Ratios are ours / theirs: below 1 is faster (time) or smaller (memory); above 1 is more GFLOP/s.
"""

import json
import sys

PHASES = ["reference_forward", "policy_forward", "logps_and_loss", "discriminator_update", "backward", "optimizer"]


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        ours = json.load(f)
    with open(sys.argv[2]) as f:
        theirs = json.load(f)
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


if __name__ == "__main__":
    main()
