"""kcat -G (librdkafka's balanced consumer): group consumption resumes after committed offsets.

  1. 120 keyed messages on a 3-partition topic. `kcat -G GROUP topic -e` (auto.offset.reset =
     earliest, default auto-commit) reads until every assigned partition is at its end and
     exits; it must print every message exactly once, at the partition/offset it was produced
     at. On exit librdkafka commits the offsets it consumed.
  2. AdminClient.list_consumer_group_offsets shows the group's committed offset = end of log
     for every partition.
  3. 60 more messages; a second `kcat -G GROUP topic -e` prints exactly those 60, nothing of the
     first 120.
  4. Two kcat -G processes of another group run at the same time until 300 messages are
     consumed between them: together they print each message exactly once (the group split
     the partitions; neither exits before the other joined, so both had partitions).
"""
import os
import selectors
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Checks, bootstrap, ck_admin, ck_create_topics, ck_produce, log,  # noqa: E402
                    unique_topic)
from confluent_kafka import ConsumerGroupTopicPartitions  # noqa: E402

PARTITIONS = 3
bs = bootstrap()
c = Checks("kcat -G balanced consumer")
topic = unique_topic("kcat-group")
group = f"compat-kcat-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
FMT = "%p|%o|%k\\n"
KCAT_X = ["-X", "auto.offset.reset=earliest", "-X", "fetch.wait.max.ms=100",
          "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000"]


def produce(prefix, n):
    out = {}
    for key, _, part, off in ck_produce(bs, topic, [(f"{prefix}-{i}".encode(), b"v", None)
                                                    for i in range(n)]):
        out[(part, off)] = key.decode()
    return out


def parse(stdout):
    rows = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        p, o, k = line.split("|", 2)
        rows.append((int(p), int(o), k))
    return rows


def kcat_group(grp, timeout=60):
    res = subprocess.run(["kcat", "-b", bs, "-G", grp, "-e", "-q", "-f", FMT] + KCAT_X + [topic],
                         capture_output=True, timeout=timeout)
    err = res.stderr.decode("utf-8", "replace")
    c.equal(res.returncode, 0, f"kcat -G {grp} exit status (stderr tail {err[-400:]!r})")
    return parse(res.stdout)


first = produce("a", 120)
rows = kcat_group(group)
c.equal(sorted(rows), sorted((p, o, k) for (p, o), k in first.items()),
        "first kcat -G run: (partition, offset, key) of every message, once")

ends = {}
for (p, o) in first:
    ends[p] = max(ends.get(p, 0), o + 1)
admin = ck_admin(bs)
try:
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                            request_timeout=15)[group].result(20)
    committed = {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic}
except Exception as exc:  # noqa: BLE001
    committed = f"{type(exc).__name__}: {exc}"
c.equal(committed, {p: ends.get(p, 0) for p in range(PARTITIONS) if p in ends},
        "committed offsets after the first run (list_consumer_group_offsets)")

second = produce("b", 60)
rows = kcat_group(group)
c.equal(sorted(rows), sorted((p, o, k) for (p, o), k in second.items()),
        "second kcat -G run of the same group: only the 60 new messages")

# 4. Two members at once (a fresh group): they run until killed; wait (AdminClient) until both
# own partitions, then produce and collect their output until every message showed up.
group2 = f"compat-kcat2-{uuid.uuid4().hex[:8]}"
procs = [subprocess.Popen(["kcat", "-b", bs, "-G", group2, "-q", "-u", "-f", FMT] + KCAT_X + [topic],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
admin_ok = False
end = time.monotonic() + 30
desc = None
while time.monotonic() < end:
    try:
        desc = admin.describe_consumer_groups([group2], request_timeout=10)[group2].result(15)
        if len(desc.members) == 2 and str(desc.state).endswith("STABLE") and \
                all(m.assignment.topic_partitions for m in desc.members):
            admin_ok = True
            break
    except Exception:  # noqa: BLE001 - group not there yet
        pass
    time.sleep(0.2)
c.check(admin_ok, f"two kcat -G members did not form a stable group with partitions for both "
        f"within 30 s: {desc}")
log(f"two kcat -G members stable: {[sorted(tp.partition for tp in m.assignment.topic_partitions) for m in desc.members] if admin_ok else None}")
third = produce("c", 120)
everything = {**first, **second, **third}
deadline = time.monotonic() + 20
outs = [b"", b""]
sel = selectors.DefaultSelector()
for i, p in enumerate(procs):
    os.set_blocking(p.stdout.fileno(), False)
    sel.register(p.stdout, selectors.EVENT_READ, i)
while time.monotonic() < deadline and sum(o.count(b"\n") for o in outs) < len(everything):
    for key, _ in sel.select(timeout=0.2):
        chunk = key.fileobj.read()
        if chunk:
            outs[key.data] += chunk
for p in procs:
    p.terminate()  # SIGTERM: kcat closes the consumer (LeaveGroup + commit)
for i, p in enumerate(procs):
    try:
        rest, _ = p.communicate(timeout=15)
        outs[i] += rest or b""
    except subprocess.TimeoutExpired:
        p.kill()
        c.fail(f"kcat -G member {i} did not exit within 15 s of SIGTERM")
rows = parse(outs[0]) + parse(outs[1])
c.equal(sorted(rows), sorted((p, o, k) for (p, o), k in everything.items()),
        "two concurrent kcat -G members: every message once between them")
counts = [o.count(b"\n") for o in outs]
c.check(all(counts), f"each of the two members consumed something: {counts}")
log(f"two members consumed {counts} messages")
c.finish()
