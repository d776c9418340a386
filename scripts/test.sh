#!/usr/bin/env bash
# The project's test command (the README's): installs the pinned official SDKs used by the
# interop tests into target/interop (idempotent), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-interop.sh
cargo test --all-targets
cargo test --doc

# The examples run as their docs say, each against an in-process hub.
for example in quickstart token_provider; do
    cargo run --quiet --example "$example"
done
cargo run --quiet --example embed_actix_web -- --once

# A small fleet against the in-process hub, with 5 % of connections dropped abruptly every
# 2 s: any lost, duplicated, reordered or unexpected delivery fails the run (exit 1).
cargo run --quiet -- load --clients 200 --duration 10s --chaos 5%:2s --max-loss 0

# The soak (reliability.md row 16, short form): 2 minutes against the hub in another
# process; fails if the fleet's RSS or the publishes it holds grow after the first 30 s.
cargo test --test load_soak -- --ignored
