#!/usr/bin/env bash
# A stand-in for Kafka's kafka-topics.sh, enough for librdkafka's tests 0045, 0052 and 0077:
# --create (with --partitions, --replication-factor and any --config K=V), --alter --partitions
# and --delete of one --topic, done by gregor's own admin commands (`gregor topics ...`).
# run.sh points KAFKA_PATH at the folder above bin/ and sets GREGOR_BIN (the binary) and
# BROKERS (the suite's --bootstrap-server).
set -euo pipefail

fail() {
    echo "kafka-topics.sh (gregor test stand-in): $*" >&2
    exit 1
}

gregor="${GREGOR_BIN:-}"
[[ -x $gregor ]] || fail "GREGOR_BIN must name the gregor binary"
action="" topic="" partitions="" replication="" bootstrap=""
configs=()
while (($#)); do
    case $1 in
    --create | --alter | --delete) action=${1#--} ;;
    --topic | --partitions | --replication-factor | --config | --bootstrap-server)
        (($# >= 2)) || fail "$1 needs a value"
        case $1 in
        --topic) topic=$2 ;;
        --partitions) partitions=$2 ;;
        --replication-factor) replication=$2 ;;
        --config) configs+=(--config "$2") ;;
        --bootstrap-server) bootstrap=${2%%,*} ;;
        esac
        shift
        ;;
    *) fail "$1 is not supported" ;;
    esac
    shift
done
[[ -n $bootstrap ]] || fail "--bootstrap-server is required"
[[ -n $topic ]] || fail "--topic is required"

case $action in
create)
    args=(topics create "$topic" --bootstrap-server "$bootstrap")
    [[ -z $partitions ]] || args+=(--partitions "$partitions")
    [[ -z $replication ]] || args+=(--replication-factor "$replication")
    exec "$gregor" "${args[@]}" ${configs[@]+"${configs[@]}"}
    ;;
alter)
    [[ -n $partitions ]] || fail "--alter needs --partitions (topic configs: kafka-configs.sh)"
    exec "$gregor" topics alter "$topic" --partitions "$partitions" --bootstrap-server "$bootstrap"
    ;;
delete) exec "$gregor" topics delete "$topic" --bootstrap-server "$bootstrap" ;;
*) fail "one of --create, --alter, --delete is required" ;;
esac
