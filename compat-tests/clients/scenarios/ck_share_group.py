"""confluent-kafka ShareConsumer (KIP-932 share groups): one partition read by several consumers.

All through librdkafka's share consumer (ShareGroupHeartbeat, ShareFetch, ShareAcknowledge) and
the AdminClient (group configs, resource type GROUP):

  1. Three consumers of one group (implicit acknowledgement) share a 1-partition topic: every
     one of 300 records is delivered exactly once, and each consumer gets some of them.
  2. Explicit acknowledgement: records a consumer RELEASEs come back (delivery count 2), records
     it REJECTs never do, records it ACCEPTs never do.
  3. A consumer that holds records past the group's share.record.lock.duration.ms (2 s) without
     acknowledging loses them to another consumer.
  4. share.delivery.count.limit=2: a record released twice is archived, never delivered again.
"""
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, ck_produce, log, unique_topic  # noqa: E402

from confluent_kafka import ShareConsumer  # noqa: E402
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType  # noqa: E402

ACCEPT, RELEASE, REJECT = 1, 2, 3

bs = bootstrap()
c = Checks("confluent-kafka ShareConsumer (KIP-932): sharing, release, reject, lock timeout, delivery limit")
admin = ck_admin(bs)


def group_with(**configs):
    """A new share group id with these group configs (and share.auto.offset.reset=earliest)."""
    group = f"compat-share-{uuid.uuid4().hex[:8]}"
    entries = [ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)]
    entries += [ConfigEntry(k.replace("_", "."), str(v), incremental_operation=AlterConfigOpType.SET)
                for k, v in configs.items()]
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
    admin.incremental_alter_configs([res])[res].result(timeout=10)
    return group


def consumer(group, topic, explicit=False, max_records=10):
    conf = {"bootstrap.servers": bs, "group.id": group, "max.poll.records": max_records}
    if explicit:
        conf["share.acknowledgement.mode"] = "explicit"
    s = ShareConsumer(conf)
    s.subscribe([topic])
    return s


def records(msgs):
    out = []
    for m in msgs or []:
        if m.error():
            log(f"note: poll error {m.error()}")
            continue
        out.append(m)
    return out


def poll_until(s, want, deadline_s=15):
    """Polls until `want` records came (or the deadline); returns them."""
    got = []
    end = time.monotonic() + deadline_s
    while len(got) < want and time.monotonic() < end:
        got += records(s.poll(0.5))
    return got


# 1. Three consumers, one partition, 300 records: each record once, everyone gets some.
topic = unique_topic("ck-share")
ck_create_topics(admin, {topic: 1})
group = group_with()
TOTAL = 300
seen = {}  # offset -> consumer name
lock = threading.Lock()
produced = threading.Event()
errors = []


def run(name):
    s = consumer(group, topic)
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            for m in records(s.poll(0.2)):
                with lock:
                    if m.offset() in seen:
                        errors.append(f"offset {m.offset()} went to {seen[m.offset()]} and to {name}")
                    seen.setdefault(m.offset(), name)
            with lock:
                if produced.is_set() and len(seen) >= TOTAL:
                    break
    finally:
        # Implicit mode accepts a poll's records on the next poll or commit; close alone does
        # not (librdkafka 2.16), and a closed session releases what it holds.
        s.commit_sync()
        s.close()


threads = [threading.Thread(target=run, args=(n,)) for n in "ABC"]
t0 = time.monotonic()
for t in threads:
    t.start()
# Let all three join and open their share sessions before there is anything to read.
time.sleep(2)
ck_produce(bs, topic, [(None, f"v{i}".encode(), 0) for i in range(TOTAL)])
produced.set()
for t in threads:
    t.join()
per = {n: sum(1 for v in seen.values() if v == n) for n in "ABC"}
c.check(not errors, f"records delivered twice: {errors[:5]}")
c.equal(sorted(seen), list(range(TOTAL)), "offsets delivered to the group")
c.check(all(per[n] > 0 for n in "ABC"), f"every consumer should get records of the shared partition: {per}")
log(f"1. {TOTAL} records over 3 consumers of one partition: {per} ({time.monotonic() - t0:.1f}s)")

# 2. Explicit acknowledgement: RELEASE comes back, REJECT and ACCEPT do not.
topic2 = unique_topic("ck-share-ack")
ck_create_topics(admin, {topic2: 1})
group2 = group_with()
ck_produce(bs, topic2, [(None, f"r{i}".encode(), 0) for i in range(6)])
a = consumer(group2, topic2, explicit=True, max_records=6)
first = poll_until(a, 6)
c.equal([m.offset() for m in first], list(range(6)), "first delivery of 6 records")
c.check(all(m.delivery_count() == 1 for m in first), "first delivery count 1")
kinds = {0: ACCEPT, 1: RELEASE, 2: REJECT, 3: RELEASE, 4: ACCEPT, 5: REJECT}
for m in first:
    a.acknowledge(m, kinds[m.offset()])
again = poll_until(a, 2, deadline_s=8)
c.equal(sorted((m.offset(), m.delivery_count()) for m in again), [(1, 2), (3, 2)],
        "released records come back with delivery count 2, rejected and accepted ones do not")
for m in again:
    a.acknowledge(m, ACCEPT)
a.commit_sync()
nothing = records(a.poll(1.0))
c.equal([m.offset() for m in nothing], [], "nothing left after everything was accepted or rejected")
a.close()
log("2. explicit ACCEPT/RELEASE/REJECT as KIP-932 says")

# 3. An acquisition lock that runs out: the records go to another consumer.
topic3 = unique_topic("ck-share-lock")
ck_create_topics(admin, {topic3: 1})
group3 = group_with(share_record_lock_duration_ms=2000)
ck_produce(bs, topic3, [(None, f"l{i}".encode(), 0) for i in range(4)])
holder = consumer(group3, topic3, explicit=True, max_records=4)
held = poll_until(holder, 4)
c.equal([m.offset() for m in held], [0, 1, 2, 3], "the holder acquired all 4 records")
t_held = time.monotonic()
other = consumer(group3, topic3)
taken = poll_until(other, 4, deadline_s=15)
waited = time.monotonic() - t_held
c.equal(sorted((m.offset(), m.delivery_count()) for m in taken), [(o, 2) for o in range(4)],
        "records whose lock ran out are delivered to the other consumer, second delivery")
c.check(waited >= 1.5, f"the other consumer got them {waited:.1f}s after the holder, before its 2 s lock ran out")
other.close()
holder.close()
log(f"3. records held past the 2 s lock went to the other consumer after {waited:.1f}s")

# 4. share.delivery.count.limit=2: released twice, then archived.
topic4 = unique_topic("ck-share-limit")
ck_create_topics(admin, {topic4: 1})
group4 = group_with(share_delivery_count_limit=2)
ck_produce(bs, topic4, [(None, b"poison", 0), (None, b"fine", 0)])
r = consumer(group4, topic4, explicit=True, max_records=2)
deliveries = []
end = time.monotonic() + 15
while time.monotonic() < end:
    batch = records(r.poll(0.5))
    for m in batch:
        deliveries.append((m.offset(), m.delivery_count()))
        r.acknowledge(m, RELEASE if m.value() == b"poison" else ACCEPT)
    if batch:
        r.commit_sync()
    elif any(o == 0 and d == 2 for o, d in deliveries):
        break
tail = records(r.poll(1.5))
deliveries += [(m.offset(), m.delivery_count()) for m in tail]
c.equal(sorted(deliveries), [(0, 1), (0, 2), (1, 1)],
        "the released record is delivered twice (the limit), then archived; the other once")
r.close()
log("4. a record released as often as share.delivery.count.limit allows is archived")
c.finish()
