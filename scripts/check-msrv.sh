#!/usr/bin/env bash
# Checks that the crate (library, binary, tests, examples, benches) builds with the minimum
# supported Rust version, the `rust-version` of Cargo.toml, against the committed Cargo.lock.
# Installs that toolchain with rustup (minimal profile) when it is missing. Uses its own target
# folder, target/msrv, so the stable build's artefacts are not rebuilt afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MSRV="$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)"
if [[ -z "$MSRV" ]]; then
    echo "check-msrv: no rust-version in Cargo.toml" >&2
    exit 1
fi
if ! command -v rustup >/dev/null; then
    echo "check-msrv: rustup not found; it installs the Rust $MSRV toolchain this check needs" >&2
    exit 1
fi
if ! rustup run "$MSRV" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$MSRV" --profile minimal
fi
echo "check-msrv: $(rustup run "$MSRV" rustc --version)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/msrv" cargo +"$MSRV" check --all-targets --locked
