#!/usr/bin/env bash
# Installs the real clients the compatibility scenarios drive:
#   - kcat from Debian (librdkafka 2.0.2), by package name;
#   - a Python venv OUTSIDE the repo with confluent-kafka, kafka-python and the
#     codecs kafka-python needs for snappy/lz4/zstd (gzip is built in), plus aiokafka;
#   - Debian's old clients, by package name: Go with sarama 1.22.1 and kafka-go 0.2.1 (their
#     scenario programs in scenarios/go/ are built in GOPATH mode into $CACHE_DIR/go-clients,
#     again only when a source or a package changed) and python3-kafka (kafka-python 2.0.2,
#     used through /usr/bin/python3).
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
  'moto[server]>=5.1,<6'     # an S3-compatible server for shared mode's S3 run (cluster-s3)
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

# --- Debian's old clients: sarama, kafka-go (Go, GOPATH mode) and python3-kafka ---------
DEB_PACKAGES=(golang-go golang-github-shopify-sarama-dev golang-github-segmentio-kafka-go-dev python3-kafka)
deb_missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || deb_missing+=("$pkg")
done
if [ "${#deb_missing[@]}" -gt 0 ]; then
  log "installing ${deb_missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  sudo_if_needed apt-get update -qq
  sudo_if_needed apt-get install -y -qq "${deb_missing[@]}" >/dev/null
fi
GO_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/scenarios/go"
GO_OUT="$CACHE_DIR/go-clients"
# Rebuilt when a Go source or one of the packages (Go, sarama, kafka-go) changes.
go_stamp="$( { cat "$GO_SRC"/*/*.go; dpkg-query -W "${DEB_PACKAGES[@]:0:3}"; } | cksum | cut -d' ' -f1)"
if [ ! -f "$GO_OUT/.stamp" ] || [ "$(cat "$GO_OUT/.stamp")" != "$go_stamp" ]; then
  log "building the Go scenario programs into $GO_OUT"
  mkdir -p "$GO_OUT"
  for prog in sarama kafkago; do
    # cgo warnings of Debian's DataDog/zstd (a sarama dependency) are noise; errors still fail.
    (cd "$GO_SRC/$prog" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
       GOCACHE="$CACHE_DIR/go-build" go build -o "$GO_OUT/$prog-scenario.tmp" . 2>"$GO_OUT/$prog.build.log") \
      || { cat "$GO_OUT/$prog.build.log" >&2; exit 1; }
    mv "$GO_OUT/$prog-scenario.tmp" "$GO_OUT/$prog-scenario"
  done
  printf '%s\n' "$go_stamp" >"$GO_OUT/.stamp"
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
import confluent_kafka, kafka, snappy, lz4.frame, zstandard, aiokafka, moto.server
from kafka.codec import has_snappy, has_lz4, has_zstd, has_gzip
missing = [n for n, ok in (("gzip", has_gzip()), ("snappy", has_snappy()),
                           ("lz4", has_lz4()), ("zstd", has_zstd())) if not ok]
if missing:
    raise SystemExit(f"kafka-python lacks codecs: {missing}")
PY
printf '%s\n' "$want_stamp" > "$stamp"
log "venv ready"
