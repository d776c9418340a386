#!/usr/bin/env bash
# Installs the official Python server SDK and PyJWT, pinned, into target/interop/venv, for
# tests/credential_compat.rs. Idempotent: does nothing when the venv already holds exactly
# these pins. Needs python3 with the venv module and access to the Python package index.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/target/interop/venv"
MARKER="$VENV/.interop-pins"
PINS=(
    "azure-messaging-webpubsubservice==1.3.0"
    "PyJWT==2.15.1"
)
WANTED="$(printf '%s\n' "${PINS[@]}")"

if [[ -x "$VENV/bin/python" && -f "$MARKER" && "$(cat "$MARKER")" == "$WANTED" ]]; then
    echo "setup-interop: $VENV already has ${PINS[*]}"
    exit 0
fi

if ! command -v python3 >/dev/null; then
    echo "setup-interop: python3 not found; install Python 3.9+ with its venv module" >&2
    exit 1
fi

mkdir -p "$(dirname "$VENV")"
rm -f "$MARKER"
if ! python3 -m venv "$VENV"; then
    echo "setup-interop: 'python3 -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
    exit 1
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
# Written last, so an interrupted install is redone on the next run.
printf '%s\n' "$WANTED" >"$MARKER"
echo "setup-interop: installed ${PINS[*]} into $VENV"
