#!/usr/bin/env bash
# The project's test command (the README's): installs the pinned official SDKs used by the
# interop tests into target/interop (idempotent), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-interop.sh
cargo test --all-targets
cargo test --doc

# The examples run as their docs say, each against an in-process hub.
for example in quickstart token_provider server_push; do
    cargo run --quiet --example "$example"
done
cargo run --quiet --example embed_actix_web -- --once
cargo run --quiet --example app_server -- --once

# The manifests of a sharded run on Kubernetes validate against the schemas of two minor
# versions, offline (kubernetes-validate bundles them), strictly (unknown fields fail); a
# manifest with a misspelt field must fail, or the validation proves nothing.
manifests="$(mktemp -d)"
trap 'rm -rf "$manifests"' EXIT
cargo run --quiet -- k8s --shards 4 --clients 20000 --image webpubsub-fleet:test --seed 1 \
    --max-loss 0 >"$manifests/run.yaml"
sed 's/completionMode:/completionMod:/' "$manifests/run.yaml" >"$manifests/broken.yaml"
for version in 1.30.0 1.37.0; do
    target/interop/venv/bin/kubernetes-validate --strict --quiet -k "$version" "$manifests/run.yaml"
    if target/interop/venv/bin/kubernetes-validate --strict --quiet -k "$version" \
        "$manifests/broken.yaml" >/dev/null 2>&1; then
        echo "test.sh: kubernetes-validate $version accepted a manifest with an unknown field" >&2
        exit 1
    fi
done
echo "test.sh: the k8s manifests validate against Kubernetes 1.30 and 1.37"

# A small fleet against the in-process hub, with 5 % of connections dropped abruptly every
# 2 s: any lost, duplicated, reordered or unexpected delivery fails the run (exit 1).
cargo run --quiet -- load --clients 200 --duration 10s --chaos 5%:2s --max-loss 0

# The HTML report of a short run, rendered by a real browser (headless Chromium, installed
# from Debian when missing); fails if a chart is missing or the browser logged an error.
bash scripts/render-report.sh

# The soak (reliability.md row 16, short form): 2 minutes against the hub in another
# process; fails if the fleet's RSS or the publishes it holds grow after the first 30 s.
cargo test --test load_soak -- --ignored
