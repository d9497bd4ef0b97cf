"""A confluent-kafka member and a kafka-python member in one group, both with "range".

librdkafka (partition.assignment.strategy=range, lib/ck_member.py process) and kafka-python
(RangePartitionAssignor, polled in a thread) subscribe to a 4-partition topic in one group.
Whichever is elected leader runs its own range assignor over both members' subscriptions; the
result must be the range split: each owns 2 contiguous partitions ({0,1} and {2,3}), together
all 4 once. 80 messages produced before and 40 after the split are each consumed exactly once
(both commit after every message/poll).
"""
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Abort, Checks, CkMember, bootstrap, ck_admin, ck_create_topics,  # noqa: E402
                    ck_produce, log, unique_topic)
from kafka import KafkaConsumer  # noqa: E402
from kafka.coordinator.assignors.range import RangePartitionAssignor  # noqa: E402

PARTITIONS = 4
bs = bootstrap()
c = Checks("mixed group: confluent-kafka + kafka-python, range")
topic = unique_topic("mixed-range")
group = f"compat-mixed-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
produced = {}


def produce(prefix, n):
    for key, _, part, off in ck_produce(bs, topic, [(f"{prefix}-{i}".encode(), b"v", i % PARTITIONS)
                                                    for i in range(n)]):
        produced[key.decode()] = (part, off)


produce("a", 80)
ck = CkMember("ck", bs, group, [topic], {"partition.assignment.strategy": "range",
                                         "session.timeout.ms": 6000,
                                         "heartbeat.interval.ms": 1000,
                                         "fetch.wait.max.ms": 100}, commit_every=1)
try:
    ck.wait(lambda m: len(m.assignment()) == PARTITIONS, "ck alone owns all partitions", 20)
except (TimeoutError, Abort) as exc:
    c.fail(str(exc))
kp_got = []
kp_assignment = set()
stop = threading.Event()
kp = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, client_id="kp",
                   partition_assignment_strategy=[RangePartitionAssignor],
                   enable_auto_commit=False, auto_offset_reset="earliest",
                   session_timeout_ms=6000, heartbeat_interval_ms=1000,
                   max_poll_interval_ms=20000, fetch_max_wait_ms=100)


def run_kp():
    global kp_assignment
    while not stop.is_set():
        batch = kp.poll(timeout_ms=100)
        for msgs in batch.values():
            kp_got.extend(m.key.decode() for m in msgs)
        if batch:
            try:
                kp.commit()
            except Exception as exc:  # noqa: BLE001
                log(f"note: kafka-python commit failed: {exc}")
        kp_assignment = {(tp.topic, tp.partition) for tp in kp.assignment()}


t = threading.Thread(target=run_kp, daemon=True)
t.start()


def split():
    a, b = ck.assignment(), kp_assignment
    return a and b and not (a & b) and len(a | b) == PARTITIONS


try:
    ck.wait(lambda m: split(), "ck and kafka-python split the partitions", 30)
except (TimeoutError, Abort) as exc:
    c.fail(f"{exc}: ck {ck.partitions()}, kafka-python {sorted(p for _, p in kp_assignment)}")
time.sleep(1.0)  # bounded: a further (wrong) rebalance would show up here
parts = sorted([ck.partitions(), sorted(p for _, p in kp_assignment)])
log(f"assignments: ck {ck.partitions()}, kafka-python {sorted(p for _, p in kp_assignment)}")
c.equal(parts, [[0, 1], [2, 3]], "range split of 4 partitions over 2 members")
produce("b", 40)


def all_keys():
    return [k for _, _, _, k, _ in ck.consumed()] + list(kp_got)


end = time.monotonic() + 20
while time.monotonic() < end and not set(produced) <= set(all_keys()):
    time.sleep(0.05)
stop.set()
t.join(10)
keys = all_keys()
missing = sorted(set(produced) - set(keys))
dups = sorted({k for k in keys if keys.count(k) > 1})
c.check(not missing, f"{len(missing)} messages never consumed: {missing[:6]}")
c.check(not dups, f"{len(dups)} messages consumed twice: {dups[:6]}")
c.check(kp_got and ck.consumed(), f"both consumed: ck {len(ck.consumed())}, kp {len(kp_got)}")
kp.close()
ck.close()
c.finish()
