#!/usr/bin/env bash
# The project's test command (the README's): installs the pinned official SDKs used by the
# interop tests into target/interop (idempotent), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-interop.sh
cargo test --all-targets
cargo test --doc
