"""confluent-kafka static membership (KIP-345, group.instance.id): a restart keeps the assignment.

Two members S1, S2 (lib/ck_member.py processes) with group.instance.id, session.timeout.ms=
10000, on a 4-partition topic: once stable each owns 2 partitions. Then, for S2 and after it
for S1 (the first joiner, normally the group leader):
  - close() it (librdkafka sends no LeaveGroup for a static member) and start a new process
    with the same group.instance.id well within the session timeout;
  - the new process gets exactly the partitions the old one had;
  - the other member sees no rebalance: no revoke/assign callback, same assignment;
  - messages produced meanwhile are each consumed exactly once (commit after every message),
    the restarted member continuing at the committed offsets.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Abort, Checks, CkMember, bootstrap, ck_admin, ck_create_topics,  # noqa: E402
                    ck_produce, log, unique_topic)

PARTITIONS = 4
bs = bootstrap()
c = Checks("confluent-kafka static membership")
topic = unique_topic("ck-group-static")
group = f"compat-ck-static-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
ALL = {(topic, p) for p in range(PARTITIONS)}
produced = {}


def produce(prefix, n=40):
    for key, _, part, off in ck_produce(bs, topic, [(f"{prefix}-{i}".encode(), b"v", i % PARTITIONS)
                                                    for i in range(n)]):
        produced[key.decode()] = (part, off)


def conf(instance):
    return {"group.instance.id": instance, "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 20000,
            "fetch.wait.max.ms": 100}


all_members = []


def start(instance):
    m = CkMember(instance, bs, group, [topic], conf(instance), commit_every=1)
    all_members.append(m)
    return m


def consumed_keys():
    keys = []
    for m in all_members:
        keys += [k for _, _, _, k, _ in m.consumed()]
    return keys


def wait_all_consumed(what):
    end = time.monotonic() + 20
    while time.monotonic() < end and not set(produced) <= set(consumed_keys()):
        time.sleep(0.05)
    missing = sorted(set(produced) - set(consumed_keys()))
    c.check(not missing, f"{what}: {len(missing)} messages not consumed within 20 s: {missing[:5]}")


produce("a")
members = {"S1": start("S1")}
try:
    members["S1"].wait(lambda m: m.assignment() == ALL, "S1 alone owns everything", 20)
except (TimeoutError, Abort) as exc:
    c.fail(str(exc))
members["S2"] = start("S2")
try:
    members["S2"].wait(lambda m: len(m.assignment()) == 2 and
                       len(members["S1"].assignment()) == 2 and
                       m.assignment() | members["S1"].assignment() == ALL,
                       "S1 and S2 own 2 partitions each", 30)
except (TimeoutError, Abort) as exc:
    c.fail(f"static group did not become stable with 2 partitions each: {exc}")
    CkMember.kill_all()
    c.finish()
wait_all_consumed("before restarts")
log(f"stable: S1 {members['S1'].partitions()}, S2 {members['S2'].partitions()}")

for name, other in (("S2", "S1"), ("S1", "S2")):
    old = members[name]
    before = old.assignment()
    other_cb = len(members[other].events("assign")) + len(members[other].events("revoke"))
    other_parts = members[other].assignment()
    t0 = time.monotonic()
    c.equal(old.close(), 0, f"{name}: exit status of close()")
    produce(f"during-{name}")
    new = start(name)
    members[name] = new
    try:
        new.wait(lambda m: m.assignment() == before, f"restarted {name} owns {sorted(before)}", 9)
        log(f"{name} restarted, same assignment after {time.monotonic() - t0:.1f}s")
    except (TimeoutError, Abort) as exc:
        c.fail(f"restarted static member {name} did not get its old partitions "
               f"{sorted(p for _, p in before)} within 9 s: {exc}; it has {new.partitions()}")
    wait_all_consumed(f"after restarting {name}")
    time.sleep(1.5)  # bounded: give a (wrong) rebalance of the other member time to show up
    cb = len(members[other].events("assign")) + len(members[other].events("revoke"))
    c.equal(cb - other_cb, 0, f"rebalance callbacks of {other} while {name} restarted")
    c.equal(members[other].assignment(), other_parts, f"{other}'s assignment after {name} restarted")

keys = consumed_keys()
dups = sorted({k for k in keys if keys.count(k) > 1})
c.check(not dups, f"{len(dups)} messages consumed twice although every message was committed: "
        f"{dups[:6]}")
for m in list(members.values()):
    m.close()
c.finish()
