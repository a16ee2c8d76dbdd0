#!/usr/bin/env bash
# `ganpo bench` (release build) and tools/bench/torch_step.py back to back with the same arguments,
# then their ratios (tools/bench/compare.py). Not part of CI.
#
#   tools/bench/side_by_side.sh --shape smollm2-135m --batch-pairs 4 --seq-len 256 --steps 2 --warmup 1 --threads 2
#
# Arguments are passed to both tools unchanged (--shape, --batch-pairs, --seq-len, --prompt-len, --steps,
# --warmup, --losses, --threads, --seed). Environment: PYTHON (default /work/pyenv/venv/bin/python, needs
# torch and transformers), OUT (report directory, default bench-out), CARGO_TARGET_DIR (as cargo).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-/work/pyenv/venv/bin/python}"
OUT="${OUT:-bench-out}"
mkdir -p "$OUT"
cargo build --release --locked --bin ganpo
GANPO="${CARGO_TARGET_DIR:-target}/release/ganpo"

echo "== machine: $(uname -m), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== ganpo bench $*"
"$GANPO" bench "$@" --output "$OUT/ganpo.json"
echo "== torch_step.py $*"
"$PYTHON" tools/bench/torch_step.py "$@" --output "$OUT/torch.json"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== ratios"
"$PYTHON" tools/bench/compare.py "$OUT/ganpo.json" "$OUT/torch.json"
