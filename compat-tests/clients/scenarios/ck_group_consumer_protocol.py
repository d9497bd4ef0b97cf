"""confluent-kafka with group.protocol=consumer (KIP-848): three members share a 6-partition topic.

Members A, B and C (lib/ck_member.py processes, `subscribe()`, group.protocol=consumer, so the
broker assigns partitions with ConsumerGroupHeartbeat; manual commit(asynchronous=False) after
every message). The session timeout and heartbeat interval are the broker's
(group.consumer.session.timeout.ms / group.consumer.heartbeat.interval.ms; run.sh sets 10 s and
1 s). Keyed messages (explicit partition i mod 6) are produced in batches.

  1. A, B, C join: once stable each owns exactly 2 partitions, together all 6 once.
  2. B closes (leaves with member epoch -1): A and C own 3 partitions each.
  3. C is SIGKILLed once everything it consumed is committed: A owns all 6 after the broker's
     session timeout fenced C.
  4. A closes; a new member D of the same group reads only what was produced since: the
     committed offsets are honoured by a restart of the group.
  5. Every produced message was consumed exactly once, at the partition/offset it was produced.
  6. Regex subscription (KIP-848 SubscribedTopicRegex, resolved by the broker): a member of
     another group subscribes to `^<prefix>-.*` (librdkafka treats a leading `^` as a regex). It
     gets and reads both matching topics, then a matching topic created after it joined, and
     never the topic that only shares part of the prefix.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Abort, Checks, CkMember, bootstrap, ck_admin, ck_create_topics,  # noqa: E402
                    ck_produce, log, union_check, unique_topic)

PARTITIONS = 6
PER_BATCH = 60
SESSION_S = int(os.environ.get("GREGOR_CONSUMER_SESSION_S", "10"))

bs = bootstrap()
c = Checks("confluent-kafka group.protocol=consumer (KIP-848): leave, crash, restart, regex")
topic = unique_topic("ck-group-848")
group = f"compat-ck-848-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
ALL = {(topic, p) for p in range(PARTITIONS)}
produced = {}  # key -> (partition, offset)
conf = {"group.protocol": "consumer", "fetch.wait.max.ms": 100}
members = {}


def produce_batch(n):
    msgs = [(f"k{n}-{i}".encode(), f"v{n}-{i}".encode(), i % PARTITIONS) for i in range(PER_BATCH)]
    for key, _, part, off in ck_produce(bs, topic, msgs):
        produced[key.decode()] = (part, off)


def consumed_keys():
    keys = set()
    for m in members.values():
        keys.update(k for _, _, _, k, _ in m.consumed())
    return keys


def wait_consumed(what, deadline_s=20):
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


def finish_with(msg):
    c.fail(msg)
    for m in members.values():
        for p in m.problems()[:5]:
            log(f"note: {p}")
    CkMember.kill_all()
    c.finish()


produce_batch(1)
t0 = time.monotonic()
for name in "ABC":
    members[name] = CkMember(name, bs, group, [topic], conf, commit_every=1)
try:
    members["A"].wait(lambda _: all(len(m.assignment()) == 2 for m in members.values()) and
                      set().union(*(m.assignment() for m in members.values())) == ALL,
                      "A, B, C own 2 partitions each", deadline_s=30)
except (TimeoutError, RuntimeError, Abort) as exc:
    finish_with(f"group of 3 did not become stable with 2 partitions each: {exc}; {sizes('ABC')}")
log(f"stable with 3 members after {time.monotonic() - t0:.1f}s")
union_check(c, members.values(), ALL, "3 members")
wait_consumed("batch 1")
produce_batch(2)
wait_consumed("batch 2")

# 2. B leaves (ConsumerGroupHeartbeat with member epoch -1).
t_close = time.monotonic()
c.equal(members["B"].close(), 0, "B: exit status after close()")
try:
    members["A"].wait(lambda _: sizes("AC") == {"A": 3, "C": 3} and
                      members["A"].assignment() | members["C"].assignment() == ALL,
                      "A and C own 3 partitions each after B left", deadline_s=15)
    log(f"B left: A and C own 3 each after {time.monotonic() - t_close:.1f}s")
except (TimeoutError, RuntimeError, Abort) as exc:
    c.fail(f"after B left, A and C did not own 3 partitions each: {exc}; now {sizes('AC')}")
union_check(c, [members["A"], members["C"]], ALL, "after B left")
produce_batch(3)
wait_consumed("batch 3 (after B left)")

# 3. C crashes once all it consumed is committed; only the session timeout tells the broker.
def c_committed_all(m):
    done = m.committed()
    return all(done.get((topic, p), -1) > o for _, p, o, _, _ in m.consumed())


try:
    members["C"].wait(c_committed_all, "C committed everything it consumed", deadline_s=10)
except (TimeoutError, RuntimeError, Abort) as exc:
    c.fail(f"C did not commit what it consumed: {exc}")
t_kill = time.monotonic()
members["C"].kill()
try:
    members["A"].wait(lambda m: m.assignment() == ALL, "A owns all 6 partitions after C crashed",
                      deadline_s=SESSION_S + 15)
    took = time.monotonic() - t_kill
    log(f"C killed: A owns all partitions after {took:.1f}s")
    c.check(took >= SESSION_S - 2, f"A took over C's partitions {took:.1f}s after SIGKILL, before "
            f"the {SESSION_S} s session timeout could have fenced C")
except (TimeoutError, RuntimeError, Abort) as exc:
    c.fail(f"after C was SIGKILLed, A did not get all partitions: {exc}; A owns "
           f"{members['A'].partitions()}")
produce_batch(4)
wait_consumed("batch 4 (after C crashed)")
try:
    members["A"].wait(c_committed_all, "A committed everything it consumed", deadline_s=10)
except (TimeoutError, RuntimeError, Abort) as exc:
    c.fail(f"A did not commit what it consumed: {exc}")
c.equal(members["A"].close(), 0, "A: exit status after close()")

# 4. The group restarts: a new member resumes at the committed offsets.
produce_batch(5)
members["D"] = CkMember("D", bs, group, [topic], conf, commit_every=1)
wait_consumed("batch 5 (the group restarted with D)")
time.sleep(1.0)  # anything consumed again would show now
c.equal(members["D"].close(), 0, "D: exit status after close()")
d_keys = sorted({k for _, _, _, k, _ in members["D"].consumed()})
c.equal(d_keys, sorted(k for k in produced if k.startswith("k5-")),
        "D (the restarted group) consumed exactly what was produced after the last commits")

# 5. Exactly once, at the produced positions.
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

# 6. A regex subscription: the broker resolves it against whole topic names.
prefix = unique_topic("ck-848-rx")
rx_a, rx_b, rx_late = f"{prefix}-a", f"{prefix}-b", f"{prefix}-late"
rx_other = f"{prefix}x-a"   # starts with the prefix, but not with "<prefix>-"
ck_create_topics(ck_admin(bs), {rx_a: 2, rx_b: 1, rx_other: 1})


def produce_rx(t, n, partitions):
    ck_produce(bs, t, [(f"{t}-{i}".encode(), b"v", i % partitions) for i in range(n)])
    return {f"{t}-{i}" for i in range(n)}


want_rx = produce_rx(rx_a, 10, 2) | produce_rx(rx_b, 5, 1)
other_keys = produce_rx(rx_other, 5, 1)
rx = CkMember("R", bs, f"compat-ck-848-rx-{uuid.uuid4().hex[:8]}", [f"^{prefix}-.*"], conf, commit_every=1)


def rx_keys(m):
    return {k for _, _, _, k, _ in m.consumed()}


try:
    rx.wait(lambda m: m.assignment() == {(rx_a, 0), (rx_a, 1), (rx_b, 0)} and want_rx <= rx_keys(m),
            "R owns and read both topics matching the regex", deadline_s=30)
    log(f"regex: R owns {sorted(rx.assignment())}")
    ck_create_topics(ck_admin(bs), {rx_late: 1})
    want_rx |= produce_rx(rx_late, 5, 1)
    t_late = time.monotonic()
    rx.wait(lambda m: (rx_late, 0) in m.assignment() and want_rx <= rx_keys(m),
            "R got and read the matching topic created after it joined", deadline_s=30)
    log(f"regex: {rx_late} assigned and read {time.monotonic() - t_late:.1f}s after its creation")
except (TimeoutError, RuntimeError, Abort) as exc:
    c.fail(f"regex subscription: {exc}; R owns {sorted(rx.assignment())}, read "
           f"{len(rx_keys(rx) & want_rx)} of {len(want_rx)}")
c.check(all(t != rx_other for t, _ in rx.assignment()),
        f"regex: {rx_other} (no whole-name match) was assigned: {sorted(rx.assignment())}")
c.check(not (rx_keys(rx) & other_keys), f"regex: R read {rx_other}, which does not match")
c.equal(rx.close(), 0, "R: exit status after close()")
for m in members.values():
    for p in m.problems()[:3]:
        log(f"note: {p}")
c.finish()
