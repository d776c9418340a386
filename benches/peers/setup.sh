#!/usr/bin/env bash
# Installs the official Azure Web PubSub clients, pinned, for the comparison in benches/peers/
# (run on demand, never in CI):
#   - Python, into target/peers/venv: azure-messaging-webpubsubclient 1.1.0 with its aio extra,
#     and its transports pinned as tests/interop pins them;
#   - JavaScript, into target/peers/node: @azure/web-pubsub-client 1.1.0, pinned by the committed
#     benches/peers/package.json and package-lock.json (installed with `npm ci`).
# The Rust driver also uses target/interop/venv and target/interop/node when
# scripts/setup-interop.sh has put the same clients there. Idempotent: a part whose marker says
# it already holds these pins is skipped. Needs python3 with venv, node with npm, and access to
# the Python and npm package registries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/target/peers"
HERE="$ROOT/benches/peers"

VENV="$PEERS/venv"
PY_MARKER="$VENV/.peers-pins"
PINS=(
    "azure-messaging-webpubsubclient[aio]==1.1.0"
    "websocket-client==1.9.2"
    "aiohttp==3.14.5"
)
WANTED="$(printf '%s\n' "${PINS[@]}")"
if [[ -x "$VENV/bin/python" && -f "$PY_MARKER" && "$(cat "$PY_MARKER")" == "$WANTED" ]]; then
    echo "peers/setup: $VENV already has ${PINS[*]}"
else
    command -v python3 >/dev/null || { echo "peers/setup: python3 not found" >&2; exit 1; }
    mkdir -p "$PEERS"
    rm -f "$PY_MARKER"
    python3 -m venv "$VENV" || { echo "peers/setup: 'python3 -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
    printf '%s\n' "$WANTED" >"$PY_MARKER"
    echo "peers/setup: installed ${PINS[*]} into $VENV"
fi

NODE_DIR="$PEERS/node"
NODE_MARKER="$NODE_DIR/.peers-lock"
command -v npm >/dev/null || { echo "peers/setup: node and npm not found (Debian: apt-get install nodejs npm)" >&2; exit 1; }
NODE_WANTED="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$NODE_DIR/node_modules/@azure/web-pubsub-client/package.json" && -f "$NODE_MARKER" &&
    "$(cat "$NODE_MARKER")" == "$NODE_WANTED" ]]; then
    echo "peers/setup: $NODE_DIR already has @azure/web-pubsub-client 1.1.0"
else
    mkdir -p "$NODE_DIR"
    rm -f "$NODE_MARKER"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
    # The package declares node >= 22; it runs on node 20 here (engine check is advisory).
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$NODE_WANTED" >"$NODE_MARKER"
    echo "peers/setup: installed @azure/web-pubsub-client 1.1.0 into $NODE_DIR"
fi
