#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf with .inp/.out: vocab-only
# GGUF files and the ids Hugging Face tokenizers / llama.cpp give for 46 test strings) from the
# PyPI sdist of llama-cpp-python==0.3.36, and prints the directory. Used by the ignored test
# crates/ganpo/tests/gguf_llama_cpp_vocab.rs:
#
#   GANPO_LLAMA_VOCAB_DIR="$(scripts/fetch-llama-vocab.sh)" cargo test --test gguf_llama_cpp_vocab -- --ignored
#
# Usage: scripts/fetch-llama-vocab.sh [CACHE_DIR]   (default: $GANPO_CACHE or ~/.cache/ganpo)
set -euo pipefail

CACHE="${1:-${GANPO_CACHE:-$HOME/.cache/ganpo}}"
PIP="${PIP:-pip}"
VERSION="0.3.36"
DEST="$CACHE/llama-cpp-python-$VERSION"
VOCAB="$DEST/vocab"

if [ ! -f "$VOCAB/ggml-vocab-llama-bpe.gguf.out" ]; then
    mkdir -p "$DEST"
    # The sdist only; never --no-binary :all:, which would try to build every dependency.
    $PIP download --no-deps --disable-pip-version-check --no-binary llama-cpp-python \
        --dest "$DEST" "llama-cpp-python==$VERSION" >&2
    tar -xzf "$DEST/llama_cpp_python-$VERSION.tar.gz" -C "$DEST" --wildcards \
        "llama_cpp_python-$VERSION/vendor/llama.cpp/models/ggml-vocab-*"
    rm -rf "$VOCAB"
    mv "$DEST/llama_cpp_python-$VERSION/vendor/llama.cpp/models" "$VOCAB"
    rm -rf "$DEST/llama_cpp_python-$VERSION"
fi
echo "$VOCAB"
