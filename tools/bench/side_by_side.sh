#!/usr/bin/env bash
# `ganpo bench` (release build) and tools/bench/torch_step.py with the same arguments, then their
# ratios (tools/bench/compare.py). Each tool times each loss (dpo, then ganpo = DPO + GANPO) in a
# process of its own, so every peak RSS starts from a fresh process. Not part of CI.
#
#   tools/bench/side_by_side.sh --shape smollm2-135m --batch-pairs 4 --seq-len 256 --steps 3 --warmup 1 --threads 2
#
# Arguments go to both tools unchanged (--shape, --batch-pairs, --seq-len, --prompt-len, --steps,
# --warmup, --threads, --seed). Environment: PYTHON (default: python3 on PATH; it must import torch
# and transformers, see tools/bench/requirements.txt, e.g. a venv's python), OUT (report directory, default bench-out), CARGO_TARGET_DIR (as cargo), QUIET
# (default 1: each run waits for a quiet machine and is repeated if other work shared it, see
# tools/bench/when_quiet.py; 0: run at once), LOSSES (default "dpo ganpo"), ROUNDS (default 1: with
# n > 1 the per-loss pairs run n times, alternating the tools, into $OUT/round-<i>/, and each loss's
# step-time ratio is summarized over the rounds, the spread a shared machine gives one ratio),
# INTERLEAVE (default 1: afterwards, `ganpo bench
# --interleave` times DPO and DPO + GANPO steps alternately in one process, the GANPO overhead that
# a shared machine's slow stretches distort least; 0: skip), INTERLEAVE_STEPS (default: the --steps
# given; the interleaved run's timed steps of each loss). Python packages:
# tools/bench/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import torch, transformers" 2>/dev/null; then
  echo "error: $PYTHON cannot import torch and transformers; set PYTHON to a Python that can" \
       "(pip install -r tools/bench/requirements.txt)" >&2
  exit 2
fi
OUT="${OUT:-bench-out}"
mkdir -p "$OUT"
cargo build --release --locked --bin ganpo
GANPO="${CARGO_TARGET_DIR:-target}/release/ganpo"
load() { cut -d' ' -f1-3 /proc/loadavg; }
quiet() { if [ "${QUIET:-1}" = 1 ]; then "$PYTHON" tools/bench/when_quiet.py -- "$@"; else "$@"; fi; }

echo "== machine: $(uname -m), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
ROUNDS="${ROUNDS:-1}"
for round in $(seq 1 "$ROUNDS"); do
  dir="$OUT"
  if [ "$ROUNDS" -gt 1 ]; then dir="$OUT/round-$round"; mkdir -p "$dir"; echo "== round $round of $ROUNDS"; fi
  for loss in ${LOSSES:-dpo ganpo}; do
    echo "== ganpo bench --losses $loss $* (load $(load))"
    quiet "$GANPO" bench --losses "$loss" "$@" --output "$dir/ganpo-$loss.json"
    echo "== torch_step.py --losses $loss $* (load $(load))"
    quiet "$PYTHON" tools/bench/torch_step.py --losses "$loss" "$@" --output "$dir/torch-$loss.json"
  done
  echo "== ratios (load $(load))"
  ours=(); theirs=()
  for loss in ${LOSSES:-dpo ganpo}; do ours+=("$dir/ganpo-$loss.json"); theirs+=("$dir/torch-$loss.json"); done
  "$PYTHON" tools/bench/compare.py --ours "${ours[@]}" --theirs "${theirs[@]}" | tee "$dir/ratios.txt"
done
if [ "$ROUNDS" -gt 1 ]; then
  "$PYTHON" - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(tool, loss, i):
    path = f"{out}/round-{i}/{tool}-{loss}.json"
    return json.load(open(path)) if os.path.exists(path) else None
print(f"over {rounds} rounds (ganpo / torch step time; peak RSS; % of own matmul peak; GANPO overhead):")
for loss in ["dpo", "ganpo"]:
    pairs = [(load("ganpo", loss, i), load("torch", loss, i)) for i in range(1, rounds + 1)]
    if None in (x for p in pairs for x in p):
        continue
    m = [(o["modes"][loss], t["modes"][loss], o["matmul_peak_gflops"]) for o, t in pairs]
    r = [o["step_s"] / t["step_s"] for o, t, _ in m]
    pooled = statistics.mean(o["step_s"] for o, _, _ in m) / statistics.mean(t["step_s"] for _, t, _ in m)
    print(f"  {loss} step: " + ", ".join(f"{x:.3f}" for x in r)
          + f" (median {statistics.median(r):.3f}, ratio of pooled means {pooled:.3f})")
    print(f"  {loss} peak RSS: " + ", ".join(f"{o['peak_rss_mib'] / t['peak_rss_mib']:.2f}" for o, t, _ in m)
          + "; % of own matmul peak: " + ", ".join(f"{100 * o['gflops'] / p:.1f}" for o, _, p in m))
ov = []
for i in range(1, rounds + 1):
    d, g = load("ganpo", "dpo", i), load("ganpo", "ganpo", i)
    if d and g:
        ov.append(g["modes"]["ganpo"]["step_s"] / d["modes"]["dpo"]["step_s"])
if ov:
    print("  GANPO overhead, separate processes: " + ", ".join(f"{x:.3f}" for x in ov)
          + f" (median {statistics.median(ov):.3f})")
PY
fi
if [ "${INTERLEAVE:-1}" = 1 ]; then
  args=("$@")
  if [ -n "${INTERLEAVE_STEPS:-}" ]; then
    args=()
    while [ $# -gt 0 ]; do
      if [ "$1" = --steps ]; then shift 2; else args+=("$1"); shift; fi
    done
    args+=(--steps "$INTERLEAVE_STEPS")
  fi
  echo "== ganpo bench --losses dpo,ganpo --interleave ${args[*]} (load $(load))"
  quiet "$GANPO" bench --losses dpo,ganpo --interleave "${args[@]}" --output "$OUT/ganpo-interleaved.json"
  "$PYTHON" - "$OUT/ganpo-interleaved.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d, g = r["modes"]["dpo"], r["modes"]["ganpo"]
print(f"GANPO overhead, interleaved steps: {r['ganpo_overhead']:.3f}x (DPO {d['step_s']:.3f} s, "
      f"DPO + GANPO {g['step_s']:.3f} s; min steps {g['step_s_min'] / d['step_s_min']:.3f}x)")
PY
fi
