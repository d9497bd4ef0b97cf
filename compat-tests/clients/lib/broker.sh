#!/usr/bin/env bash
# Starts, stops and restarts the gregor broker that run.sh manages, so that scenarios can take
# it down and bring it back on the same data directory (lib/compat.py: restart_broker()).
#
#   broker.sh STATE_DIR init BIN LISTEN DATADIR LOG [VAR=value ...]   record how to start it
#   broker.sh STATE_DIR start [TIMEOUT_S]     start; returns once the port accepts connections
#   broker.sh STATE_DIR stop [TERM|KILL]      TERM (then KILL after 10 s) or KILL at once
#   broker.sh STATE_DIR restart [TERM|KILL] [TIMEOUT_S]
#   broker.sh STATE_DIR alive                 exit 0 while the broker process runs
#   broker.sh STATE_DIR status                the last broker's exit status, if it has exited
#
# The broker runs in its own session (setsid) under a small bash watcher that records its exit
# status in STATE_DIR/status. Being in its own session matters: run.sh runs every scenario
# under `timeout`, which signals the scenario's whole process group when it fires; a broker
# restarted by a scenario must survive that. STATE_DIR/pid always holds the broker's own pid.
set -euo pipefail

STATE="${1:?usage: broker.sh STATE_DIR init|start|stop|restart|alive|status ...}"
CMD="${2:?usage: broker.sh STATE_DIR init|start|stop|restart|alive|status ...}"
shift 2

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

load() {
  [ -f "$STATE/conf" ] || { echo "broker.sh: $STATE/conf missing (run init first)" >&2; exit 2; }
  # shellcheck disable=SC1091
  . "$STATE/conf"
}

pid_of() { cat "$STATE/pid" 2>/dev/null || true; }

alive() {
  local pid
  pid="$(pid_of)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

start() {
  load
  local timeout="${1:-30}"
  if alive; then
    echo "broker.sh: broker already running (pid $(pid_of))" >&2
    return 1
  fi
  rm -f "$STATE/pid" "$STATE/status"
  echo "==== broker.sh: starting $BIN --listen $LISTEN --data-dir $DATADIR ($(date -u '+%H:%M:%S')) ====" >>"$LOG"
  # The watcher starts the broker in the background, publishes its pid, waits for it and
  # records the exit status. `exec env` keeps the pid in STATE/pid equal to the broker's.
  setsid bash -c '
    state="$1"; log="$2"; shift 2
    exec env "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$state/pid.tmp" && mv "$state/pid.tmp" "$state/pid"
    wait $! && rc=0 || rc=$?
    echo "$rc" >"$state/status"
    echo "==== broker.sh: broker exited with status $rc ($(date -u "+%H:%M:%S")) ====" >>"$log"
  ' watcher "$STATE" "$LOG" "${ENV_VARS[@]}" "$BIN" --listen "$LISTEN" --data-dir "$DATADIR" \
    </dev/null >/dev/null 2>&1 &
  local end=$((SECONDS + timeout))
  until [ -s "$STATE/pid" ]; do
    [ "$SECONDS" -lt "$end" ] || { echo "broker.sh: no broker pid after ${timeout}s" >&2; return 1; }
    sleep 0.05
  done
  until port_open "${LISTEN%:*}" "${LISTEN##*:}"; do
    if ! alive; then
      sleep 0.2  # let the watcher write the status
      echo "broker.sh: broker exited with status $(cat "$STATE/status" 2>/dev/null || echo '?') before listening on $LISTEN" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      echo "broker.sh: broker did not listen on $LISTEN within ${timeout}s" >&2
      return 1
    fi
    sleep 0.05
  done
}

stop() {
  local sig="${1:-TERM}" pid
  pid="$(pid_of)"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    echo "==== broker.sh: sending SIG$sig to broker pid $pid ($(date -u '+%H:%M:%S')) ====" >>"${LOG:-/dev/null}"
    kill "-$sig" "$pid" 2>/dev/null || true
    local end=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "broker.sh: broker did not stop within 10 s of SIG$sig; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
  fi
  # The watcher writes the status right after the broker is gone; wait for it briefly.
  local end=$((SECONDS + 5))
  while [ ! -f "$STATE/status" ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
}

case "$CMD" in
  init)
    [ "$#" -ge 4 ] || { echo "usage: broker.sh STATE_DIR init BIN LISTEN DATADIR LOG [VAR=value ...]" >&2; exit 2; }
    mkdir -p "$STATE"
    {
      printf 'BIN=%q\nLISTEN=%q\nDATADIR=%q\nLOG=%q\n' "$1" "$2" "$3" "$4"
      shift 4
      printf 'ENV_VARS=('
      for kv in "$@"; do printf '%q ' "$kv"; done
      printf ')\n'
    } >"$STATE/conf"
    ;;
  start) start "$@" ;;
  stop) load; stop "$@" ;;
  restart) load; stop "${1:-TERM}"; start "${2:-30}" ;;
  alive) alive ;;
  status) cat "$STATE/status" 2>/dev/null ;;
  *) echo "broker.sh: unknown command $CMD" >&2; exit 2 ;;
esac
