#!/usr/bin/env bash
# Coverage-guided fuzzing of ovlva's parsers and decoders of untrusted input (fuzz/, libFuzzer
# through cargo-fuzz, on the machine's stable Rust). Installs cargo-fuzz when missing, replays
# the committed crash inputs (fuzz/regressions/), then runs each target for FUZZ_SECONDS, one at
# a time and at the lowest priority, from the committed seeds (fuzz/seeds/) and the corpus kept
# from earlier runs (fuzz/corpus/, not committed). Prints a table of execs/s, coverage, corpus
# and crashes; exits non-zero when a target crashed (its input is in fuzz/artifacts/TARGET/).
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (default 600) each
#   FUZZ_SECONDS=60 scripts/fuzz.sh image http
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/fuzz"

FUZZ_SECONDS=${FUZZ_SECONDS:-600}
CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS=(image raw_query http config labels decoders convert)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
# No sanitizer: the code under test is safe Rust (bounds and overflow checks catch what ASan
# would), and ASan would halve the executions per second (docs/security.md, "Fuzzing").
# -a: overflow checks and debug assertions on; -O: optimised.
FUZZ_FLAGS=(-s none -a -O)

log() { printf '[fuzz] %s\n' "$*"; }

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# libfuzzer-sys compiles libFuzzer (C++); the GStreamer -dev packages come from scripts/setup.sh.
if ! dpkg-query -W -f='${Status}' g++ 2>/dev/null | grep -q "install ok installed"; then
    log "installing Debian packages: g++"
    sudo_if_needed apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends g++
fi
if ! command -v cargo-fuzz >/dev/null || ! cargo fuzz --version | grep -q "$CARGO_FUZZ_VERSION"; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
# cargo fuzz has no --locked: check the committed fuzz/Cargo.lock is complete first.
cargo fetch --locked -q
nice -n 19 cargo fuzz build "${FUZZ_FLAGS[@]}"

mkdir -p logs
status=0
for t in "${TARGETS[@]}"; do
    if [ -d "regressions/$t" ]; then
        log "$t: replaying fuzz/regressions/$t"
        nice -n 19 cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" regressions/"$t"/* -- -runs=1 >"logs/$t.replay.log" 2>&1 ||
            { log "$t: a committed crash input fails again (fuzz/logs/$t.replay.log)"; status=1; }
    fi
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    log "$t: fuzzing for ${FUZZ_SECONDS}s"
    nice -n 19 cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"logs/$t.log" 2>&1 || status=1
    after=$(find "artifacts/$t" -type f | wc -l)
    echo "$((after - before))" >"logs/$t.crashes"
done

printf '\n%-10s %9s %7s %8s %8s %8s %8s\n' target seconds exec/s edges features corpus crashes
for t in "${TARGETS[@]}"; do
    line=$(grep -E '#[0-9]+[[:space:]]+DONE' "logs/$t.log" | tail -1 || true)
    field() { sed -n "s|.* $1: \([0-9a-zA-Z/]*\).*|\1|p" <<<"$line"; }
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "logs/$t.log" | tail -1)
    printf '%-10s %9s %7s %8s %8s %8s %8s\n' "$t" "${secs:-?}" "$(field exec/s)" "$(field cov)" \
        "$(field ft)" "$(field corp)" "$(cat "logs/$t.crashes")"
done
[ "$status" -eq 0 ] || log "a target crashed or failed: see fuzz/logs/ and fuzz/artifacts/"
exit "$status"
