"""kafka-python: KafkaConsumer(group_id=...) consumes as a group and resumes after commits.

  1. 3-partition topic, 90 keyed messages (30 per partition). Two KafkaConsumers of one group
     (subscribe, session_timeout_ms=6000, manual commit() after every poll), each polled in
     its own thread: the first reads all 90 alone, then the second joins and their assignments
     must split the 3 partitions (disjoint, non-empty); every message read exactly once (a
     duplicate is only allowed after a commit that failed because of the rebalance).
  2. The second consumer closes (LeaveGroup): the first gets all 3 partitions, then reads 30
     more messages. It commits p0 at end-5 with OffsetAndMetadata(metadata="kp ü meta"), the
     others at their end; committed(tp, metadata=True) returns exactly that.
  3. A new consumer of the group reads exactly the last 5 messages of p0 and nothing else.
"""
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Checks, bootstrap, ck_admin, ck_create_topics, ck_produce, log,  # noqa: E402
                    unique_topic)
from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from kafka.errors import CommitFailedError, KafkaError  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

PARTITIONS = 3
bs = bootstrap()
c = Checks("kafka-python group consumer")
topic = unique_topic("kp-group")
group = f"compat-kp-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
ALL = {TopicPartition(topic, p) for p in range(PARTITIONS)}


def produce(prefix, n):
    out = {}
    for key, _, part, off in ck_produce(bs, topic, [(f"{prefix}-{i}".encode(), b"v", i % PARTITIONS)
                                                    for i in range(n)]):
        out[(part, off)] = key.decode()
    return out


def consumer(name):
    return KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, client_id=name,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=6000, heartbeat_interval_ms=1000,
                         max_poll_interval_ms=20000, fetch_max_wait_ms=100)


got = []             # (name, partition, offset, key)
commit_failures = []


def poll_once(name, cons, commit=True):
    batch = cons.poll(timeout_ms=100)
    for tp, msgs in batch.items():
        for m in msgs:
            got.append((name, m.partition, m.offset, m.key.decode()))
    if commit and batch:
        try:
            cons.commit()
        except (CommitFailedError, KafkaError) as exc:
            commit_failures.append(f"{name}: {type(exc).__name__}: {exc}")


class Runner:
    """Polls one consumer in its own thread (kafka-python joins a group inside poll(), so two
    members polled in turn from one thread would block each other's rejoin)."""

    def __init__(self, name, cons, commit=True):
        self.name, self.cons, self.commit = name, cons, commit
        self.stop = threading.Event()
        self.assignment = set()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            poll_once(self.name, self.cons, self.commit)
            self.assignment = set(self.cons.assignment())

    def halt(self):
        self.stop.set()
        self.thread.join(10)


first = produce("a", 90)
# kp-2 starts only once kp-1 owns partitions and has read everything: when kp-2's JoinGroup
# arrived right after kp-1's SyncGroup, kafka-python 3.0.12's kp-1 was seen to go silent (no
# heartbeat, fetch or OffsetFetch for over a minute, busy CPU) - see README.
m1 = consumer("kp-1")
r1 = Runner("kp-1", m1)
end = time.monotonic() + 20
while time.monotonic() < end and not (r1.assignment == ALL and len(got) >= len(first)):
    time.sleep(0.05)
m2 = consumer("kp-2")
r2 = Runner("kp-2", m2)
end = time.monotonic() + 30
split = False
while time.monotonic() < end:
    a1, a2 = r1.assignment, r2.assignment
    if a1 and a2 and not (a1 & a2) and (a1 | a2) == ALL:
        split = True
        break
    time.sleep(0.05)
r1.halt()
r2.halt()
c.check(split, f"two members did not split the partitions and read everything within 30 s: "
        f"{sorted(tp.partition for tp in m1.assignment())} / "
        f"{sorted(tp.partition for tp in m2.assignment())}, {len(got)} messages")
log(f"two members: {sorted(tp.partition for tp in m1.assignment())} / "
    f"{sorted(tp.partition for tp in m2.assignment())}")
c.equal(sorted({(p, o, k) for _, p, o, k in got}), sorted((p, o, k) for (p, o), k in first.items()),
        "two members: distinct messages read")
dups = len(got) - len({(p, o) for _, p, o, _ in got})
c.check(dups == 0 or commit_failures, f"{dups} messages read twice without a failed commit")

# 2. m2 leaves: m1 owns everything, reads 30 more, commits p0 at end-5 with metadata
m2.close()
got.clear()
end = time.monotonic() + 15
while time.monotonic() < end and m1.assignment() != ALL:
    poll_once("kp-1", m1)
c.equal(sorted(tp.partition for tp in m1.assignment()), list(range(PARTITIONS)),
        "kp-1 assignment after kp-2 closed")
second = produce("b", 30)
end = time.monotonic() + 20
while time.monotonic() < end and len({(p, o) for _, p, o, _ in got}) < len(second):
    poll_once("kp-1", m1, commit=False)
c.equal(sorted(set((p, o, k) for _, p, o, k in got)),
        sorted((p, o, k) for (p, o), k in second.items()), "kp-1 alone: the 30 new messages")
ends = {p: max(o for (pp, o) in {**first, **second} if pp == p) + 1 for p in range(PARTITIONS)}
offsets = {TopicPartition(topic, p): OffsetAndMetadata(ends[p] - (5 if p == 0 else 0),
                                                       "kp ü meta" if p == 0 else "", -1)
           for p in range(PARTITIONS)}
try:
    m1.commit(offsets)
except Exception as exc:  # noqa: BLE001
    c.fail(f"commit(OffsetAndMetadata) raised {type(exc).__name__}: {exc}")
for tp, om in sorted(offsets.items()):
    got_om = m1.committed(tp, metadata=True)
    c.equal((got_om.offset, got_om.metadata) if got_om else None, (om.offset, om.metadata),
            f"committed(p{tp.partition}, metadata=True)")
m1.close(autocommit=False)

# 3. a new member resumes from the committed offsets
got.clear()
m3 = consumer("kp-3")
want = sorted((p, o, k) for (p, o), k in {**first, **second}.items()
              if p == 0 and o >= ends[0] - 5)
end = time.monotonic() + 20
while time.monotonic() < end and len(got) < len(want):
    poll_once("kp-3", m3, commit=False)
settle = time.monotonic() + 1.0
while time.monotonic() < settle:
    poll_once("kp-3", m3, commit=False)
c.equal(sorted((p, o, k) for _, p, o, k in got), want,
        "new member: exactly the messages after the committed offsets")
m3.close(autocommit=False)
for f in commit_failures[:3]:
    log(f"note: {f}")
c.finish()
