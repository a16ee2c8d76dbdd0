#!/usr/bin/env bash
# Generation speed side by side: `ganpo generate` (release build) and transformers' `generate`
# (tools/bench/hf_generate.py) on the same model, prompts, lengths, decoding and threads, then
# tokens/s, their ratio and the batch-1 weight-streaming limit (f32 weight bytes per token over the
# memory bandwidth the Python script measures). Not part of CI.
#
#   tools/bench/generate_side_by_side.sh
#
# Environment: PYTHON (default python3; must import torch, transformers and gguf, see
# tools/bench/requirements.txt), MODEL (default: the SmolLM2-135M-Instruct GGUF that
# scripts/fetch-smollm2.sh fetches), BATCHES (default "1 32"), ROWS (default 64: prompts per batch
# size above 1; batch 1 decodes the first ROWS_1, default 8), NEW_TOKENS (default 32, every row
# exactly that many), TEMPERATURE (default 0 = greedy; > 0 samples with no top-k/top-p), THREADS
# (default: nproc), OUT (default bench-out/generate), QUIET (default 1: each run waits for a quiet
# machine, tools/bench/when_quiet.py; 0: at once).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import torch, transformers, gguf" 2>/dev/null; then
  echo "error: $PYTHON cannot import torch, transformers and gguf; set PYTHON to a Python that can" \
       "(pip install -r tools/bench/requirements.txt)" >&2
  exit 2
fi
MODEL="${MODEL:-$(scripts/fetch-smollm2.sh)}"
OUT="${OUT:-bench-out/generate}"
THREADS="${THREADS:-$(nproc)}"
NEW_TOKENS="${NEW_TOKENS:-32}"
TEMPERATURE="${TEMPERATURE:-0}"
ROWS="${ROWS:-64}"
mkdir -p "$OUT"
cargo build --release --locked --bin ganpo
GANPO="${CARGO_TARGET_DIR:-target}/release/ganpo"
quiet() { if [ "${QUIET:-1}" = 1 ]; then "$PYTHON" tools/bench/when_quiet.py -- "$@"; else "$@"; fi; }
"$PYTHON" tools/bench/hf_generate.py --write-prompts "$ROWS" "$OUT/prompts.jsonl"

echo "== machine: $(uname -m), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); threads $THREADS"
for batch in ${BATCHES:-1 32}; do
  rows="$ROWS"; [ "$batch" = 1 ] && rows="${ROWS_1:-8}"
  head -n "$rows" "$OUT/prompts.jsonl" > "$OUT/prompts-b$batch.jsonl"
  echo "== batch $batch: $rows prompts × $NEW_TOKENS new tokens, temperature $TEMPERATURE (load $(cut -d' ' -f1-3 /proc/loadavg))"
  quiet "$GANPO" generate --model "$MODEL" --prompts "$OUT/prompts-b$batch.jsonl" \
    --max-new-tokens "$NEW_TOKENS" --min-new-tokens "$NEW_TOKENS" --temperature "$TEMPERATURE" \
    --batch-size "$batch" --threads "$THREADS" --output "$OUT/ganpo-b$batch.jsonl" \
    2> >(tee "$OUT/ganpo-b$batch.log" >&2)
  quiet "$PYTHON" tools/bench/hf_generate.py --model "$MODEL" --prompts "$OUT/prompts-b$batch.jsonl" \
    --batch-size "$batch" --new-tokens "$NEW_TOKENS" --temperature "$TEMPERATURE" \
    --threads "$THREADS" --output "$OUT/hf-b$batch.json" > /dev/null 2> "$OUT/hf-b$batch.log"
done

"$PYTHON" - "$OUT" ${BATCHES:-1 32} <<'PY' | tee "$OUT/summary.md"
import json, re, sys
out, batches = sys.argv[1], sys.argv[2:]
print("| batch | rows × new tokens | ganpo tokens/s | transformers tokens/s | ganpo / transformers | streaming limit tokens/s | ganpo / limit |")
print("|---:|---|---:|---:|---:|---:|---:|")
for b in batches:
    hf = json.load(open(f"{out}/hf-b{b}.json"))
    line = open(f"{out}/ganpo-b{b}.log").read()
    m = re.search(r"generated (\d+) tokens for (\d+) prompt\(s\) \((\d+) prompt tokens\) in ([\d.]+) s", line)
    if not m:
        sys.exit(f"no timing line in {out}/ganpo-b{b}.log")
    new, rows, prompt_tokens, secs = int(m[1]), int(m[2]), int(m[3]), float(m[4])
    if (new, prompt_tokens) != (hf["new_tokens"], hf["prompt_tokens"]):
        sys.exit(f"batch {b}: ganpo saw {prompt_tokens} prompt tokens and made {new}, transformers "
                 f"{hf['prompt_tokens']} and {hf['new_tokens']}: not the same work")
    ours = new / secs
    limit = hf["streaming_limit_tokens_per_s"]
    print(f"| {b} | {rows} × {new // rows} | {ours:.1f} | {hf['tokens_per_s']:.1f} | "
          f"{ours / hf['tokens_per_s']:.2f}x | {limit:.1f} | {ours / limit:.2f} |")
print(f"\nbandwidth {hf['bandwidth_gbs']:.1f} GB/s (1 GiB f32 sum, {hf['threads']} threads); "
      f"f32 weights {hf['weight_bytes'] / 1e6:.0f} MB; {hf['versions']}")
PY
