#!/usr/bin/env bash
# Renders the HTML report of a short load run in a real browser (headless Chromium, Debian's
# `chromium`, installed here when missing) and checks that the page rendered: every chart is in
# the DOM Chromium built, the page asks for nothing from the network, and the console logged no
# error. Usage: scripts/render-report.sh [OUT_DIR]; the screenshot is OUT_DIR/report.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-target/report-render}"
mkdir -p "$out"

if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "render-report: installing chromium (Debian package) to render the HTML report"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    else
        echo "render-report: SKIPPED: chromium is missing and cannot be installed here (needs root and apt-get)"
        exit 0
    fi
fi

cargo run --quiet -- load --clients 100 --duration 6s --chaos 5%:2s --seed 1 \
    --html "$out/report.html" --json "$out/report.json" >"$out/load.txt"

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --user-data-dir="$profile" --enable-logging=stderr --v=0)
page="file://$(realpath "$out/report.html")"
timeout 120 chromium "${flags[@]}" --window-size=1000,2400 --screenshot="$out/report.png" "$page" \
    2>"$out/screenshot.log"
timeout 120 chromium "${flags[@]}" --dump-dom "$page" >"$out/dom.html" 2>"$out/dom.log"

fail() { echo "render-report: FAILED: $*" >&2; exit 1; }
[ "$(head -c 8 "$out/report.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
    || fail "no PNG screenshot"
[ "$(stat -c %s "$out/report.png")" -gt 20000 ] || fail "the screenshot is nearly empty"
for title in "Delivery latency (ms)" "Throughput (messages per second)" "Connected clients" \
    "Recoveries, reconnects and errors (per second)" "Process: CPU (% of one core) and RSS (MiB)" \
    "Delivery latency histogram" "Verdict: PASS" "Summary" "Parameters"; do
    grep -qF "$title" "$out/dom.html" || fail "the rendered page lacks \"$title\""
done
[ "$(grep -o '<svg' "$out/dom.html" | wc -l)" -eq 6 ] || fail "the rendered page lacks charts"
grep -q '<polyline' "$out/dom.html" || fail "no line was drawn"
grep -q 'chaos at' "$out/dom.html" || fail "no chaos round is marked"
# Self-contained: nothing to fetch (the SVG namespace is a name, not a request).
if grep -oE '(src|href)="[^"]*"' "$out/report.html" | grep -q .; then
    fail "the page references another resource"
fi
if grep -E 'CONSOLE|Uncaught|SyntaxError|net::ERR' "$out/screenshot.log" "$out/dom.log"; then
    fail "the browser logged errors while rendering"
fi
echo "render-report: ok: $out/report.png"
