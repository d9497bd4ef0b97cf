#!/usr/bin/env bash
# The three brokers of docker-compose.yml as local processes over a private PostgreSQL, in one
# command: installs the clients the compatibility tests use (and Python), builds gregor if needed,
# prints the bootstrap addresses and runs until Ctrl-C. Needs PostgreSQL's programs installed
# (Debian: apt-get install postgresql); nothing is started as a system service.
#
#   examples/cluster/run.sh         # the objects in a temp directory (the compose volume)
#   examples/cluster/run.sh --s3    # the objects in a bucket of moto's S3 server (PyPI moto)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${GREGOR_CACHE:-$HOME/.cache/gregor}"
"$REPO/compat-tests/clients/install.sh"
[ -x "${GREGOR_BIN:-$REPO/target/release/gregor}" ] || (cd "$REPO" && cargo build --release)
exec "$CACHE_DIR/venv/bin/python" "$HERE/local_cluster.py" "$@"
