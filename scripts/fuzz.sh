#!/usr/bin/env bash
# The property tests over arbitrary input (every parser and validator we
# wrote: protocol frames and payloads, the raw /events request head, the
# request-line peek, Origin, TRUSTED_PROXIES / X-Forwarded-For,
# Last-Event-ID, the symbols query, the load generator's codecs) with a long
# budget. `cargo test` runs the same tests with proptest's default of 256
# cases each; this runs CASES (default 20000) per property, in release mode.
#
#   scripts/fuzz.sh            # 20000 cases per property
#   CASES=200000 scripts/fuzz.sh
#
# A failure prints the smallest input proptest found and the seed to replay
# it with (PROPTEST_... see the proptest book); the exit code is non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

export PROPTEST_CASES=${CASES:-20000}
# No persistence files in the tree for integration tests: the failing input
# is printed in full instead.
export PROPTEST_DISABLE_FAILURE_PERSISTENCE=1

started=$SECONDS
echo "==> property tests, $PROPTEST_CASES cases each"
cargo test --release -q -p protocol --test fuzz
cargo test --release -q -p protocol --lib validate
cargo test --release -q -p ops --test fuzz
cargo test --release -q -p sse-stocks --test parsers
cargo test --release -q -p loadgen --test codec_fuzz
echo "==> all properties held for $PROPTEST_CASES cases each ($((SECONDS - started)) s)"
