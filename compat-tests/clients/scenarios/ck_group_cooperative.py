"""confluent-kafka cooperative-sticky (KIP-429 incremental rebalancing).

Three members (lib/ck_member.py processes, partition.assignment.strategy=cooperative-sticky)
join a 6-partition topic one by one. After each join:
  - the assignments cover all 6 partitions exactly once and are balanced (6 / 3+3 / 2+2+2);
  - existing members only lose partitions (incremental revoke of just those), never all of
    them at once, and keep the rest without a revoke;
  - the newcomer gets its partitions through incremental assign callbacks.
Messages produced before and between the joins are each consumed exactly once (commit after
every message, so a partition that moves is resumed at the committed offset).
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Abort, Checks, CkMember, bootstrap, ck_admin, ck_create_topics,  # noqa: E402
                    ck_produce, log, union_check, unique_topic)

PARTITIONS = 6
bs = bootstrap()
c = Checks("confluent-kafka cooperative-sticky")
topic = unique_topic("ck-group-coop")
group = f"compat-ck-coop-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
ALL = {(topic, p) for p in range(PARTITIONS)}
conf = {"partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 15000, "fetch.wait.max.ms": 100}
produced = {}
members = []


def produce(prefix, n=60):
    for key, _, part, off in ck_produce(bs, topic, [(f"{prefix}-{i}".encode(), b"v", i % PARTITIONS)
                                                    for i in range(n)]):
        produced[key.decode()] = (part, off)


def keys():
    out = []
    for m in members:
        out += [k for _, _, _, k, _ in m.consumed()]
    return out


def wait_consumed(what):
    end = time.monotonic() + 20
    while time.monotonic() < end and not set(produced) <= set(keys()):
        time.sleep(0.05)
    missing = sorted(set(produced) - set(keys()))
    c.check(not missing, f"{what}: {len(missing)} messages not consumed in 20 s: {missing[:5]}")


def balanced():
    sizes = sorted(len(m.assignment()) for m in members)
    owned = [tp for m in members for tp in m.assignment()]
    return len(owned) == PARTITIONS and set(owned) == ALL and sizes[-1] - sizes[0] <= 1


for i, name in enumerate(("C1", "C2", "C3")):
    produce(f"before-{name}")
    snapshot = {m.name: (m.assignment(), len(m.events("revoke")), len(m.events("assign")))
                for m in members}
    new = CkMember(name, bs, group, [topic], conf, commit_every=1)
    members.append(new)
    try:
        new.wait(lambda m: bool(m.assignment()) and balanced(),
                 f"{len(members)} members balanced over 6 partitions", 30)
    except (TimeoutError, Abort) as exc:
        c.fail(f"after {name} joined: {exc}; assignments "
               f"{ {m.name: m.partitions() for m in members} }")
        break
    time.sleep(1.0)  # bounded: let any further (unexpected) rebalance round show up
    union_check(c, members, ALL, f"after {name} joined")
    log(f"after {name} joined: { {m.name: m.partitions() for m in members} }")
    for m in members[:-1]:
        before, n_rev, n_asg = snapshot[m.name]
        revokes = m.events("revoke")[n_rev:]
        revoked = {tuple(p) for e in revokes for p in e["parts"]}
        kept = before - revoked
        c.check(kept <= m.assignment(), f"{m.name} lost {sorted(kept - m.assignment())} without "
                "a revoke callback")
        c.check(all(len(e["parts"]) < len(before) for e in revokes),
                f"{m.name}: a revoke callback took all its partitions {sorted(before)} "
                f"(eager, not incremental): {[e['parts'] for e in revokes]}")
        c.check(revoked == before - m.assignment(), f"{m.name}: revoked {sorted(revoked)}, but "
                f"lost {sorted(before - m.assignment())}")
    assigned = {tuple(p) for e in new.events("assign") for p in e["parts"]}
    c.check(assigned == new.assignment() and new.assignment(),
            f"{name}: assign callbacks gave {sorted(assigned)}, assignment is {new.partitions()}")
    wait_consumed(f"after {name} joined")

produce("end")
wait_consumed("at the end")
ks = keys()
dups = sorted({k for k in ks if ks.count(k) > 1})
c.check(not dups, f"{len(dups)} messages consumed twice: {dups[:6]}")
c.equal(sorted(len(m.assignment()) for m in members), [2, 2, 2], "final partitions per member")
for m in members:
    for p in m.problems()[:2]:
        log(f"note: {p}")
    m.close()
c.finish()
