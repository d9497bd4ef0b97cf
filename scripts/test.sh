#!/usr/bin/env bash
# The one test command. On a fresh machine it installs what the tests need (Debian and PyPI
# packages by name; caches under ~/.cache/gregor, outside the repo), builds gregor, and runs:
#   1. unit and integration tests (cargo test: in-process broker, rdkafka, hostile frames,
#      SIGKILL recovery),
#   2. real clients against the release binary (kcat, confluent-kafka, kafka-python, aiokafka,
#      kafkajs, sarama, kafka-go, ...) and, at the same time, librdkafka's own test suite
#      (allow-listed tests only),
#   3. the benchmark in smoke mode (it only has to run; figures are not judged here).
# It ends with one line "tests: N passed, M failed" and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GREGOR_CACHE="${GREGOR_CACHE:-$HOME/.cache/gregor}"
mkdir -p "$GREGOR_CACHE"
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/gregor-test.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT
# Each step says when it starts, so a slow run shows which step took the time.
clock() { printf '%dm%02ds' $((SECONDS / 60)) $((SECONDS % 60)); }
step() { printf '\n==> %s (at %s)\n' "$*" "$(clock)"; }
failed_steps=()

step "system packages"
# libssl-dev and pkg-config: the rdkafka crate is built with its ssl feature
# (tests/integration/tls.rs), which links the bundled librdkafka against the system OpenSSL; the
# openssl command makes ck_sasl.py's broker certificate.
# postgresql: shared mode's coordination store; its tests start a private server (initdb in a
# temp dir, as the package's postgres user when run as root) and need it installed.
packages=(kcat build-essential pkg-config openssl python3 python3-venv zlib1g-dev libssl-dev libsasl2-dev libzstd-dev liblz4-dev postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing packages (install them as root): ${missing[*]}" >&2
    exit 1
  fi
fi
echo "ok"

step "build"
# One build for everything: `cargo test` turns on the dev-dependencies' features (rdkafka's
# tokio features, for one), so a plain `cargo build --release` before it compiled every shared
# crate and gregor itself a second time. The test build also makes target/release/gregor (the
# integration tests run it), and that is the binary the steps below use.
cargo test --release --locked --no-run || { echo "build failed"; exit 1; }

step "unit and integration tests"
# Tests that need PostgreSQL fail instead of skipping when it is missing.
export GREGOR_REQUIRE_POSTGRES=1
cargo test --release --locked 2>&1 | tee "$LOGS/cargo.log"
cargo_status=${PIPESTATUS[0]}
[ "$cargo_status" = 0 ] || failed_steps+=("cargo test")

step "real clients, with librdkafka's test suite beside them"
# The two runs start their own brokers on free ports and spend most of their time waiting on
# clients' timers (session timeouts, backoffs), so they share the two cores well; side by side
# they take about as long as the librdkafka suite alone. The suite's output is shown after the
# clients' so the two do not interleave.
(GREGOR_BIN="$PWD/target/release/gregor" compat-tests/librdkafka/run.sh >"$LOGS/librdkafka.log" 2>&1
 echo $? >"$LOGS/librdkafka.rc") &
librdkafka_pid=$!
GREGOR_BIN="$PWD/target/release/gregor" compat-tests/clients/run.sh 2>&1 | tee "$LOGS/clients.log"
[ "${PIPESTATUS[0]}" = 0 ] || failed_steps+=("real clients")

step "librdkafka test suite (started with the clients)"
wait "$librdkafka_pid"
cat "$LOGS/librdkafka.log"
[ "$(cat "$LOGS/librdkafka.rc" 2>/dev/null)" = 0 ] || failed_steps+=("librdkafka suite")

step "benchmark smoke run"
GREGOR_BIN="$PWD/target/release/gregor" scripts/bench --smoke --out ci-smoke 2>&1 | tail -25
[ "${PIPESTATUS[0]}" = 0 ] || failed_steps+=("bench smoke")
rm -f bench/results/ci-smoke.*

# Sum every runner's own count into one closing line.
total() { awk -v want="$1" '
  /^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ "^" want) { gsub(/[^0-9]/, "", $i); n += $i } } }
  /^(clients|librdkafka): [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ { if (want == "passed") n += $2; else n += $4 }
  END { print n + 0 }' "$LOGS"/*.log; }
passed=$(total passed)
failed=$(total failed)
if [ ${#failed_steps[@]} -gt 0 ]; then
  # What failed, again at the end, where a reader of the last lines looks.
  echo
  grep -h -E '^test .* FAILED$|^---- .* stdout ----$' "$LOGS/cargo.log" 2>/dev/null | head -n 20 || true
  grep -h -E '^[a-z0-9.-]+/[a-z0-9-]+ +(FAIL|timeout) \(' "$LOGS/clients.log" 2>/dev/null | head -n 20 || true
  grep -h -E 'FAILED|TIMEOUT' "$LOGS/librdkafka.log" 2>/dev/null | grep -v PASSED | tail -n 10 || true
  echo "failed steps: ${failed_steps[*]}"
  [ "$failed" -gt 0 ] || failed=1
fi
echo
echo "all steps done in $(clock)"
echo "tests: $passed passed, $failed failed"
[ ${#failed_steps[@]} -eq 0 ]
