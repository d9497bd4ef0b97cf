#!/usr/bin/env bash
# Run librdkafka's own test suite (shipped in the rdkafka-sys crate) against gregor.
#
#   run.sh                      run every test in tests.allow (the gate; exit 1 on any failure)
#   run.sh --tests "0001 0002"  run the given tests, allow-listed or not (triage)
#   run.sh --candidates         run the roadmap set (core, partial, offsets; see FINDINGS.md)
#   run.sh --list-candidates    print that roadmap set and exit
#   run.sh --repeat 3 ...       run each selected test N times in a row
#   run.sh --full ...           run without quick mode (-Q), so non-quick sub-tests run too
#   run.sh --security P ...     run the selected tests against a broker with security profile P
#                               (sasl, sasl_ssl, ssl, each optionally with +acl and +reauth,
#                               e.g. sasl_ssl+acl), whatever tags tests.allow gives them
#   run.sh --group-protocol consumer ...
#                               run the selected tests with the KIP-848 consumer group protocol
#                               (TEST_CONSUMER_GROUP_PROTOCOL=consumer), whatever tags say;
#                               "classic" forces the classic protocol
#   run.sh --build-only         only prepare the cached test-runner
#
# A line of tests.allow is "<number> [tag ...]  # comment". Tags: "full" (no quick mode),
# "consumer" (the suite's consumers use group.protocol=consumer, KIP-848; a test may be listed
# twice, once without and once with this tag) and the security tags sasl (SASL_PLAINTEXT,
# PLAIN), sasl_ssl (SASL_SSL, PLAIN), ssl (SSL with client certificates required), acl
# (StandardAuthorizer on) and reauth (connections.max.reauth.ms=3000). Tests with the same
# security tags share one broker, which is restarted with the matching listener whenever the
# next test wants another profile, so tagged tests belong together at the end of the file.
#
# Environment:
#   GREGOR_BIN            broker binary (default <repo>/target/release/gregor)
#   GREGOR_BOOTSTRAP      host:port of an already running broker; none is started then
#   GREGOR_CACHE          cache root (default ~/.cache/gregor)
#   GREGOR_KAFKA_VERSION  TEST_KAFKA_VERSION given to the runner (default 3.9.0)
#   GREGOR_TEST_TIMEOUT   wall-clock limit per test run in seconds (default 300)
#   GREGOR_START_TIMEOUT  seconds to wait for the broker port (default 30)
#   GREGOR_TIMEOUT_MULT   test.timeout.multiplier written to test.conf (default 3.0)
#   TEST_DEBUG            passed through to the runner, e.g. TEST_DEBUG=broker,protocol
set -euo pipefail
# The braces make bash read the whole file before running any of it, so editing this
# script while a run is in progress cannot change what that run executes.
{

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ALLOW_FILE="$HERE/tests.allow"

CACHE_ROOT="${GREGOR_CACHE:-$HOME/.cache/gregor}"
GREGOR_BIN="${GREGOR_BIN:-$REPO/target/release/gregor}"
KAFKA_VERSION="${GREGOR_KAFKA_VERSION:-3.9.0}"
TEST_TIMEOUT="${GREGOR_TEST_TIMEOUT:-300}"
START_TIMEOUT="${GREGOR_START_TIMEOUT:-30}"
# 3.0 is what the runner itself uses when CI is set (1.0 plus 2), and the value in test.conf
# replaces the runner's own once a test reads that file, so it must not be lower. 0059 needs
# it: librdkafka's fetch.queue.backoff.ms (1 s) is re-armed by a client-side race after about
# half of its seek() calls, and ten seeks then run into a 10 s limit (see FINDINGS.md).
TIMEOUT_MULT="${GREGOR_TIMEOUT_MULT:-3.0}"

# Triage set for --candidates, in roadmap order (see the table in FINDINGS.md):
#   core     ApiVersions/Metadata/Produce/Fetch/ListOffsets + CreateTopics/DeleteTopics/CreatePartitions
#   partial  core, plus one sub-test that needs more (configs, groups or idempotence)
#   offsets  core + FindCoordinator/OffsetCommit/OffsetFetch (group.id without subscribe)
CAND_CORE="0001 0002 0003 0005 0007 0008 0012 0013 0017 0021 0031 0034 0035 0036 0038 0039
0041 0044 0048 0054 0055 0057 0063 0065 0110 0114 0123"
CAND_PARTIAL="0011 0022 0042 0086"
CAND_OFFSETS="0014 0015 0051 0053 0059 0067 0070 0073 0085 0099 0112 0127 0130 0140"
CANDIDATES="$(echo $CAND_CORE $CAND_PARTIAL $CAND_OFFSETS)"

# The upstream "default" test scenario runs against brokers with topic auto-creation on and
# 4 partitions per auto-created topic; ask gregor for the same through Kafka's variable names.
export KAFKA_AUTO_CREATE_TOPICS_ENABLE="${KAFKA_AUTO_CREATE_TOPICS_ENABLE:-true}"
export KAFKA_NUM_PARTITIONS="${KAFKA_NUM_PARTITIONS:-4}"
# One broker serves the whole run, so Kafka's five-minute retention check lands inside some
# test. 0052 stamps its records in 1970, and a check during it deletes them as past the 7-day
# retention before its consumers read them. Tests never wait for retention, so the suite's
# broker checks once a day.
export KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS="${KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS:-86400000}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 2; }

usage() { sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------- arguments
MODE=allow
SELECTED=""
REPEAT=1
FULL_ALL=0
SECURITY_ALL=""
PROTOCOL_ALL=""
while (($#)); do
    case "$1" in
        --tests) [[ $# -ge 2 ]] || die "--tests needs a list"; MODE=triage; SELECTED="$2"; shift 2 ;;
        --tests=*) MODE=triage; SELECTED="${1#--tests=}"; shift ;;
        --candidates) MODE=triage; SELECTED="$CANDIDATES"; shift ;;
        --list-candidates) echo $CANDIDATES; exit 0 ;;
        --repeat) [[ $# -ge 2 ]] || die "--repeat needs a number"; REPEAT="$2"; shift 2 ;;
        --build-only) MODE=build; shift ;;
        --full) FULL_ALL=1; shift ;;
        --security) [[ $# -ge 2 ]] || die "--security needs a profile"; SECURITY_ALL="$2"; shift 2 ;;
        --security=*) SECURITY_ALL="${1#--security=}"; shift ;;
        --group-protocol) [[ $# -ge 2 ]] || die "--group-protocol needs classic or consumer"
            PROTOCOL_ALL="$2"; shift 2 ;;
        --group-protocol=*) PROTOCOL_ALL="${1#--group-protocol=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
done
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || die "--repeat wants a positive integer"
[[ -z "$PROTOCOL_ALL" || "$PROTOCOL_ALL" == classic || "$PROTOCOL_ALL" == consumer ]] ||
    die "--group-protocol wants classic or consumer, not '$PROTOCOL_ALL'"

# Security tags, and the profile (broker listener + client settings) a set of them names.
SECURITY_TAGS="sasl sasl_ssl ssl acl reauth"
# Prints the canonical profile name of a tag list ("acl sasl_ssl" -> "sasl_ssl+acl";
# nothing -> "plaintext"), or fails with a message for lists that make no sense.
profile_of() {
    local listener="" acl="" reauth="" tag
    for tag in ${*//[,+]/ }; do
        case "$tag" in
            full|plaintext|consumer) ;;
            sasl|sasl_ssl|ssl)
                [[ -z "$listener" || "$listener" == "$tag" ]] ||
                    { echo "tags $listener and $tag both choose the listener" >&2; return 1; }
                listener="$tag" ;;
            acl) acl="+acl" ;;
            reauth) reauth="+reauth" ;;
            *) echo "unknown tag '$tag' (known: full consumer $SECURITY_TAGS)" >&2; return 1 ;;
        esac
    done
    if [[ -n "$reauth" && "$listener" != sasl* ]]; then
        echo "reauth needs sasl or sasl_ssl" >&2
        return 1
    fi
    echo "${listener:-plaintext}$acl$reauth"
}

# What to run: one entry per run of a test, as "<number>" and its tags. The allow-list may
# hold a number twice (classic and "consumer"), so entries are kept in order, not by number.
TESTS_TO_RUN=() TESTS_TAGS=()
declare -A TEST_TAGS=()
[[ $MODE != allow || -f "$ALLOW_FILE" ]] || die "missing $ALLOW_FILE"
if [[ -f "$ALLOW_FILE" ]]; then
    # "<number> [tag ...]" per line; comments and blank lines ignored. "full" runs that test
    # without quick mode: under -Q the suite silently skips sub-tests declared with
    # SUB_TEST() (only SUB_TEST_QUICK() ones run), which leaves some tests empty.
    # A triage run (--tests) keeps the security tags of listed tests (of their first line)
    # but not "full" or "consumer" (use --full and --group-protocol for those).
    while read -r num tags; do
        [[ -n "$num" ]] || continue
        [[ "$num" =~ ^[0-9]{4}$ ]] || die "tests.allow: not a 4-digit test number: '$num'"
        profile_of $tags >/dev/null || die "tests.allow: bad tags for $num: '$tags'"
        if [[ $MODE == allow ]]; then
            TESTS_TO_RUN+=("$num")
            TESTS_TAGS+=("$tags")
        elif [[ -z "${TEST_TAGS[$num]+set}" ]]; then
            TEST_TAGS[$num]="$(echo " $tags " | sed -e 's/ full / /g' -e 's/ consumer / /g')"
        fi
    done < <(sed -e 's/#.*//' "$ALLOW_FILE")
fi
if [[ -n "$SECURITY_ALL" ]]; then
    SECURITY_ALL="$(profile_of "$SECURITY_ALL")" || die "--security: bad profile"
fi
SELECTED="${SELECTED//,/ }"  # "0001,0002" works as well as "0001 0002"
for t in $SELECTED; do
    [[ "$t" =~ ^[0-9]{4}$ ]] || die "not a 4-digit test number: '$t'"
    TESTS_TO_RUN+=("$t")
    TESTS_TAGS+=("${TEST_TAGS[$t]:-}")
done

# ---------------------------------------------------------------- build deps
APT_UPDATED=0
ensure_debs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    if ((APT_UPDATED == 0)); then
        say "apt-get update"
        $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
        APT_UPDATED=1
    fi
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq "${missing[@]}"
}

if ! command -v dpkg-query >/dev/null; then
    say "no dpkg on this machine: skipping the build-dependency check"
    ensure_debs() { :; }
fi
ensure_debs python3 ca-certificates
command -v cargo >/dev/null || PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || die "cargo not found"

# ---------------------------------------------------------------- locate rdkafka-sys
rdkafka_sys_info() {
    cargo metadata --format-version 1 --manifest-path "$REPO/Cargo.toml" 2>/dev/null |
        python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
for pkg in meta["packages"]:
    if pkg["name"] == "rdkafka-sys":
        print(pkg["version"], os.path.dirname(pkg["manifest_path"]))
        break
'
}

say "locating rdkafka-sys with cargo metadata ($REPO/Cargo.toml)"
INFO="$(rdkafka_sys_info || true)"
if [[ -z "$INFO" || ! -d "${INFO#* }/librdkafka" ]]; then
    say "rdkafka-sys sources not present: cargo fetch"
    cargo fetch --manifest-path "$REPO/Cargo.toml"
    INFO="$(rdkafka_sys_info || true)"
fi
[[ -n "$INFO" ]] || die "rdkafka-sys is not in the dependency graph of $REPO/Cargo.toml"
SYS_VERSION="${INFO%% *}"
SYS_DIR="${INFO#* }"
[[ -d "$SYS_DIR/librdkafka/tests" ]] || die "no librdkafka/tests in $SYS_DIR"
# rdkafka-sys versions look like 4.10.0+2.12.1: the part after '+' is librdkafka's version.
LRK_VERSION="${SYS_VERSION#*+}"
[[ "$LRK_VERSION" != "$SYS_VERSION" ]] || LRK_VERSION="sys-$SYS_VERSION"
LRK="$CACHE_ROOT/librdkafka-$LRK_VERSION"
say "rdkafka-sys $SYS_VERSION -> librdkafka $LRK_VERSION, cached at $LRK"

# ---------------------------------------------------------------- build
# Debian packages the build wants. rapidjson-dev is only for the tests: without it 0053, 0098,
# 0101 and 0110 skip themselves ("RapidJSON >=1.1.0 not available"). Changing this list makes
# the next run rebuild, because the list is recorded in a stamp file next to the build.
BUILD_DEBS="gcc g++ make pkg-config libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev
libcurl4-openssl-dev rapidjson-dev"
STAMP="$LRK/.gregor-build"
STAMP_WANT="built with: $(echo $BUILD_DEBS)"
if [[ -x "$LRK/tests/test-runner" && "$(cat "$STAMP" 2>/dev/null)" == "$STAMP_WANT" ]]; then
    say "test-runner already built: $LRK/tests/test-runner"
else
    ensure_debs $BUILD_DEBS
    mkdir -p "$CACHE_ROOT"
    if [[ ! -d "$LRK" ]]; then
        say "copying $SYS_DIR/librdkafka -> $LRK"
        rm -rf "$LRK.partial"
        cp -a "$SYS_DIR/librdkafka" "$LRK.partial"
        mv "$LRK.partial" "$LRK"
    fi
    # The build log lives next to the folder, never inside it: configure treats
    # files called configure.<name> in its folder as modules.
    BUILD_LOG="$CACHE_ROOT/librdkafka-$LRK_VERSION.build.log"
    say "building librdkafka and tests/test-runner (a few minutes; log: $BUILD_LOG)"
    started=$SECONDS
    rm -f "$STAMP" "$LRK/tests/test-runner"
    # A folder built before (other options or packages) is cleaned first so configure's
    # choices reach every object file.
    if [[ -f "$LRK/Makefile.config" ]]; then
        (cd "$LRK" && make clean && make -C tests clean) >/dev/null 2>&1 || true
    fi
    if ! (cd "$LRK" && ./configure && make -j2 libs && make -C tests -j2 build) \
        >"$BUILD_LOG" 2>&1; then
        tail -n 40 "$BUILD_LOG" >&2
        die "build failed, see $BUILD_LOG"
    fi
    [[ -x "$LRK/tests/test-runner" ]] || die "build finished but tests/test-runner is missing"
    echo "$STAMP_WANT" >"$STAMP"
    say "built in $((SECONDS - started)) s"
fi

if [[ $MODE == build ]]; then
    exit 0
fi

# ---------------------------------------------------------------- per-run scratch
RUN_ID="$(date +%Y%m%d-%H%M%S)-$$"
RESULTS="$CACHE_ROOT/librdkafka-runs/$RUN_ID"
mkdir -p "$RESULTS"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gregor-lrk.XXXXXX")"
BROKER_PID=""
BROKER_LOG="$TMP/broker.log"
BROKER_STARTS=0

stop_broker() {
    if [[ -n "$BROKER_PID" ]]; then
        kill -- "-$BROKER_PID" 2>/dev/null || kill "$BROKER_PID" 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while kill -0 "$BROKER_PID" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        kill -9 -- "-$BROKER_PID" 2>/dev/null || kill -9 "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    BROKER_PID=""
}

cleanup() {
    local rc=$?
    stop_broker
    # Keep the broker logs with the per-test logs for triage.
    cp "$TMP"/broker*.log "$RESULTS"/ 2>/dev/null || true
    rmdir "$RESULTS" 2>/dev/null || true  # nothing ran: leave no empty folder
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Outside the ephemeral range: the broker is restarted on the same port when the security
# profile changes, and no client connection may take the port meanwhile.
free_port() { python3 "$REPO/compat-tests/clients/lib/ports.py"; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---------------------------------------------------------------- security profiles
# Users of the SASL listeners (PLAIN, from the listener's JAAS setting). The tests log in as
# TEST_USER, which is no super user, so 0081 can take rights away from it with ACLs;
# ADMIN_USER is the super user when the authorizer is on.
TEST_USER=testuser TEST_PASSWORD=testuser-secret
ADMIN_USER=admin ADMIN_PASSWORD=admin-secret
KEY_PASSWORD=gregor-client-key-secret
CERTS="$TMP/certs"
BROKER_PROFILE=""

# A throw-away CA, a broker certificate for 127.0.0.1/localhost and a client certificate, in
# the shapes trivup gives librdkafka's tests (0097 reads them through the SSL_* variables):
# PEM, DER, an encrypted PKCS#8 key and a PKCS#12 store.
make_certs() {
    [[ -f "$CERTS/ca.pem" ]] && return 0
    command -v openssl >/dev/null || ensure_debs openssl
    mkdir -p "$CERTS"
    (
        set -e
        cd "$CERTS"
        days=2
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days \
            -subj /CN=gregor-lrk-test-ca -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign
        openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj /CN=localhost
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >broker.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
            -extfile broker.ext -out broker.pem
        cat broker.key broker.pem >broker.keystore.pem
        openssl req -newkey rsa:2048 -nodes -keyout client.plain.key -out client.csr -subj /CN=testclient
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days $days \
            -extfile client.ext -out client.pem
        openssl pkcs8 -topk8 -in client.plain.key -v2 aes-256-cbc -passout "pass:$KEY_PASSWORD" -out client.key
        openssl pkcs8 -topk8 -nocrypt -in client.plain.key -outform DER -out client.key.der
        openssl x509 -in client.pem -outform DER -out client.der
        openssl x509 -in ca.pem -outform DER -out ca.der
        openssl pkcs12 -export -in client.pem -inkey client.plain.key -certfile ca.pem \
            -passout "pass:$KEY_PASSWORD" -out client.p12
    ) >"$TMP/certs.log" 2>&1 || { cat "$TMP/certs.log" >&2; die "openssl could not make the test certificates"; }
}

# Fills BROKER_ENV (KAFKA_* settings, on top of those exported above) and BROKER_ARGS for
# profile $1.
broker_settings() {
    local profile="$1" listener="${1%%+*}" jaas
    BROKER_ENV=() BROKER_ARGS=()
    jaas="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$ADMIN_USER\" password=\"$ADMIN_PASSWORD\" user_$ADMIN_USER=\"$ADMIN_PASSWORD\" user_$TEST_USER=\"$TEST_PASSWORD\";"
    case "$listener" in
        plaintext) BROKER_ARGS=(--listen "127.0.0.1:$BOOT_PORT") ;;
        sasl)
            BROKER_ENV+=("KAFKA_LISTENERS=SASL_PLAINTEXT://127.0.0.1:$BOOT_PORT"
                "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG=$jaas") ;;
        sasl_ssl)
            BROKER_ENV+=("KAFKA_LISTENERS=SASL_SSL://127.0.0.1:$BOOT_PORT"
                "KAFKA_LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG=$jaas") ;;
        ssl)
            BROKER_ENV+=("KAFKA_LISTENERS=SSL://127.0.0.1:$BOOT_PORT"
                KAFKA_SSL_CLIENT_AUTH=required KAFKA_SSL_TRUSTSTORE_TYPE=PEM
                "KAFKA_SSL_TRUSTSTORE_LOCATION=$CERTS/ca.pem") ;;
    esac
    [[ $listener != sasl* ]] || BROKER_ENV+=(KAFKA_SASL_ENABLED_MECHANISMS=PLAIN,SCRAM-SHA-512)
    [[ $listener != *ssl ]] ||
        BROKER_ENV+=(KAFKA_SSL_KEYSTORE_TYPE=PEM "KAFKA_SSL_KEYSTORE_LOCATION=$CERTS/broker.keystore.pem")
    if [[ $profile == *+acl* ]]; then
        BROKER_ENV+=(KAFKA_AUTHORIZER_CLASS_NAME=org.apache.kafka.metadata.authorizer.StandardAuthorizer
            KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND=true "KAFKA_SUPER_USERS=User:$ADMIN_USER")
    fi
    [[ $profile != *+reauth* ]] || BROKER_ENV+=(KAFKA_CONNECTIONS_MAX_REAUTH_MS=3000)
}

# Writes the runner's test.conf for profile $1 to $CONF (and the copy in tests/), and fills
# RUNNER_ENV with what else the runner needs (trivup's SSL_* variables for 0097).
write_conf() {
    local profile="$1" listener="${1%%+*}"
    CONF="$TMP/test.$profile.conf"
    RUNNER_ENV=()
    {
        echo "# written by gregor compat-tests/librdkafka/run.sh for run $RUN_ID, profile $profile"
        echo "bootstrap.servers=$BOOT_HOST:$BOOT_PORT"
        echo "test.timeout.multiplier=$TIMEOUT_MULT"
        case "$listener" in
            sasl) echo "security.protocol=SASL_PLAINTEXT" ;;
            sasl_ssl) echo "security.protocol=SASL_SSL" ;;
            ssl) echo "security.protocol=SSL" ;;
        esac
        if [[ $listener == sasl* ]]; then
            echo "sasl.mechanism=PLAIN"
            echo "sasl.username=$TEST_USER"
            echo "sasl.password=$TEST_PASSWORD"
        fi
        if [[ $listener == *ssl ]]; then
            echo "ssl.ca.location=$CERTS/ca.pem"
        fi
        if [[ $listener == ssl ]]; then
            echo "ssl.certificate.location=$CERTS/client.pem"
            echo "ssl.key.location=$CERTS/client.key"
            echo "ssl.key.password=$KEY_PASSWORD"
        fi
    } >"$CONF"
    if [[ $listener == ssl ]]; then
        RUNNER_ENV=("SSL_pkcs=$CERTS/client.p12" "SSL_pub_der=$CERTS/client.der"
            "SSL_priv_der=$CERTS/client.key.der" "SSL_pub_pem=$CERTS/client.pem"
            "SSL_priv_pem=$CERTS/client.key" "SSL_ca_der=$CERTS/ca.der"
            "SSL_ca_pem=$CERTS/ca.pem" "SSL_all_cas_pem=$CERTS/ca.pem"
            "SSL_password=$KEY_PASSWORD" SSL_client_auth=required)
    fi
    # Tests that run Kafka's kafka-topics.sh (0045, 0052, 0077) or, with the authorizer on,
    # kafka-acls.sh (0109, 0115, 0119) find small stand-ins for them under KAFKA_PATH
    # (kafka-tools/bin); the first asks the suite's BROKERS and runs gregor's own CLI.
    RUNNER_ENV+=("KAFKA_PATH=$HERE/kafka-tools" "BROKERS=$BOOT_HOST:$BOOT_PORT" "GREGOR_BIN=$GREGOR_BIN")
    # tests/test.conf is what a manual ./run-test.sh in that folder reads; the runs below
    # use their own copy (RDKAFKA_TEST_CONF), so concurrent run.sh invocations do not clash.
    cp "$CONF" "$LRK/tests/test.conf"
    say "wrote $LRK/tests/test.conf (profile $profile, bootstrap.servers=$BOOT_HOST:$BOOT_PORT)"
}

BOOT_HOST=127.0.0.1
BOOT_PORT=""
start_broker() { # profile
    local profile="${1:-plaintext}"
    BROKER_STARTS=$((BROKER_STARTS + 1))
    [[ -x "$GREGOR_BIN" ]] || die "broker binary $GREGOR_BIN not found (build it, or set GREGOR_BIN / GREGOR_BOOTSTRAP)"
    [[ -n "$BOOT_PORT" ]] || BOOT_PORT="$(free_port)"
    [[ $profile != *ssl* ]] || make_certs
    broker_settings "$profile"
    BROKER_PROFILE="$profile"
    local data="$TMP/data.$BROKER_STARTS"
    mkdir -p "$data"
    BROKER_LOG="$TMP/broker.$BROKER_STARTS.log"
    say "broker binary $GREGOR_BIN, modified $(date -u -r "$GREGOR_BIN" '+%Y-%m-%d %H:%M:%S UTC')"
    say "starting $GREGOR_BIN ${BROKER_ARGS[*]} --data-dir $data, profile $profile on port $BOOT_PORT (log: $BROKER_LOG)"
    # Started from the temp dir, so a config/gregor.toml in the caller's working directory
    # does not leak in: built-in defaults, the KAFKA_* variables above and the flags only.
    # Own session and process group, so stopping it also stops anything it spawned
    # (a wrapper script, for instance); env and setsid exec in place here, so $! is the broker.
    (cd "$TMP" && exec env ${BROKER_ENV[@]+"${BROKER_ENV[@]}"} setsid "$GREGOR_BIN" \
        ${BROKER_ARGS[@]+"${BROKER_ARGS[@]}"} --data-dir "$data") \
        >"$BROKER_LOG" 2>&1 &
    BROKER_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT)) rc=0
    until port_open 127.0.0.1 "$BOOT_PORT"; do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            wait "$BROKER_PID" 2>/dev/null && rc=0 || rc=$?
            stop_broker  # also ends whatever it left behind in its group
            say "broker exited with status $rc before accepting connections; log tail:"
            tail -n 20 "$BROKER_LOG" >&2 || true
            return 1
        fi
        if ((SECONDS >= deadline)); then
            say "broker did not accept connections on 127.0.0.1:$BOOT_PORT within ${START_TIMEOUT}s; log tail:"
            tail -n 20 "$BROKER_LOG" >&2 || true
            stop_broker
            return 1
        fi
        sleep 0.1
    done
    say "broker up on 127.0.0.1:$BOOT_PORT (pid $BROKER_PID)"
}

# ---------------------------------------------------------------- run tests
ROW_TEST=() ROW_STATE=() ROW_SECS=() ROW_NOTE=()
PASSED=0
FAILED=0

record() { # test state secs note
    ROW_TEST+=("$1"); ROW_STATE+=("$2"); ROW_SECS+=("$3"); ROW_NOTE+=("$4")
    if [[ $2 == PASSED ]]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
}

# Reads the runner output of one test and prints "STATE<TAB>note".
# A test number can own several entries (0022_consume_batch, 0022_consume_batch_local):
# any FAILED/RUNNING entry fails it; otherwise one PASSED entry passes it; otherwise SKIPPED.
verdict() { # logfile testnum
    sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\x1b(B//g' "$1" | python3 -c '
import re, sys
num = sys.argv[1]
lines = sys.stdin.read().splitlines()
rows, why = {}, {}
row = re.compile(r"^\|\s*(" + num + r"_\S+)\s*\|\s*([A-Z]+)\s*\|\s*([0-9.]+)s\s*\|\s*(.*)$")
fail = re.compile(r"^### Test \"(" + num + r"_[^\"]+)\" failed at (\S+)")
for i, line in enumerate(lines):
    m = row.match(line)
    if m:
        rows[m.group(1)] = (m.group(2), m.group(4).strip())
    m = fail.match(line)
    if m and m.group(1) not in why:
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        why[m.group(1)] = "%s: %s" % (m.group(2), nxt)
def reason(name, text):
    return "%s: %s" % (name, why.get(name) or text or "?")
states = [s for s, _ in rows.values()]
if not rows:
    print("NO-ROW\t" + " ; ".join(reason(n, "") for n in why))
elif any(s in ("FAILED", "RUNNING") for s in states):
    print("FAILED\t" + " ; ".join(reason(n, r) for n, (s, r) in sorted(rows.items())
                                  if s in ("FAILED", "RUNNING")))
elif "PASSED" in states:
    skipped = sorted(n for n, (s, _) in rows.items() if s == "SKIPPED")
    print("PASSED\t" + ("skipped parts: " + ", ".join(skipped) if skipped else ""))
else:
    print("SKIPPED\t" + " ; ".join(r for _, r in rows.values() if r))
' "$2"
}

# Last line of a log with text in it, colour codes removed.
last_line() {
    sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\x1b(B//g' "$1" | grep -a -v '^[[:space:]#]*$' |
        tail -n 1 | cut -c1-160
}

if ((${#TESTS_TO_RUN[@]} == 0)); then
    say "no tests selected (tests.allow is empty?)"
else
    declare -A PROFILE_DOWN=()
    EXTERNAL_OK=1
    if [[ -n "${GREGOR_BOOTSTRAP:-}" ]]; then
        BOOT_HOST="${GREGOR_BOOTSTRAP%:*}"
        BOOT_PORT="${GREGOR_BOOTSTRAP##*:}"
        if port_open "$BOOT_HOST" "$BOOT_PORT"; then
            say "using the running broker at $GREGOR_BOOTSTRAP (plaintext tests only)"
            write_conf plaintext
        else
            say "GREGOR_BOOTSTRAP=$GREGOR_BOOTSTRAP does not accept connections"
            EXTERNAL_OK=0
        fi
    fi
    say "per-test logs: $RESULTS"

    for ((e = 0; e < ${#TESTS_TO_RUN[@]}; e++)); do
        t="${TESTS_TO_RUN[$e]}"
        tags="${TESTS_TAGS[$e]}"
        profile="$(profile_of $tags)"
        [[ -z "$SECURITY_ALL" ]] || profile="$SECURITY_ALL"
        # The consumer group protocol the suite's consumers use: TEST_CONSUMER_GROUP_PROTOCOL
        # is what test.c (and testcpp.cpp) read to set group.protocol on every consumer they
        # create; tests check test_consumer_group_protocol_classic() to skip or change parts.
        # Nothing in the suite looks at the broker version for KIP-848, so TEST_KAFKA_VERSION
        # stays the same. For a classic run the variable is removed from the environment.
        protocol=classic
        [[ " $tags " != *" consumer "* ]] || protocol=consumer
        [[ -z "$PROTOCOL_ALL" ]] || protocol="$PROTOCOL_ALL"
        for ((i = 1; i <= REPEAT; i++)); do
            label="$t"
            log="$RESULTS/$t.$i.log"
            if [[ $protocol == consumer ]]; then
                label="$t/consumer"
                log="$RESULTS/$t.consumer.$i.log"
            fi
            ((REPEAT == 1)) || label="$label#$i"
            if [[ -n "${GREGOR_BOOTSTRAP:-}" ]]; then
                if ((EXTERNAL_OK == 0)); then
                    record "$label" BROKER-DOWN 0 "no broker to test against at $GREGOR_BOOTSTRAP"
                    continue
                elif [[ $profile != plaintext ]]; then
                    record "$label" SKIPPED 0 "profile $profile needs a broker started by run.sh"
                    continue
                fi
            else
                if [[ -n "$BROKER_PID" && $profile != "$BROKER_PROFILE" ]]; then
                    say "next test wants profile $profile: restarting the broker"
                    stop_broker
                fi
                if [[ -z "$BROKER_PID" ]]; then
                    if [[ -n "${PROFILE_DOWN[$profile]:-}" ]]; then
                        record "$label" BROKER-DOWN 0 "the $profile broker did not start (broker logs: $RESULTS)"
                        continue
                    fi
                    if ! start_broker "$profile"; then
                        PROFILE_DOWN[$profile]=1
                        record "$label" BROKER-DOWN 0 "the $profile broker did not start (broker logs: $RESULTS)"
                        continue
                    fi
                    write_conf "$profile"
                fi
            fi
            runner_args=(-E -L)
            mode=full
            if ((FULL_ALL == 0)) && ! [[ " $tags " == *" full "* ]]; then
                runner_args=(-Q -E -L)
                mode=quick
            fi
            say "test $label ($mode mode, profile $profile, group protocol $protocol, TEST_KAFKA_VERSION=$KAFKA_VERSION, limit ${TEST_TIMEOUT}s)"
            protocol_env=(-u TEST_CONSUMER_GROUP_PROTOCOL)
            [[ $protocol == classic ]] || protocol_env=(TEST_CONSUMER_GROUP_PROTOCOL="$protocol")
            # Offsets a legacy consumer stored with offset.store.method=file (0014) stay in
            # tests/ as <topic>-<partition>.offset. The suite's topic names are random but not
            # unique across runs: a CI run once met the file an earlier run left for the same
            # name and started at its end instead of the beginning, then waited for records.
            rm -f "$LRK"/tests/*.offset
            started=$SECONDS
            rc=0
            (cd "$LRK/tests" &&
                env "${protocol_env[@]}" ${RUNNER_ENV[@]+"${RUNNER_ENV[@]}"} \
                    TESTS="$t" TEST_KAFKA_VERSION="$KAFKA_VERSION" RDKAFKA_TEST_CONF="$CONF" \
                    timeout -k 10 "$TEST_TIMEOUT" ./run-test.sh "${runner_args[@]}") >"$log" 2>&1 || rc=$?
            secs=$((SECONDS - started))
            IFS=$'\t' read -r state note < <(verdict "$log" "$t") || true
            if ((rc == 124 || rc == 137)); then
                state=TIMEOUT
                note="killed after ${TEST_TIMEOUT}s; last line: $(last_line "$log")"
            elif [[ $state == PASSED && $rc -ne 0 ]]; then
                state=FAILED; note="all entries PASSED but run-test.sh exited $rc"
            elif [[ $state == NO-ROW ]]; then
                state=FAILED
                [[ -n "$note" ]] || note="last line: $(last_line "$log")"
                note="exit $rc, no summary (runner aborted); $note"
            fi
            if [[ -n "$BROKER_PID" ]] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
                wait "$BROKER_PID" 2>/dev/null && brc=0 || brc=$?
                stop_broker
                [[ $state == PASSED ]] && state=FAILED
                note="BROKER EXITED (status $brc, log $(basename "$BROKER_LOG")): $(tail -n 1 "$BROKER_LOG" | cut -c1-150) ; $note"
                cp "$BROKER_LOG" "$RESULTS"/ 2>/dev/null || true
            fi
            [[ $mode == quick ]] || note="full mode${note:+; $note}"
            [[ $profile == plaintext ]] || note="$profile${note:+; $note}"
            say "test $label: $state (${secs}s) $note"
            record "$label" "$state" "$secs" "$note"
        done
    done
fi

# ---------------------------------------------------------------- report
printf '\n%-16s %-11s %5s  %s\n' TEST RESULT SECS NOTE
printf '%-16s %-11s %5s  %s\n' ---------------- ----------- ----- ----
for ((i = 0; i < ${#ROW_TEST[@]}; i++)); do
    printf '%-16s %-11s %5s  %s\n' "${ROW_TEST[$i]}" "${ROW_STATE[$i]}" "${ROW_SECS[$i]}" \
        "$(printf '%s' "${ROW_NOTE[$i]}" | cut -c1-200)"
done
echo
((${#ROW_TEST[@]} == 0)) || echo "logs: $RESULTS"
echo "librdkafka: $PASSED passed, $FAILED failed"
((FAILED == 0))
exit
}
