"""Debian's python3-kafka (kafka-python 2.0.2): admin, produce and a consumer group, defaults only.

Runs under /usr/bin/python3 with the Debian package (it re-executes itself there when started
from the venv, whose kafka-python is 3.x). Every client gets only bootstrap_servers (and
group_id): kafka-python 2.0.2 then probes the broker's version itself (api_version=None:
ApiVersions v0, then infers a Kafka release from the ranges - (2, 5, 0) when DescribeAcls v2 is
served - and picks its fixed request versions from that; the inferred version is printed).

  1. KafkaAdminClient.create_topics: 3 partitions → error code 0; the topic shows 3 led
     partitions in describe_topics.
  2. KafkaConsumer(topic, group_id=G): default auto_offset_reset='latest', so it first joins
     and resolves its positions (all 3 partitions), then a default KafkaProducer sends 100
     keyed messages (acks=1); the consumer reads each exactly once with the producer's
     partition/offset, commit() → committed() = log end for every partition, close().
  3. 5 more messages; a second KafkaConsumer of G reads exactly those 5: nothing of step 2
     again (redelivery = lost commits) and nothing missing (no commit = starts at latest).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEB_PY = "/usr/bin/python3"
if os.environ.get("GREGOR_DEB_KP") != "1":
    # The venv's kafka-python is 3.x: run Debian's interpreter with no user site / PYTHONPATH.
    if not os.path.exists(DEB_PY):
        sys.exit(f"FAIL {DEB_PY} missing (compat-tests/clients/install.sh installs python3-kafka)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["GREGOR_DEB_KP"] = "1"
    os.execve(DEB_PY, [DEB_PY, "-s", os.path.abspath(__file__)] + sys.argv[1:], env)

import time  # noqa: E402
import uuid  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from compat import Checks, bootstrap, log, unique_topic, wait_until  # noqa: E402

import kafka  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402

PARTITIONS = 3
c = Checks(f"python3-kafka {kafka.__version__} (Debian) group consumer")
if kafka.__version__ != "2.0.2" or not kafka.__file__.startswith("/usr/lib/python3/"):
    c.fail(f"expected Debian's kafka-python 2.0.2, got {kafka.__version__} from {kafka.__file__}")
    c.finish()
bs = bootstrap()
topic = unique_topic("debkp-group")
group = f"compat-debkp-{uuid.uuid4().hex[:8]}"
t0 = time.monotonic()

# 1. admin
admin = KafkaAdminClient(bootstrap_servers=bs)
log(f"KafkaAdminClient inferred api_version {admin.config['api_version']}")
try:
    resp = admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    errs = [(t, code) for t, code, *_ in resp.topic_errors]
    c.equal(errs, [(topic, 0)], f"create_topics (CreateTopics v{resp.API_VERSION}) error codes")
except Exception as exc:  # noqa: BLE001
    c.fail(f"create_topics raised {type(exc).__name__}: {exc}")
    c.finish()


def led():
    md = admin.describe_topics([topic])
    parts = md[0]["partitions"] if md and md[0]["error_code"] == 0 else []
    return len(parts) == PARTITIONS and all(p["leader"] >= 0 for p in parts)


try:
    wait_until(led, f"{topic} with {PARTITIONS} led partitions in describe_topics", deadline_s=15)
    c.check(True, "")
except TimeoutError as exc:
    c.fail(str(exc))
    c.finish()
ALL = {TopicPartition(topic, p) for p in range(PARTITIONS)}


def produce(prefix, rng):
    p = KafkaProducer(bootstrap_servers=bs)
    futs = [(f"{prefix}-{i:03d}", p.send(topic, key=f"{prefix}-{i:03d}".encode(),
                                         value=f"value of {prefix}-{i:03d}".encode())) for i in rng]
    p.flush(timeout=20)
    out = {}
    for key, f in futs:
        md = f.get(timeout=1)
        out[(md.partition, md.offset)] = key
    log(f"KafkaProducer inferred api_version {p.config['api_version']}; sent {len(out)}")
    p.close(timeout=5)
    return out


def consume(name):
    """A member of G with the defaults (auto_offset_reset='latest', auto-commit every 5 s)."""
    return KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, client_id=name)


got = []


def poll(cons, name):
    for tp, msgs in cons.poll(timeout_ms=100).items():
        for m in msgs:
            if m.value != b"value of " + m.key:
                c.fail(f"{name}: value {m.value!r} for key {m.key!r}")
            got.append((m.partition, m.offset, m.key.decode()))


def join(cons, name):
    def ready():
        poll(cons, name)
        return cons.assignment() == ALL
    wait_until(ready, f"{name} to own all {PARTITIONS} partitions", deadline_s=20, interval_s=0)
    # position() resolves the reset offset ('latest') now, before anything is produced.
    return {tp.partition: cons.position(tp) for tp in ALL}


# 2. first member, then 100 messages
c1 = consume("debkp-1")
try:
    pos = join(c1, "debkp-1")
    log(f"debkp-1 owns all partitions, positions {pos}; inferred api_version {c1.config['api_version']}")
except TimeoutError as exc:
    c.fail(str(exc))
    c.finish()
sent = produce("m", range(100))
end = time.monotonic() + 20
while len(got) < len(sent) and time.monotonic() < end:
    poll(c1, "debkp-1")
settle = time.monotonic() + 0.5
while time.monotonic() < settle:
    poll(c1, "debkp-1")
c.equal(sorted(got), sorted((p, o, k) for (p, o), k in sent.items()), "debkp-1: messages read")
ends = {p: 1 + max([o for (pp, o) in sent if pp == p], default=-1) for p in range(PARTITIONS)}
try:
    c1.commit()
    for tp in sorted(ALL):
        c.equal(c1.committed(tp), ends[tp.partition], f"committed(p{tp.partition}) after commit()")
except Exception as exc:  # noqa: BLE001
    c.fail(f"commit()/committed() raised {type(exc).__name__}: {exc}")
c1.close()

# 3. five more, a second member of the group reads exactly those
more = produce("n", range(100, 105))
got.clear()
c2 = consume("debkp-2")
try:
    join(c2, "debkp-2")
except TimeoutError as exc:
    c.fail(str(exc))
end = time.monotonic() + 15
while len(got) < len(more) and time.monotonic() < end:
    poll(c2, "debkp-2")
settle = time.monotonic() + 0.5
while time.monotonic() < settle:
    poll(c2, "debkp-2")
old = [k for _, _, k in got if k.startswith("m-")]
c.check(not old, f"debkp-2: {len(old)} messages of the first member delivered again (commits lost?)")
c.equal(sorted(got), sorted((p, o, k) for (p, o), k in more.items()), "debkp-2: exactly the 5 new messages")
c2.close()
try:
    admin.delete_topics([topic])
except Exception as exc:  # noqa: BLE001
    log(f"note: delete_topics raised {type(exc).__name__}: {exc}")
admin.close()
log(f"took {time.monotonic() - t0:.1f}s")
c.finish()
