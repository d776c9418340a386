#!/usr/bin/env bash
# Fails when a layer rule of docs/architecture.md is broken. Test code (files named
# *_tests.rs and everything after a file's first `#[cfg(test)]`) is exempt: tests put the
# layers together on purpose. The integration tests have rules of their own (tests/README.md):
# one support module, one deadline, resident memory through load::process.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failed=0

# Prints `file:line: text` for lines of the non-test part of FILES matching the regex.
scan() {
    local pattern=$1
    shift
    for file in "$@"; do
        case "$file" in *_tests.rs) continue ;; esac
        awk -v pattern="$pattern" -v file="$file" '
            /#\[cfg\(test\)\]/ { exit }
            /^[[:space:]]*\/\// { next }
            $0 ~ pattern { print file ":" FNR ": " $0 }
        ' "$file"
    done
}

# rule MESSAGE PATTERN FILES...: every match breaks the rule.
rule() {
    local message=$1 pattern=$2
    shift 2
    local hits
    hits=$(scan "$pattern" "$@")
    if [ -n "$hits" ]; then
        echo "layer rule broken: $message"
        echo "$hits"
        failed=1
    fi
}

all=$(find src -name '*.rs' | sort)
except() { echo "$all" | grep -v -x -F "$@"; }

# shellcheck disable=SC2046 # file lists are split on purpose
{
    # awc: the client transport (WebSocket), the outbound-HTTP seams of `service/` and of the
    # hub (its event handler calls, hub/upstream.rs) and, until it moves behind a seam, the
    # shard coordinator's HTTP in cli/shard.rs (a known exception).
    rule "only client/transport.rs, service/, hub/upstream.rs and cli/shard.rs name awc" '(^|[^a-z_])awc::' \
        $(echo "$all" | grep -v -x -F -e src/client/transport.rs -e src/cli/shard.rs -e src/hub/upstream.rs | grep -v '^src/service/')
    rule "only hub/socket.rs names actix-web-actors" 'actix_web_actors' $(except src/hub/socket.rs)
    rule "hub/ never imports client/" 'crate::client' $(find src/hub -name '*.rs')
    rule "handler/ (the app server's side) never imports hub/, client/, service/, fleet/ or load/" 'crate::(hub|client|fleet|load|service)' $(find src/handler -name '*.rs')
    rule "client/ never imports hub/" 'crate::hub' $(find src/client -name '*.rs')
    rule "service/ never imports hub/, client/, fleet/ or load/" 'crate::(hub|client|fleet|load)' $(find src/service -name '*.rs')
    rule "session/ uses protocol/ only" 'crate::(client|hub|fleet|load|credential|cli)' $(find src/session -name '*.rs')
    rule "protocol/ uses nothing of the crate above it" 'crate::(client|hub|fleet|load|credential|cli|session)' $(find src/protocol -name '*.rs')
    rule "client/messages.rs does not import client/actor.rs (the actor imports its messages)" \
        'super::actor' src/client/messages.rs
    rule "protocol/ and session/ do no I/O, start no timer, read no clock" \
        '(Instant|SystemTime)::now|tokio::|actix|awc|std::(net|fs|io|thread)|rand::' \
        $(find src/protocol src/session -name '*.rs')

    # The integration tests share one support module (tests/README.md): no deadline of a
    # test's own, no parser of /proc, no second support module.
    rule "a test waits by support::DEADLINE, not a deadline of its own" \
        'const (DEADLINE|WAIT): Duration' $(find tests -name '*.rs' ! -path 'tests/support/mod.rs' | sort)
    rule "resident memory comes from load::process, not a parser in a test" \
        'VmRSS' $(find tests -name '*.rs' | sort)
    rule "test support lives in tests/support/ only" '^#\[path = ' $(find tests -name '*.rs' | sort)
}
extra_support=$(find tests -mindepth 2 -name '*.rs' ! -path 'tests/support/*' | sort)
if [ -n "$extra_support" ]; then
    echo "layer rule broken: test support lives in tests/support/ only"
    echo "$extra_support"
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    echo "see docs/architecture.md (layers) and tests/README.md for why these rules hold"
    exit 1
fi
echo "layer rules hold"
