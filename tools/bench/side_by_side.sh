#!/usr/bin/env bash
# `ganpo bench` (release build) and tools/bench/torch_step.py with the same arguments, then their
# ratios (tools/bench/compare.py). Each tool times each loss (dpo, then ganpo = DPO + GANPO) in a
# process of its own, so every peak RSS starts from a fresh process. Not part of CI.
#
#   tools/bench/side_by_side.sh --shape smollm2-135m --batch-pairs 4 --seq-len 256 --steps 3 --warmup 1 --threads 2
#
# Arguments go to both tools unchanged (--shape, --batch-pairs, --seq-len, --prompt-len, --steps,
# --warmup, --threads, --seed). Environment: PYTHON (default /work/pyenv/venv/bin/python, with torch
# and transformers), OUT (report directory, default bench-out), CARGO_TARGET_DIR (as cargo), QUIET
# (default 1: each run waits for a quiet machine and is repeated if other work shared it, see
# tools/bench/when_quiet.py; 0: run at once), INTERLEAVE (default 1: afterwards, `ganpo bench
# --interleave` times DPO and DPO + GANPO steps alternately in one process, the GANPO overhead that
# a shared machine's slow stretches distort least; 0: skip). Python packages:
# tools/bench/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-/work/pyenv/venv/bin/python}"
OUT="${OUT:-bench-out}"
mkdir -p "$OUT"
cargo build --release --locked --bin ganpo
GANPO="${CARGO_TARGET_DIR:-target}/release/ganpo"
load() { cut -d' ' -f1-3 /proc/loadavg; }
quiet() { if [ "${QUIET:-1}" = 1 ]; then "$PYTHON" tools/bench/when_quiet.py -- "$@"; else "$@"; fi; }

echo "== machine: $(uname -m), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for loss in dpo ganpo; do
  echo "== ganpo bench --losses $loss $* (load $(load))"
  quiet "$GANPO" bench --losses "$loss" "$@" --output "$OUT/ganpo-$loss.json"
  echo "== torch_step.py --losses $loss $* (load $(load))"
  quiet "$PYTHON" tools/bench/torch_step.py --losses "$loss" "$@" --output "$OUT/torch-$loss.json"
done
echo "== ratios (load $(load))"
"$PYTHON" tools/bench/compare.py --ours "$OUT"/ganpo-{dpo,ganpo}.json --theirs "$OUT"/torch-{dpo,ganpo}.json
if [ "${INTERLEAVE:-1}" = 1 ]; then
  echo "== ganpo bench --losses dpo,ganpo --interleave $* (load $(load))"
  quiet "$GANPO" bench --losses dpo,ganpo --interleave "$@" --output "$OUT/ganpo-interleaved.json"
  "$PYTHON" - "$OUT/ganpo-interleaved.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d, g = r["modes"]["dpo"], r["modes"]["ganpo"]
print(f"GANPO overhead, interleaved steps: {r['ganpo_overhead']:.3f}x (DPO {d['step_s']:.3f} s, "
      f"DPO + GANPO {g['step_s']:.3f} s; min steps {g['step_s_min'] / d['step_s_min']:.3f}x)")
PY
fi
