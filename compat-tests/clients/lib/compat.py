"""Shared helpers for the Python compatibility scenarios.

Every scenario reads the broker address from $BOOTSTRAP (host:port), works on its own
freshly named topics, and exits 0 only when the data it read back matches what it wrote.
Failures are collected by `Checks` so one run reports many mismatches, not just the first.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

# Clients must not sit on a dead broker for long: every wait below is bounded.
DEFAULT_DEADLINE_S = float(os.environ.get("SCENARIO_DEADLINE_S", "60"))
LIB_DIR = os.path.dirname(os.path.abspath(__file__))
# Exit status of a scenario that could not run here (run.sh shows "skip", not a failure).
EXIT_SKIP = 77


def skip(reason):
    log(f"SKIP {reason}")
    sys.exit(EXIT_SKIP)


def bootstrap():
    positional = [a for a in sys.argv[1:] if not a.startswith("--")]
    value = os.environ.get("BOOTSTRAP") or (positional[0] if positional else "")
    if not value:
        sys.exit("set BOOTSTRAP=host:port (or pass it as the first argument)")
    return value


def unique_topic(prefix):
    """Topic names are unique per run so that scenarios never see each other's data."""
    return f"compat-{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def flag(name):
    """True when `--name` was passed on the command line (scenario variants)."""
    return f"--{name}" in sys.argv[1:]


def log(msg):
    print(msg, flush=True)


class Checks:
    """Collects failed expectations; `finish()` prints them and sets the exit status."""

    def __init__(self, name, max_shown=25):
        self.name = name
        self.failures = []
        self.max_shown = max_shown
        self.passed = 0

    def check(self, ok, msg):
        if ok:
            self.passed += 1
        else:
            self.failures.append(msg)
        return ok

    def equal(self, got, want, what):
        return self.check(got == want, f"{what}: got {got!r}, want {want!r}")

    def fail(self, msg):
        self.failures.append(msg)

    def finish(self):
        if self.failures:
            log(f"FAIL {self.name}: {len(self.failures)} failed check(s), {self.passed} passed")
            for f in self.failures[: self.max_shown]:
                log(f"  - {f}")
            if len(self.failures) > self.max_shown:
                log(f"  ... and {len(self.failures) - self.max_shown} more")
            sys.exit(1)
        log(f"PASS {self.name}: {self.passed} checks")
        sys.exit(0)


class Abort(Exception):
    """Raised inside a wait_until predicate: stop waiting at once (not a transient error)."""


def wait_until(predicate, what, deadline_s=DEFAULT_DEADLINE_S, interval_s=0.1):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + deadline_s
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Abort:
            raise
        except Exception as exc:  # a transient error while polling is not the verdict
            last_exc = exc
        if time.monotonic() >= end:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {deadline_s:.0f}s waiting for {what}{extra}")
        time.sleep(interval_s)


# --- the broker itself ----------------------------------------------------------------------

def broker_control_available():
    return bool(os.environ.get("GREGOR_BROKER_STATE"))


def restart_broker(sig="KILL", timeout_s=30):
    """Stops the broker run.sh started (SIGKILL by default: no clean shutdown) and starts it
    again on the same data directory and port; returns once the port accepts connections.
    Only possible when run.sh owns the broker ($GREGOR_BROKER_STATE, see lib/broker.sh);
    otherwise the scenario is skipped."""
    state = os.environ.get("GREGOR_BROKER_STATE")
    if not state:
        skip("needs a broker that run.sh started (GREGOR_BROKER_STATE unset; "
             "with GREGOR_BOOTSTRAP the broker cannot be restarted)")
    res = subprocess.run([os.path.join(LIB_DIR, "broker.sh"), state, "restart", sig,
                          str(int(timeout_s))], capture_output=True, text=True,
                         timeout=timeout_s + 20)
    if res.returncode != 0:
        raise RuntimeError(f"broker restart failed (exit {res.returncode}): "
                           f"{(res.stderr or res.stdout).strip()[-500:]}")
    log(f"broker restarted after SIG{sig}")


def run_node_scenario(script):
    """Runs a JavaScript scenario next to the calling one with node against the broker
    ($BOOTSTRAP, and the node_modules install.sh made) and exits with its status."""
    cache = os.environ.get("GREGOR_CACHE") or os.path.expanduser("~/.cache/gregor")
    env = dict(os.environ, BOOTSTRAP=bootstrap(), GREGOR_NODE_MODULES=os.path.join(cache, "node", "node_modules"))
    scenarios = os.path.join(LIB_DIR, "..", "scenarios")
    result = subprocess.run(["node", os.path.join(scenarios, script)], env=env, timeout=90)
    sys.exit(result.returncode)


# --- confluent-kafka helpers -------------------------------------------------------------

def ck_admin(bootstrap_servers):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap_servers, "socket.timeout.ms": 10000})


def ck_create_topics(admin, specs, timeout_s=30):
    """specs: {name: partitions}. Creates them and waits until metadata shows every partition
    with a leader. Raises with the broker's error text on failure."""
    from confluent_kafka.admin import NewTopic
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in specs.items()],
        operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - turn every failure into one clear line
            raise SystemExit(f"SETUP FAILED: CreateTopics({name}) via confluent-kafka AdminClient: "
                             f"{type(exc).__name__}: {str(exc) or 'no answer within %ss' % timeout_s}")

    def visible():
        md = admin.list_topics(timeout=10)
        for name, n in specs.items():
            t = md.topics.get(name)
            if t is None or t.error is not None or len(t.partitions) != n:
                return False
            if any(p.leader < 0 for p in t.partitions.values()):
                return False
        return True

    try:
        wait_until(visible, f"topics {sorted(specs)} to appear in metadata with all partitions "
                   "led", deadline_s=timeout_s)
    except TimeoutError as exc:
        raise SystemExit(f"SETUP FAILED: {exc}")


def ck_high_watermarks(consumer, topic, partitions, timeout_s=10):
    from confluent_kafka import TopicPartition
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s,
                                              cached=False)
            for p in partitions}


def ck_produce(bootstrap_servers, topic, messages, timeout_s=30, **conf):
    """messages: iterable of (key, value, partition or None). Produces with acks=all and returns
    [(key, value, partition, offset)] in production order; raises if any delivery failed."""
    from confluent_kafka import Producer
    cfg = {"bootstrap.servers": bootstrap_servers, "acks": "all", "linger.ms": 5,
           "message.timeout.ms": int(timeout_s * 1000)}
    cfg.update(conf)
    p = Producer(cfg)
    results = []
    reports = {}
    for i, (key, value, partition) in enumerate(messages):
        def cb(err, msg, i=i):
            reports[i] = (err, msg.partition(), msg.offset())
        kwargs = {"key": key, "value": value, "on_delivery": cb}
        if partition is not None:
            kwargs["partition"] = partition
        p.produce(topic, **kwargs)
        results.append((key, value))
        p.poll(0)
    left = p.flush(timeout_s)
    if left:
        raise RuntimeError(f"{left} messages to {topic} still queued after flush({timeout_s})")
    out = []
    for i, (key, value) in enumerate(results):
        err, part, off = reports.get(i, ("no delivery report", None, None))
        if err is not None:
            raise RuntimeError(f"produce to {topic} failed for message {i}: {err}")
        out.append((key, value, part, off))
    return out


class CkMember:
    """A confluent-kafka consumer group member running lib/ck_member.py in a subprocess.

    Its JSON events (see ck_member.py) are collected by a reader thread; the scenario inspects
    them with `assignment()`, `events()`, `consumed()`, `committed()` and waits with `wait()`.
    `close()` asks for consumer.close(); `kill()` is a crash (SIGKILL)."""

    live = []

    def __init__(self, name, bootstrap_servers, group, topics, conf=None, commit_every=1):
        self.name = name
        spec = {"bootstrap": bootstrap_servers, "group": group, "topics": list(topics),
                "conf": dict(conf or {}), "commit_every": commit_every}
        spec["conf"].setdefault("client.id", name)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(LIB_DIR, "ck_member.py"), json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1)
        self._events = []
        self._stderr = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        CkMember.live.append(self)

    def _read_stdout(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "stdout", "line": line.rstrip("\n"), "t": time.monotonic()}
            with self._lock:
                self._events.append(ev)

    def _read_stderr(self):
        for line in self.proc.stderr:
            with self._lock:
                self._stderr.append(line.rstrip("\n"))

    def events(self, kind=None):
        with self._lock:
            return [e for e in self._events if kind is None or e["ev"] == kind]

    def assignment(self):
        """The member's consumer.assignment() as last reported: a set of (topic, partition)."""
        evs = self.events("assignment")
        return {tuple(p) for p in evs[-1]["parts"]} if evs else set()

    def partitions(self):
        return sorted(p for _, p in self.assignment())

    def consumed(self):
        return [(e["topic"], e["p"], e["o"], e["key"], e["t"]) for e in self.events("msg")]

    def committed(self):
        """{(topic, partition): highest offset this member committed successfully}."""
        best = {}
        for e in self.events("commit"):
            for t, p, o in e["offsets"]:
                best[(t, p)] = max(best.get((t, p), -1), o)
        return best

    def problems(self):
        """Errors the member reported (consumer errors, failed commits), as strings."""
        return [f"{self.name}: {e['ev']}: {e.get('err')} {e.get('partitions', '')}".rstrip()
                for e in self.events() if e["ev"] in ("error", "commit_failed", "stdout")]

    def stderr_tail(self, n=5):
        with self._lock:
            return self._stderr[-n:]

    def alive(self):
        return self.proc.poll() is None

    def wait(self, predicate, what, deadline_s=30):
        def check():
            if not self.alive() and not self.events("closed"):
                raise Abort(f"{self.name} exited with {self.proc.returncode}; stderr: "
                                   f"{self.stderr_tail()}")
            return predicate(self)
        return wait_until(check, f"{self.name}: {what}", deadline_s=deadline_s, interval_s=0.05)

    def command(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def close(self, timeout_s=30):
        """consumer.close() in the member (LeaveGroup unless static), then waits for exit."""
        if self.alive():
            self.command("close")
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"{self.name}: close() did not return within {timeout_s}s")
        if self in CkMember.live:
            CkMember.live.remove(self)
        return self.proc.returncode

    def kill(self):
        """A crash: SIGKILL, so no LeaveGroup, no commit, no further heartbeats."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self in CkMember.live:
            CkMember.live.remove(self)

    @classmethod
    def kill_all(cls):
        for m in list(cls.live):
            m.kill()


import atexit  # noqa: E402

atexit.register(CkMember.kill_all)


def union_check(c, members, all_parts, what):
    """Checks that the members' assignments cover `all_parts` exactly once."""
    seen = {}
    for m in members:
        for tp in m.assignment():
            seen.setdefault(tp, []).append(m.name)
    c.equal(sorted(seen), sorted(all_parts), f"{what}: partitions assigned")
    c.check(all(len(v) == 1 for v in seen.values()),
            f"{what}: partitions owned by more than one member: "
            f"{ {k: v for k, v in seen.items() if len(v) > 1} }")


if __name__ == "__main__":
    # Tiny CLI used by the shell scenarios: `compat.py create-topic NAME PARTITIONS`.
    if len(sys.argv) == 4 and sys.argv[1] == "create-topic":
        bs = os.environ.get("BOOTSTRAP") or sys.exit("set BOOTSTRAP")
        ck_create_topics(ck_admin(bs), {sys.argv[2]: int(sys.argv[3])})
        sys.exit(0)
    sys.exit("usage: BOOTSTRAP=host:port compat.py create-topic NAME PARTITIONS")
