#!/usr/bin/env bash
# Measures greedy generation speed of SmolLM2-135M-Instruct (GGUF, dequantized to f32) on this
# machine: 8 chat prompts, 64 new tokens at most, once one prompt at a time (batch 1) and once all
# eight in one batch (batch 8), in the same script, release build. Prints ganpo's tokens/s lines.
#
# Usage: scripts/generation-speed.sh   (fetches the model with scripts/fetch-smollm2.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
GGUF="$(scripts/fetch-smollm2.sh)"
cargo build --release --locked --quiet
PROMPTS="$(mktemp)"
trap 'rm -f "$PROMPTS"' EXIT
for q in "What is the capital of France?" "Name three primary colors." \
         "Write one sentence about the sea." "What is 12 times 7?" \
         "Give a synonym for happy." "What language is spoken in Brazil?" \
         "List two planets of the solar system." "Why is the sky blue? Answer briefly."; do
    printf '{"instruction": "%s"}\n' "$q" >> "$PROMPTS"
done
for batch in 1 8; do
    echo "batch $batch:"
    ./target/release/ganpo generate --model "$GGUF" --prompts "$PROMPTS" --chat \
        --max-new-tokens 64 --batch-size "$batch" --output /dev/null
done
