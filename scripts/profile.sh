#!/usr/bin/env bash
# Records a running process (the hub, or a `load` fleet) with `perf record` for a while and
# renders an SVG flame graph of where its CPU time went (issue 10).
#
#   bash scripts/profile.sh PID SECONDS OUT.svg [TITLE]
#
# Environment:
#   PROFILE_FREQ        samples per second per CPU (default 99: small files, enough for 10 s+)
#   PROFILE_CALL_GRAPH  perf's --call-graph mode (default dwarf,16384: release builds here keep
#                       no frame pointers, so `fp` (what `perf record -g` means) cuts most Rust
#                       stacks after a frame or two; dwarf unwinds them from line tables)
#   PROFILE_KEEP        a folder to keep perf.data and the folded stacks in (default: removed)
#   PROFILE_INLINE      1: give inlined functions frames of their own (slow: minutes)
#
# Needs perf (Debian: linux-perf) and inferno (crates.io: `cargo install inferno`); both are
# installed when missing. perf must be allowed to read the process: root, or
# kernel.perf_event_paranoid <= 1 for a process of your own. In a container without perf
# events the script says so and exits 2.
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: bash scripts/profile.sh PID SECONDS OUT.svg [TITLE]" >&2
    exit 64
fi
pid=$1
seconds=$2
out=$3
title=${4:-"pid $pid ($(tr -d '\0' < "/proc/$pid/comm" 2>/dev/null || echo gone)), ${seconds} s"}
freq=${PROFILE_FREQ:-99}
call_graph=${PROFILE_CALL_GRAPH:-dwarf,16384}

if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
    echo "profile.sh: no process $pid to record" >&2
    exit 64
fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -lt 1 || $seconds -gt 600 ]]; then
    echo "profile.sh: SECONDS must be a whole number from 1 to 600, not '$seconds'" >&2
    exit 64
fi

if ! command -v perf >/dev/null; then
    echo "profile.sh: installing perf (Debian package linux-perf)" >&2
    apt-get install -y linux-perf >/dev/null || {
        echo "profile.sh: perf is missing and linux-perf did not install (run apt-get update first?)" >&2
        exit 2
    }
fi
if ! command -v inferno-collapse-perf >/dev/null || ! command -v inferno-flamegraph >/dev/null; then
    export PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v inferno-flamegraph >/dev/null; then
        echo "profile.sh: installing inferno (cargo install inferno; takes a few minutes once)" >&2
        cargo install --locked inferno >&2
    fi
fi

work=${PROFILE_KEEP:-}
if [[ -z $work ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"

echo "profile.sh: recording pid $pid for $seconds s ($freq Hz, call graph $call_graph)" >&2
# cpu-clock: the same event on bare metal and in a VM, and its weights are nanoseconds of CPU.
if ! perf record -e cpu-clock -F "$freq" --call-graph "$call_graph" -p "$pid" -o "$work/perf.data" \
    -- sleep "$seconds" 2> "$work/record.log"; then
    cat "$work/record.log" >&2
    echo "profile.sh: perf could not record pid $pid here (perf events unavailable or not permitted: see above; kernel.perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo unknown))" >&2
    exit 2
fi
grep -v '^\[ perf record: ' "$work/record.log" >&2 || true

# Resolving inlined frames runs addr2line per address: minutes even for a few samples of a
# large binary (2.5 min for 21 samples of the debug build), so it is off unless
# PROFILE_INLINE=1 (deeper stacks: inlined functions get frames of their own).
inline=--no-inline
[[ ${PROFILE_INLINE:-0} == 1 ]] && inline=--inline
perf script "$inline" -i "$work/perf.data" 2> /dev/null > "$work/perf.script"
inferno-collapse-perf < "$work/perf.script" > "$work/folded.txt"
if [[ ! -s $work/folded.txt ]]; then
    echo "profile.sh: no samples (was pid $pid busy while recorded?)" >&2
    exit 2
fi
mkdir -p "$(dirname "$out")"
inferno-flamegraph --title "$title" --countname "ns of CPU" < "$work/folded.txt" > "$out"
samples=$(grep -c '^[^[:space:]]' "$work/perf.script" || true)
cpu_ms=$(awk '{ n += $NF } END { printf "%.0f", n / 1e6 }' "$work/folded.txt")
echo "profile.sh: $samples samples, $cpu_ms ms of CPU -> $out" >&2
