#!/usr/bin/env bash
# The whole shop against a local gregor, in one command: installs the clients (the same ones
# the compatibility tests use), builds gregor if needed, starts it configured as
# docker-compose.yml configures the broker, publishes the orders, runs every service, prints
# what each saw and stops everything.
#
#   examples/shop/run.sh [--count N]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${GREGOR_CACHE:-$HOME/.cache/gregor}"
"$REPO/compat-tests/clients/install.sh"
[ -x "${GREGOR_BIN:-$REPO/target/release/gregor}" ] || (cd "$REPO" && cargo build --release)
exec "$CACHE_DIR/venv/bin/python" "$HERE/run_local.py" "$@"
