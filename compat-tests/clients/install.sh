#!/usr/bin/env bash
# Installs the real clients the compatibility scenarios drive:
#   - kcat from Debian (librdkafka 2.0.2), by package name;
#   - a Python venv OUTSIDE the repo with confluent-kafka, kafka-python and the
#     codecs kafka-python needs for snappy/lz4/zstd (gzip is built in), plus aiokafka.
# Idempotent: when everything is already present it only checks and returns (~1 s).
set -euo pipefail

CACHE_DIR="${GREGOR_CACHE:-$HOME/.cache/gregor}"
VENV="$CACHE_DIR/venv"
# Bump STAMP_VERSION when the requirement list below changes, so existing venvs get updated.
STAMP_VERSION=1
REQUIREMENTS=(
  'confluent-kafka>=2.6,<3'
  'kafka-python>=2.2,<4'
  'python-snappy>=0.7,<1'   # 0.7+ is backed by cramjam wheels: no libsnappy headers needed
  'cramjam>=2.8,<3'
  'lz4>=4,<5'
  'zstandard>=0.22,<1'
  'crc32c>=2.4,<3'          # kafka-python's pure-Python CRC-32C is very slow otherwise
  'aiokafka>=0.11,<1'
)

log() { printf '[install] %s\n' "$*" >&2; }

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- kcat -----------------------------------------------------------------
if ! command -v kcat >/dev/null 2>&1; then
  log "kcat missing: apt-get update + install"
  export DEBIAN_FRONTEND=noninteractive
  sudo_if_needed apt-get update -qq
  sudo_if_needed apt-get install -y -qq kcat >/dev/null
fi
command -v kcat >/dev/null

# --- kafkajs (npm registry), next to the venv in the cache ---------------------
KAFKAJS_VERSION="2.2.4"
NODE_DIR="$CACHE_DIR/node"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  log "node/npm missing: apt-get install nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  sudo_if_needed apt-get update -qq
  sudo_if_needed apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f "$NODE_DIR/node_modules/kafkajs/package.json" ] \
   || ! grep -q "\"version\": \"$KAFKAJS_VERSION\"" "$NODE_DIR/node_modules/kafkajs/package.json"; then
  log "installing kafkajs $KAFKAJS_VERSION into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund "kafkajs@$KAFKAJS_VERSION" >/dev/null)
fi

# --- Python venv ------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.gregor-stamp"
want_stamp="$STAMP_VERSION $(printf '%s\n' "${REQUIREMENTS[@]}" | cksum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  exit 0
fi

log "creating/updating venv at $VENV"
mkdir -p "$CACHE_DIR"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}"
# Fail loudly now rather than in the middle of a scenario.
"$VENV/bin/python" - <<'PY'
import confluent_kafka, kafka, snappy, lz4.frame, zstandard, aiokafka
from kafka.codec import has_snappy, has_lz4, has_zstd, has_gzip
missing = [n for n, ok in (("gzip", has_gzip()), ("snappy", has_snappy()),
                           ("lz4", has_lz4()), ("zstd", has_zstd())) if not ok]
if missing:
    raise SystemExit(f"kafka-python lacks codecs: {missing}")
PY
printf '%s\n' "$want_stamp" > "$stamp"
log "venv ready"
