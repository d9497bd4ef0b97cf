"""Shared helpers for the Python compatibility scenarios.

Every scenario reads the broker address from $BOOTSTRAP (host:port), works on its own
freshly named topics, and exits 0 only when the data it read back matches what it wrote.
Failures are collected by `Checks` so one run reports many mismatches, not just the first.
"""
import os
import sys
import time
import uuid

# Clients must not sit on a dead broker for long: every wait below is bounded.
DEFAULT_DEADLINE_S = float(os.environ.get("SCENARIO_DEADLINE_S", "60"))


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


def wait_until(predicate, what, deadline_s=DEFAULT_DEADLINE_S, interval_s=0.1):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + deadline_s
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # a transient error while polling is not the verdict
            last_exc = exc
        if time.monotonic() >= end:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {deadline_s:.0f}s waiting for {what}{extra}")
        time.sleep(interval_s)


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


if __name__ == "__main__":
    # Tiny CLI used by the shell scenarios: `compat.py create-topic NAME PARTITIONS`.
    if len(sys.argv) == 4 and sys.argv[1] == "create-topic":
        bs = os.environ.get("BOOTSTRAP") or sys.exit("set BOOTSTRAP")
        ck_create_topics(ck_admin(bs), {sys.argv[2]: int(sys.argv[3])})
        sys.exit(0)
    sys.exit("usage: BOOTSTRAP=host:port compat.py create-topic NAME PARTITIONS")
