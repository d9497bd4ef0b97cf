"""confluent-kafka: three members of one group share a 6-partition topic; one leaves, one crashes.

Members A, B and C (lib/ck_member.py processes, `subscribe()`, session.timeout.ms=6000,
heartbeat.interval.ms=1000, manual commits with commit(asynchronous=False)): A and B commit
after every message, C after every 4th, so C always has up to 3 processed-but-uncommitted
messages. Keyed messages (key k<batch>-<i>, explicit partition i mod 6) are produced in four
batches, before and while the group consumes.

  1. A, B, C join: once stable each owns exactly 2 partitions, together all 6 once.
  2. B closes (LeaveGroup): within the session timeout A and C own 3 partitions each.
  3. C is SIGKILLed (no LeaveGroup, no more heartbeats): A owns all 6 partitions after C's
     session expired: not before ~session timeout minus one heartbeat interval (the crash is
     only noticed by the session timeout), and not much later than the session timeout.
  4. Every produced message was consumed, at the partition/offset it was produced at.
     A message consumed twice is only allowed when no successful commit covering it had
     happened before its second delivery (the uncommitted window of a member that crashed or
     whose commit failed in a rebalance); the crash may re-deliver at most 3 messages.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Checks, CkMember, bootstrap, ck_admin, ck_create_topics, ck_produce,  # noqa: E402
                    Abort, log, union_check, unique_topic)

PARTITIONS = 6
PER_BATCH = 120
SESSION_MS = 6000
HEARTBEAT_MS = 1000
C_COMMIT_EVERY = 4

bs = bootstrap()
c = Checks("confluent-kafka group rebalance (leave + crash)")
topic = unique_topic("ck-group-rebalance")
group = f"compat-ck-rebalance-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
ALL = {(topic, p) for p in range(PARTITIONS)}

produced = {}  # key -> (partition, offset)


def produce_batch(n):
    msgs = [(f"k{n}-{i}".encode(), f"v{n}-{i}".encode(), i % PARTITIONS) for i in range(PER_BATCH)]
    for key, _, part, off in ck_produce(bs, topic, msgs):
        produced[key.decode()] = (part, off)


conf = {"session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": HEARTBEAT_MS,
        "max.poll.interval.ms": 15000, "fetch.wait.max.ms": 100}
members = {}


def all_consumed():
    keys = set()
    for m in members.values():
        keys.update(k for _, _, _, k, _ in m.consumed())
    return set(produced) <= keys


def wait_consumed(what):
    try:
        deadline = time.monotonic() + 20
        while not all_consumed():
            if time.monotonic() > deadline:
                raise TimeoutError("20 s")
            time.sleep(0.05)
    except TimeoutError:
        got = set()
        for m in members.values():
            got.update(k for _, _, _, k, _ in m.consumed())
        missing = sorted(set(produced) - got)
        c.fail(f"{what}: {len(missing)} produced messages not consumed within 20 s, "
               f"e.g. {missing[:5]}")
        return False
    return True


def sizes(names):
    return {n: members[n].partitions() for n in names}


def finish_with(msg):
    c.fail(msg)
    for m in members.values():
        for p in m.problems()[:5]:
            log(f"note: {p}")
    CkMember.kill_all()
    c.finish()


produce_batch(1)

# 1. three members join; each must end up with 2 partitions
for name, every in (("A", 1), ("B", 1), ("C", C_COMMIT_EVERY)):
    members[name] = CkMember(name, bs, group, [topic], conf, commit_every=every)


def stable_2_each():
    return all(len(m.assignment()) == 2 for m in members.values()) and \
        set().union(*(m.assignment() for m in members.values())) == ALL


t0 = time.monotonic()
try:
    members["A"].wait(lambda _: stable_2_each(), "A, B, C own 2 partitions each", deadline_s=30)
except (TimeoutError, RuntimeError, Abort) as exc:
    finish_with(f"group of 3 did not become stable with 2 partitions each: {exc}; "
                f"assignments {sizes('ABC')}")
log(f"stable with 3 members after {time.monotonic() - t0:.1f}s: {sizes('ABC')}")
union_check(c, members.values(), ALL, "3 members")
wait_consumed("batch 1")
produce_batch(2)
wait_consumed("batch 2")

# 2. B leaves cleanly: A and C take over its partitions (LeaveGroup => no session wait)
b_parts = members["B"].assignment()
t_close = time.monotonic()
c.equal(members["B"].close(), 0, "B: exit status after close()")
try:
    members["A"].wait(lambda _: len(members["A"].assignment()) == 3 and
                      len(members["C"].assignment()) == 3 and
                      members["A"].assignment() | members["C"].assignment() == ALL,
                      "A and C own 3 partitions each after B closed",
                      deadline_s=SESSION_MS / 1000)
    took = time.monotonic() - t_close
    log(f"B closed: A, C own {sizes('AC')} after {took:.1f}s")
except (TimeoutError, RuntimeError, Abort) as exc:
    c.fail(f"after B closed (LeaveGroup), A and C did not own 3 partitions each within the "
           f"session timeout: {exc}; now {sizes('AC')}")
union_check(c, [members["A"], members["C"]], ALL, "after B left")
produce_batch(3)
wait_consumed("batch 3 (after B left)")

# 3. C crashes: only the session timeout can tell the coordinator. First bring C to exactly
# 3 processed-but-uncommitted messages (it commits after every 4th); it then idles in poll().
c_parts = members["C"].assignment()
n_c = len(members["C"].consumed())
extra = (C_COMMIT_EVERY - 1 - n_c % C_COMMIT_EVERY) % C_COMMIT_EVERY
c_part_list = sorted(p for _, p in c_parts)
if extra and c_part_list:
    msgs = [(f"k3b-{i}".encode(), b"v", c_part_list[i % len(c_part_list)]) for i in range(extra)]
    for key, _, part, off in ck_produce(bs, topic, msgs):
        produced[key.decode()] = (part, off)
    wait_consumed("extra messages for C")
commits_before_kill = {}
for m in members.values():
    for tp, off in m.committed().items():
        commits_before_kill[tp[1]] = max(commits_before_kill.get(tp[1], -1), off)
c_uncommitted = sorted((p, o, k) for _, p, o, k, _ in members["C"].consumed()
                       if (topic, p) in c_parts and o >= commits_before_kill.get(p, 0))
log(f"C owns {c_part_list}, processed {len(members['C'].consumed())} messages, uncommitted: "
    f"{[(p, o) for p, o, _ in c_uncommitted]}")
c.equal(len(c_uncommitted), C_COMMIT_EVERY - 1, "C's processed-but-uncommitted messages at the "
        "crash (setup)")
t_kill = time.monotonic()
members["C"].kill()
try:
    members["A"].wait(lambda m: m.assignment() == ALL, "A owns all 6 partitions after C crashed",
                      deadline_s=SESSION_MS / 1000 + 10)
    took = time.monotonic() - t_kill
    log(f"C killed: A owns all partitions after {took:.1f}s")
    lo = (SESSION_MS - HEARTBEAT_MS) / 1000 - 1.0
    hi = SESSION_MS / 1000 + 5.0
    c.check(lo <= took <= hi, f"A took over C's partitions {took:.1f}s after SIGKILL; expected "
            f"between {lo:.0f}s and {hi:.0f}s (session.timeout.ms={SESSION_MS}): the crash must "
            "be detected by the session timeout")
except (TimeoutError, RuntimeError, Abort) as exc:
    c.fail(f"after C was SIGKILLed, A did not get all partitions within session timeout + 10 s: "
           f"{exc}; A owns {members['A'].partitions()}")
produce_batch(4)
wait_consumed("batch 4 (after C crashed)")
c.equal(members["A"].close(), 0, "A: exit status after close()")

# 4. verify every consumption against production and commits
consumptions = []  # (t, member, partition, offset, key)
for name, m in members.items():
    for t_, p, o, k, ts in m.consumed():
        consumptions.append((ts, name, p, o, k))
consumptions.sort()
commits = []  # (t, member, partition, committed offset)
for name, m in members.items():
    for e in m.events("commit"):
        for t_, p, o in e["offsets"]:
            commits.append((e["t"], name, p, o))

seen = {}
for ts, name, p, o, k in consumptions:
    want = produced.get(k)
    if want is None:
        c.fail(f"{name} consumed unknown key {k!r} at p{p}/o{o}")
        continue
    c.equal((p, o), want, f"{name}: position of {k}")
    if k in seen:
        prior = seen[k]
        covering = [(ct, cn, co) for ct, cn, cp, co in commits if cp == p and co > o and ct < ts]
        if covering:
            c.fail(f"{k} (p{p}/o{o}) consumed again by {name} after a successful commit "
                   f"covering it ({covering[0][1]} committed offset {covering[0][2]})")
        seen[k].append(name)
    else:
        seen[k] = [name]
missing = sorted(set(produced) - set(seen))
c.check(not missing, f"{len(missing)} messages never consumed, e.g. {missing[:8]}")
dups = {k: v for k, v in seen.items() if len(v) > 1}
# After the crash A must resume each of C's partitions exactly at the committed offset: the
# uncommitted messages come again (at-least-once), nothing committed comes again, nothing is
# skipped.
for p in c_part_list:
    after = sorted(o for ts, n, pp, o, _ in consumptions if n == "A" and pp == p and ts > t_kill)
    want = commits_before_kill.get(p, 0)
    c.check(after and after[0] == want, f"after C's crash A resumed p{p} at offset "
            f"{after[0] if after else None}, want the committed offset {want}")
redelivered = sorted((p, o, k) for ts, n, p, o, k in consumptions
                     if n == "A" and ts > t_kill and "C" in seen.get(k, []))
c.equal(redelivered, c_uncommitted, "messages C had processed that A got again after the crash "
        "(must be exactly C's uncommitted ones)")
log(f"consumed {len(consumptions)} messages for {len(produced)} produced; duplicates: "
    f"{len(dups)} ({len(redelivered)} from C's uncommitted window at the crash)")
for m in members.values():
    for p in m.problems()[:3]:
        log(f"note: {p}")
c.finish()
