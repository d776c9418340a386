#!/usr/bin/env bash
# Installs the official Azure Web PubSub SDKs, pinned, used by the interop tests:
#   - Python, into target/interop/venv: the server SDK and PyJWT (tests/credential_compat.rs),
#     the client SDK with its aio extra (tests/interop_*.rs), and kubernetes-validate for the
#     rendered Kubernetes manifests (scripts/test.sh);
#   - JavaScript, into target/interop/node: the client and server SDKs, pinned by the committed
#     tests/interop/package.json and package-lock.json (installed with `npm ci`).
# Idempotent: each part does nothing when its marker says it already holds exactly these pins,
# so a second run takes well under a second. Needs python3 with the venv module, node >= 20 with
# npm, and access to the Python and npm package registries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP="$ROOT/target/interop"

# ---- Python -------------------------------------------------------------------------------
VENV="$INTEROP/venv"
PY_MARKER="$VENV/.interop-pins"
PINS=(
    "azure-messaging-webpubsubservice==1.3.0"
    "PyJWT==2.15.1"
    "azure-messaging-webpubsubclient[aio]==1.1.0"
    # The clients' transports: their close and error handling is what the recovery tests
    # exercise, so they are pinned too (the client SDK only asks for a minimum).
    "websocket-client==1.9.2"
    "aiohttp==3.14.5"
    # Not an SDK: validates the manifests `webpubsub-fleet k8s` renders against the bundled
    # Kubernetes schemas, offline (scripts/test.sh).
    "kubernetes-validate==1.37.0"
    # Not an SDK: the protobuf golden vectors (tests/protobuf_golden.rs) compile
    # proto/webpubsub.proto with grpcio-tools' bundled protoc and encode with protobuf.
    "protobuf==7.36.2"
    "grpcio-tools==1.85.1"
    "grpcio==1.85.1"
)
WANTED="$(printf '%s\n' "${PINS[@]}")"

setup_python() {
    if [[ -x "$VENV/bin/python" && -f "$PY_MARKER" && "$(cat "$PY_MARKER")" == "$WANTED" ]]; then
        echo "setup-interop: $VENV already has the pinned Python SDKs"
        return
    fi
    if ! command -v python3 >/dev/null; then
        echo "setup-interop: python3 not found; install Python 3.9+ with its venv module" >&2
        exit 1
    fi
    mkdir -p "$INTEROP"
    rm -f "$PY_MARKER"
    if ! python3 -m venv "$VENV"; then
        echo "setup-interop: 'python3 -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
        exit 1
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
    # Written last, so an interrupted install is redone on the next run.
    printf '%s\n' "$WANTED" >"$PY_MARKER"
    echo "setup-interop: installed ${PINS[*]} into $VENV"
}

# ---- JavaScript ---------------------------------------------------------------------------
NODE_DIR="$INTEROP/node"
NODE_MARKER="$NODE_DIR/.interop-lock"
PACKAGE_JSON="$ROOT/tests/interop/package.json"
PACKAGE_LOCK="$ROOT/tests/interop/package-lock.json"

# What the install depends on: the manifest, the lock and the node major version.
node_wanted() {
    {
        cat "$PACKAGE_JSON"
        [[ -f "$PACKAGE_LOCK" ]] && cat "$PACKAGE_LOCK"
        node --version | cut -d. -f1
    } | sha256sum | cut -d' ' -f1
}

setup_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "setup-interop: node or npm not found; install Node.js 20+ with npm (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
    local major
    major="$(node --version | sed -E 's/^v([0-9]+).*/\1/')"
    if ((major < 20)); then
        echo "setup-interop: Node.js $(node --version) is too old; the pinned Azure SDKs need Node.js 20 or newer" >&2
        exit 1
    fi
    local wanted
    wanted="$(node_wanted)"
    if [[ -d "$NODE_DIR/node_modules/@azure/web-pubsub-client" && -f "$NODE_MARKER" &&
        "$(cat "$NODE_MARKER")" == "$wanted" ]]; then
        echo "setup-interop: $NODE_DIR already has the pinned JS SDKs"
        return
    fi
    mkdir -p "$NODE_DIR"
    rm -f "$NODE_MARKER"
    cp "$PACKAGE_JSON" "$NODE_DIR/package.json"
    # @azure/web-pubsub-client 1.1.0 declares node >= 22 but runs on 20 (the interop tests prove
    # it); npm only warns about the engine, and that warning is noise here.
    local npm_flags=(--prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error)
    if [[ -f "$PACKAGE_LOCK" ]]; then
        cp "$PACKAGE_LOCK" "$NODE_DIR/package-lock.json"
        npm ci "${npm_flags[@]}"
    else
        # No lock yet: resolve the pins once and keep the lock, to be committed.
        npm install "${npm_flags[@]}"
        cp "$NODE_DIR/package-lock.json" "$PACKAGE_LOCK"
        echo "setup-interop: wrote $PACKAGE_LOCK; commit it" >&2
        wanted="$(node_wanted)"
    fi
    printf '%s\n' "$wanted" >"$NODE_MARKER"
    echo "setup-interop: installed the JS SDKs of $PACKAGE_JSON into $NODE_DIR"
}

setup_python
setup_node
