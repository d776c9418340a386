#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target in fuzz/ for a fixed time and fails on the first crash.
#
#   bash scripts/fuzz.sh                          # CI: 10 s per target
#   FUZZ_SECONDS=1800 bash scripts/fuzz.sh        # the long run: 30 min per target
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh odata_filter token_validate   # some targets only
#
# Needs a nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz from
# crates.io if it is missing. Each target starts from its committed seeds in
# fuzz/corpus/<target>/ (read only) plus what earlier runs on this machine found
# (fuzz/target/corpus-run/<target>/, not committed). A crash leaves its input in
# fuzz/artifacts/<target>/ and the command to reproduce it in the output.
# The last lines are a table of executions per target (libFuzzer's
# `stat::number_of_executed_units`), which is what docs/security.md records.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
export CARGO_TERM_COLOR=never

seconds="${FUZZ_SECONDS:-10}"
# Safe Rust only (no `unsafe` in the crate): AddressSanitizer would slow every execution for
# nothing. Debug assertions and overflow checks stay on (cargo-fuzz's default).
fuzz=(cargo +nightly fuzz)
build_flags=(--sanitizer none)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "FAIL: fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
if ! "${fuzz[@]}" --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo +nightly install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("${fuzz[@]}" list)
fi

echo "== cargo fuzz build (${#targets[@]} targets)"
"${fuzz[@]}" build "${build_flags[@]}"

summary=()
for target in "${targets[@]}"; do
  echo "== fuzz $target for ${seconds}s"
  run_corpus="target/corpus-run/$target"
  mkdir -p "$run_corpus" "artifacts/$target"
  dict=()
  [ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
  log="target/fuzz-$target.log"
  # New inputs go to the first directory, so the committed seeds stay as they are.
  if ! "${fuzz[@]}" run "${build_flags[@]}" "$target" "$run_corpus" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      "${dict[@]}" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "FAIL: fuzz target $target crashed; input saved under fuzz/artifacts/$target/ (reproduce: cd fuzz && cargo +nightly fuzz run --sanitizer none $target <file>)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  corpus=$(find "$run_corpus" -type f | wc -l)
  summary+=("| $target | $seconds | ${execs:-?} | ${per_second:-?} | $corpus | 0 |")
done

echo "== fuzz summary"
echo "| target | seconds | executions | per second | corpus entries found | crashes |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
