"""aiokafka: AIOKafkaProducer(transactional_id=...) commits and aborts, read_committed and
read_uncommitted AIOKafkaConsumers, and send_offsets_to_transaction in a
consume-transform-produce loop.

On a 2-partition topic: txn 1 (`async with producer.transaction()`) commits 10 records;
txn 2 sends 6 records (awaited, so they are in the log) and raises inside the context, which
aborts it; txn 3 sends 4 records and calls abort_transaction(); txn 4 commits 4 records.
A read_committed consumer (assign, from the beginning, up to the end offsets) gets exactly
the 14 committed values in order per partition; a read_uncommitted consumer gets all 24.

Then 12 plain records on a 1-partition input topic are read by a group member
(isolation_level="read_committed", no auto-commit) and each getmany() batch is produced to an
output topic as "T:" + value in one transaction together with send_offsets_to_transaction.
The output (read_committed) is every input transformed exactly once, and committed() on the
input partition is 12.
"""
import asyncio
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, ck_produce, log, unique_topic  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

TIMEOUT_S = 30
bs = bootstrap()
c = Checks("aiokafka transactions")
run_id = uuid.uuid4().hex[:8]
topic = unique_topic("aio-txn")
in_topic = unique_topic("aio-txn-in")
out_topic = unique_topic("aio-txn-out")
ck_create_topics(ck_admin(bs), {topic: 2, in_topic: 1, out_topic: 1})


class Rollback(Exception):
    """Raised inside `producer.transaction()` to make aiokafka abort the transaction."""


async def send_all(prod, tpc, name, n):
    """Sends n values alternating over partitions 0/1 and waits for each; {partition: [values]}."""
    out = {0: [], 1: []}
    for i in range(n):
        v = b"%s-%d" % (name.encode(), i)
        try:
            md = await asyncio.wait_for(prod.send_and_wait(tpc, value=v, partition=i % 2), TIMEOUT_S)
            out[md.partition].append(v)
        except Exception as exc:  # noqa: BLE001
            c.fail(f"{name}: send of {v!r} failed: {type(exc).__name__}: {exc}")
    return out


async def read_all(tpc, partitions, isolation):
    cons = AIOKafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                            isolation_level=isolation, fetch_max_wait_ms=200)
    await asyncio.wait_for(cons.start(), TIMEOUT_S)
    tps = [TopicPartition(tpc, p) for p in partitions]
    cons.assign(tps)
    await cons.seek_to_beginning(*tps)
    ends = await cons.end_offsets(tps)
    got = {p: [] for p in partitions}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:
            positions = {tp: await cons.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            if time.monotonic() >= deadline:
                c.fail(f"{isolation} read of {tpc}: positions {list(positions.values())} did not "
                       f"reach end offsets {[ends[tp] for tp in tps]} within {TIMEOUT_S}s")
                break
            for tp, records in (await cons.getmany(timeout_ms=500)).items():
                got[tp.partition] += [r.value for r in records]
    finally:
        await cons.stop()
    return got, {tp.partition: ends[tp] for tp in tps}


async def commit_abort():
    prod = AIOKafkaProducer(bootstrap_servers=bs, transactional_id=f"compat-aio-txn-{run_id}",
                            request_timeout_ms=15000)
    await asyncio.wait_for(prod.start(), TIMEOUT_S)
    committed = {0: [], 1: []}
    everything = {0: [], 1: []}

    def record(batch, is_committed):
        for p in (0, 1):
            everything[p] += batch[p]
            if is_committed:
                committed[p] += batch[p]
    try:
        async with prod.transaction():
            b1 = await send_all(prod, topic, "c1", 10)
        record(b1, True)

        b2 = None
        try:
            async with prod.transaction():
                b2 = await send_all(prod, topic, "a2", 6)
                raise Rollback()
        except Rollback:
            pass
        record(b2, False)

        await prod.begin_transaction()
        b3 = await send_all(prod, topic, "a3", 4)
        await asyncio.wait_for(prod.abort_transaction(), TIMEOUT_S)
        record(b3, False)

        async with prod.transaction():
            b4 = await send_all(prod, topic, "c4", 4)
        record(b4, True)
    finally:
        await prod.stop()

    rc, rc_ends = await read_all(topic, [0, 1], "read_committed")
    c.equal(rc, committed, "read_committed values per partition")
    ru, ru_ends = await read_all(topic, [0, 1], "read_uncommitted")
    c.equal(ru, everything, "read_uncommitted values per partition")
    for p in (0, 1):
        c.equal(ru_ends[p], len(everything[p]) + 4, f"p{p} end offset (records + 4 markers)")
        c.equal(rc_ends[p], ru_ends[p], f"p{p} read_committed end offset (LSO) = high watermark")


async def consume_transform_produce():
    K = 12
    inputs = ck_produce(bs, in_topic, [(b"k%d" % i, b"in-%d" % i, 0) for i in range(K)])
    group = f"compat-aio-txn-group-{run_id}"
    cons = AIOKafkaConsumer(in_topic, bootstrap_servers=bs, group_id=group,
                            isolation_level="read_committed", enable_auto_commit=False,
                            auto_offset_reset="earliest", fetch_max_wait_ms=200)
    prod = AIOKafkaProducer(bootstrap_servers=bs, transactional_id=f"compat-aio-txn-ctp-{run_id}",
                            request_timeout_ms=15000)
    await asyncio.wait_for(cons.start(), TIMEOUT_S)
    await asyncio.wait_for(prod.start(), TIMEOUT_S)
    processed, batches = [], 0
    tp = TopicPartition(in_topic, 0)
    try:
        deadline = time.monotonic() + 60
        while len(processed) < K:
            if time.monotonic() >= deadline:
                c.fail(f"consume-transform-produce: only {len(processed)} of {K} inputs within 60s")
                break
            batch = await cons.getmany(timeout_ms=500, max_records=5)
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            async with prod.transaction():
                for r in records:
                    await prod.send(out_topic, key=r.key, value=b"T:" + r.value, partition=0)
                    processed.append(r.value)
                await prod.send_offsets_to_transaction({tp: records[-1].offset + 1}, group)
            batches += 1
        log(f"consume-transform-produce: {len(processed)} inputs in {batches} transactions")
        c.equal(processed, [r[1] for r in inputs], "inputs processed in order, each once")
        c.equal(await cons.committed(tp), K, "group's committed offset on the input partition")
    finally:
        await prod.stop()
        await cons.stop()
    out, _ = await read_all(out_topic, [0], "read_committed")
    c.equal(out[0], [b"T:" + r[1] for r in inputs], "output topic (read_committed)")


async def main():
    await commit_abort()
    await consume_transform_produce()


asyncio.run(main())
c.finish()
