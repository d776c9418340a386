#!/usr/bin/env bash
# Checks that the crate (library and binary: what a user compiles) builds with the minimum
# supported Rust version, the `rust-version` of Cargo.toml, against the committed Cargo.lock.
# Tests, examples and benches are built by stable in CI; checking them again with the MSRV
# cost CI minutes it no longer has (`MSRV_ALL_TARGETS=1` still does it).
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
targets=(--lib --bins)
[[ "${MSRV_ALL_TARGETS:-0}" == 1 ]] && targets=(--all-targets)
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/msrv" cargo +"$MSRV" check "${targets[@]}" --locked
