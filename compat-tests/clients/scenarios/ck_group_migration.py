"""confluent-kafka: classic and consumer protocol members in one group (KIP-848 online migration).

lib/ck_member.py processes on a 6-partition topic, manual commit(asynchronous=False) after every
message; "classic" members use group.protocol=classic with librdkafka's default (eager) range
assignor, or with --cooperative the cooperative-sticky one (they then report the partitions they
own when they rejoin, and give up only what the broker takes); "consumer" members use
group.protocol=consumer.

  1. Classic members A and B form a classic group: 3 partitions each.
  2. Consumer member C joins: the broker upgrades the group (group.consumer.migration.policy's
     default, bidirectional); A, B and C own 2 partitions each, assigned by the broker, A and B
     still speaking JoinGroup/SyncGroup/Heartbeat. ConsumerGroupDescribe shows the group as a
     consumer group with two classic members.
  3. B leaves (LeaveGroup to a consumer group) and classic member D joins the consumer group:
     A, C and D own 2 each.
  4. C, the last consumer member, leaves: the broker downgrades the group to a classic group,
     which rebalances: A and D own 3 each.
  5. Every produced message was consumed exactly once, at the offset it was produced.

With --kafka-python, D is a kafka-python KafkaConsumer (range assignor, polled in a thread,
commit() after every poll) instead of a librdkafka member: the Java-style classic client in a
consumer group, and in the classic group the downgrade leaves.
"""
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Abort, Checks, CkMember, bootstrap, ck_admin, ck_create_topics,  # noqa: E402
                    ck_produce, log, union_check, unique_topic)
from confluent_kafka import ConsumerGroupType  # noqa: E402

PARTITIONS = 6
PER_BATCH = 60

bs = bootstrap()
c = Checks("confluent-kafka classic + group.protocol=consumer members in one group (upgrade, downgrade)")
topic = unique_topic("ck-group-migration")
group = f"compat-ck-migration-{uuid.uuid4().hex[:8]}"
admin = ck_admin(bs)
ck_create_topics(admin, {topic: PARTITIONS})
ALL = {(topic, p) for p in range(PARTITIONS)}
produced = {}  # key -> (partition, offset)
CLASSIC = {"group.protocol": "classic", "fetch.wait.max.ms": 100, "session.timeout.ms": 10000,
           "heartbeat.interval.ms": 500}
if "--cooperative" in sys.argv:
    CLASSIC["partition.assignment.strategy"] = "cooperative-sticky"
CONSUMER = {"group.protocol": "consumer", "fetch.wait.max.ms": 100}
members = {}


class KpMember:
    """A kafka-python member with the parts of CkMember's interface this scenario uses."""

    def __init__(self, name):
        from kafka import KafkaConsumer
        from kafka.coordinator.assignors.range import RangePartitionAssignor
        self.name = name
        self._got, self._assignment, self._problems = [], set(), []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(
            topic, bootstrap_servers=bs, group_id=group, client_id=name,
            partition_assignment_strategy=[RangePartitionAssignor], enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=10000, heartbeat_interval_ms=500,
            max_poll_interval_ms=30000, fetch_max_wait_ms=100)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            batch = self._consumer.poll(timeout_ms=100)
            with self._lock:
                for msgs in batch.values():
                    self._got.extend((m.topic, m.partition, m.offset, m.key.decode(), time.monotonic())
                                     for m in msgs)
            if batch:
                try:
                    self._consumer.commit()
                except Exception as exc:  # noqa: BLE001 - reported, judged by the checks
                    self._problems.append(f"{self.name}: commit failed: {exc!r}")
            with self._lock:
                self._assignment = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def assignment(self):
        with self._lock:
            return set(self._assignment)

    def consumed(self):
        with self._lock:
            return list(self._got)

    def problems(self):
        return list(self._problems)

    def close(self):
        self._stop.set()
        self._thread.join(20)
        self._consumer.close()
        return 0


def produce_batch(n):
    msgs = [(f"k{n}-{i}".encode(), f"v{n}-{i}".encode(), i % PARTITIONS) for i in range(PER_BATCH)]
    for key, _, part, off in ck_produce(bs, topic, msgs):
        produced[key.decode()] = (part, off)


def consumed_keys():
    keys = set()
    for m in members.values():
        keys.update(k for _, _, _, k, _ in m.consumed())
    return keys


def wait_consumed(what, deadline_s=30):
    end = time.monotonic() + deadline_s
    while not set(produced) <= consumed_keys():
        if time.monotonic() > end:
            missing = sorted(set(produced) - consumed_keys())
            c.fail(f"{what}: {len(missing)} produced messages not consumed within {deadline_s} s, "
                   f"e.g. {missing[:5]}")
            return
        time.sleep(0.05)


def sizes(names):
    return {n: len(members[n].assignment()) for n in names}


def settle(names, each, what, deadline_s=40):
    """Waits until the named members own `each` partitions apiece, all of them once."""
    t = time.monotonic()
    try:
        members[names[0]].wait(
            lambda _: all(len(members[n].assignment()) == each for n in names) and
            set().union(*(members[n].assignment() for n in names)) == ALL,
            what, deadline_s=deadline_s)
        log(f"{what} after {time.monotonic() - t:.1f}s")
    except (TimeoutError, RuntimeError, Abort) as exc:
        c.fail(f"{what}: {exc}; now {sizes(names)}")
        for m in members.values():
            for p in m.problems()[:5]:
                log(f"note: {p}")
        CkMember.kill_all()
        c.finish()
    union_check(c, [members[n] for n in names], ALL, what)


def describe():
    fut = admin.describe_consumer_groups([group], request_timeout=10)[group]
    return fut.result()


t0 = time.monotonic()
produce_batch(1)
members["A"] = CkMember("A", bs, group, [topic], CLASSIC, commit_every=1)
members["B"] = CkMember("B", bs, group, [topic], CLASSIC, commit_every=1)
settle("AB", 3, "1. classic group: A and B own 3 partitions each")
wait_consumed("batch 1")

members["C"] = CkMember("C", bs, group, [topic], CONSUMER, commit_every=1)
settle("ABC", 2, "2. upgraded: A, B (classic) and C (consumer) own 2 partitions each")
produce_batch(2)
wait_consumed("batch 2")
try:
    d = describe()
    c.equal(d.type, ConsumerGroupType.CONSUMER, "2. the group is a consumer group")
    c.equal(len(d.members), 3, "2. three members described")
except Exception as exc:  # noqa: BLE001 - any admin failure is a finding
    c.fail(f"2. describe_consumer_groups: {exc!r}")

c.equal(members["B"].close(), 0, "B: exit status after close()")
if "--kafka-python" in sys.argv:
    members["D"] = KpMember("D")
else:
    members["D"] = CkMember("D", bs, group, [topic], CLASSIC, commit_every=1)
settle("ACD", 2, "3. B left, classic D joined the consumer group: A, C, D own 2 each")
produce_batch(3)
wait_consumed("batch 3")

c.equal(members["C"].close(), 0, "C: exit status after close()")
settle("AD", 3, "4. downgraded after C left: A and D own 3 each")
produce_batch(4)
wait_consumed("batch 4")
try:
    d = describe()
    c.equal(d.type, ConsumerGroupType.CLASSIC, "4. the group is a classic group again")
except Exception as exc:  # noqa: BLE001
    c.fail(f"4. describe_consumer_groups: {exc!r}")
time.sleep(1.0)  # anything consumed again would show now
for name in "AD":
    c.equal(members[name].close(), 0, f"{name}: exit status after close()")

seen = {}
for name, m in members.items():
    for _, p, o, k, _ in m.consumed():
        c.equal((p, o), produced.get(k), f"{name}: position of {k}")
        seen.setdefault(k, []).append(name)
missing = sorted(set(produced) - set(seen))
c.check(not missing, f"{len(missing)} messages never consumed, e.g. {missing[:8]}")
dups = {k: v for k, v in seen.items() if len(v) > 1}
c.check(not dups, f"{len(dups)} messages consumed more than once, e.g. {list(dups.items())[:5]}")
log(f"consumed {sum(len(v) for v in seen.values())} messages for {len(produced)} produced "
    f"in {time.monotonic() - t0:.1f}s")
for m in members.values():
    for p in m.problems()[:3]:
        log(f"note: {p}")
c.finish()
