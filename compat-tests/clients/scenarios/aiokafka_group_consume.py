"""aiokafka: AIOKafkaConsumer(group_id=...) consumes as a group and resumes after commits.

  1. 3-partition topic, 90 messages. Two AIOKafkaConsumers of one group (session 6 s, manual
     commit() after every getmany) run concurrently: the first reads everything alone, the
     second joins, their assignments split the 3 partitions (disjoint, non-empty); every
     message read exactly once.
  2. Both stop; 30 more messages; the first commits were at the end, so a new consumer of the
     group reads exactly the 30 new messages. It commits p0 at end-5 with metadata
     ({tp: (offset, metadata)}); committed(p0) and AdminClient.list_consumer_group_offsets
     (metadata) show it; a third consumer reads exactly the last 5 messages of p0.
"""
import asyncio
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Checks, bootstrap, ck_admin, ck_create_topics, ck_produce, log,  # noqa: E402
                    unique_topic)
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402

PARTITIONS = 3
bs = bootstrap()
c = Checks("aiokafka group consumer")
topic = unique_topic("aiokafka-group")
group = f"compat-aio-{uuid.uuid4().hex[:8]}"
ck_create_topics(ck_admin(bs), {topic: PARTITIONS})
ALL = {TopicPartition(topic, p) for p in range(PARTITIONS)}
produced = {}


def produce(prefix, n):
    out = {}
    for key, _, part, off in ck_produce(bs, topic, [(f"{prefix}-{i}".encode(), b"v", i % PARTITIONS)
                                                    for i in range(n)]):
        out[(part, off)] = key.decode()
    produced.update(out)
    return out


def consumer(name):
    return AIOKafkaConsumer(topic, bootstrap_servers=bs, group_id=group, client_id=name,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            session_timeout_ms=6000, heartbeat_interval_ms=1000,
                            max_poll_interval_ms=20000, fetch_max_wait_ms=100)


async def run(cons, got, stop, commit=True):
    while not stop.is_set():
        batch = await cons.getmany(timeout_ms=100)
        for msgs in batch.values():
            got.extend((m.partition, m.offset, m.key.decode()) for m in msgs)
        if batch and commit:
            try:
                await cons.commit()
            except Exception as exc:  # noqa: BLE001
                log(f"note: commit failed: {exc}")


async def wait_for(pred, deadline_s):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


async def main():
    first = produce("a", 90)
    got1, got2 = [], []
    stop = asyncio.Event()
    a1 = consumer("aio-1")
    await a1.start()
    t1 = asyncio.create_task(run(a1, got1, stop))
    c.check(await wait_for(lambda: a1.assignment() == ALL and len(got1) >= 90, 20),
            f"aio-1 alone: assignment {a1.assignment()}, {len(got1)} messages")
    a2 = consumer("aio-2")
    await a2.start()
    t2 = asyncio.create_task(run(a2, got2, stop))
    ok = await wait_for(lambda: a1.assignment() and a2.assignment() and
                        not (a1.assignment() & a2.assignment()) and
                        (a1.assignment() | a2.assignment()) == ALL, 30)
    c.check(ok, f"two members did not split the partitions within 30 s: "
            f"{sorted(tp.partition for tp in a1.assignment())} / "
            f"{sorted(tp.partition for tp in a2.assignment())}")
    log(f"two members: {sorted(tp.partition for tp in a1.assignment())} / "
        f"{sorted(tp.partition for tp in a2.assignment())}")
    stop.set()
    await asyncio.gather(t1, t2)
    both = got1 + got2
    c.equal(sorted(both), sorted((p, o, k) for (p, o), k in first.items()),
            "two members: every message exactly once")
    await a1.stop()
    await a2.stop()

    second = produce("b", 30)
    got3 = []
    stop = asyncio.Event()
    a3 = consumer("aio-3")
    await a3.start()
    t3 = asyncio.create_task(run(a3, got3, stop, commit=False))
    await wait_for(lambda: len(got3) >= 30, 20)
    await asyncio.sleep(0.5)  # bounded: extra (wrong) deliveries would show up here
    stop.set()
    await t3
    c.equal(sorted(got3), sorted((p, o, k) for (p, o), k in second.items()),
            "new member: exactly the messages after the committed offsets")
    ends = {p: max(o for (pp, o) in produced if pp == p) + 1 for p in range(PARTITIONS)}
    await a3.commit({TopicPartition(topic, p): (ends[p] - (5 if p == 0 else 0),
                                                "aio meta" if p == 0 else "")
                     for p in range(PARTITIONS)})
    c.equal(await a3.committed(TopicPartition(topic, 0)), ends[0] - 5, "committed(p0)")
    await a3.stop()
    # Read back with kafka-python's admin client: confluent-kafka 2.16.1's
    # list_consumer_group_offsets was seen returning metadata with trailing garbage bytes
    # (UnicodeDecodeError) although the OffsetFetch response on the wire was right.
    from kafka.admin import KafkaAdminClient
    kpa = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=10000)
    listed = kpa.list_group_offsets(group)
    kpa.close()
    om = listed.get(group, listed).get(TopicPartition(topic, 0)) if isinstance(listed, dict) else None
    c.equal((om.offset, om.metadata) if om else None, (ends[0] - 5, "aio meta"),
            "p0 offset and metadata (kafka-python list_group_offsets)")

    got4 = []
    stop = asyncio.Event()
    a4 = consumer("aio-4")
    await a4.start()
    t4 = asyncio.create_task(run(a4, got4, stop, commit=False))
    await wait_for(lambda: len(got4) >= 5, 20)
    await asyncio.sleep(0.5)
    stop.set()
    await t4
    c.equal(sorted(got4), sorted((p, o, k) for (p, o), k in produced.items()
                                 if p == 0 and o >= ends[0] - 5), "third member: last 5 of p0")
    await a4.stop()


asyncio.run(main())
c.finish()
