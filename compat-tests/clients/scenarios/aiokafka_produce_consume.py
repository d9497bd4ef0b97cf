"""aiokafka: AIOKafkaProducer with each codec, AIOKafkaConsumer by assign() (group_id=None).

One 2-partition topic per codec (none, gzip, snappy, lz4, zstd), 150 records each via
send_and_wait-style futures with keys, values, duplicated-name headers and explicit timestamps
on half. The consumer assigns, seeks to the beginning and reads up to the end offsets.
Checks: each record exactly once with its key, value, headers (order kept), timestamp and the
partition/offset the producer was told.
"""
import asyncio
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, unique_topic  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

N = 150
PARTITIONS = 2
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]

bs = bootstrap()
c = Checks("aiokafka produce/consume")
rng = random.Random(99)
base_ts = int(time.time() * 1000) - 600_000
runs = [(codec, unique_topic(f"aio-{codec}")) for codec in CODECS]
ck_create_topics(ck_admin(bs), {t: PARTITIONS for _, t in runs})


def make(i):
    value = None if i % 10 == 3 else bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 5, 700])))
    return {"key": b"a-%d" % i if i % 6 else None, "value": value,
            "headers": [("seq", str(i).encode()), ("dup", b"x"), ("dup", b"y")],
            "partition": i % PARTITIONS if i % 5 == 0 else None,
            "ts": base_ts + i if i % 2 == 0 else None}


async def main():
    expected, meta = {}, {}
    for codec, topic in runs:
        prod = AIOKafkaProducer(bootstrap_servers=bs, acks="all", linger_ms=20,
                                compression_type=None if codec == "none" else codec,
                                request_timeout_ms=15000)
        try:
            await asyncio.wait_for(prod.start(), 30)
            futs = []
            for i in range(N):
                m = make(i)
                expected[(topic, i)] = m
                futs.append((i, await prod.send(topic, key=m["key"], value=m["value"],
                                                headers=m["headers"], partition=m["partition"],
                                                timestamp_ms=m["ts"])))
            for i, fut in futs:
                try:
                    md = await asyncio.wait_for(fut, 30)
                    meta[(topic, i)] = (md.partition, md.offset)
                except Exception as exc:  # noqa: BLE001
                    c.fail(f"{codec} seq {i}: send failed: {type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001
            c.fail(f"{codec}: producer failed: {type(exc).__name__}: {exc}")
        finally:
            await prod.stop()

    cons = AIOKafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", fetch_max_wait_ms=200)
    await asyncio.wait_for(cons.start(), 30)
    tps = [TopicPartition(t, p) for _, t in runs for p in range(PARTITIONS)]
    cons.assign(tps)
    await cons.seek_to_beginning(*tps)
    ends = await cons.end_offsets(tps)
    seen, offsets = {}, {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        positions = {tp: await cons.position(tp) for tp in tps}
        if all(positions[tp] >= ends[tp] for tp in tps):
            break
        batch = await cons.getmany(timeout_ms=500)
        for tp, records in batch.items():
            for r in records:
                offsets.setdefault((r.topic, r.partition), []).append(r.offset)
                hdrs = [(k, v) for k, v in (r.headers or [])]
                seq = int(hdrs[0][1]) if hdrs and hdrs[0][0] == "seq" else -1
                seen[(r.topic, seq)] = seen.get((r.topic, seq), 0) + 1
                m = expected.get((r.topic, seq))
                where = f"{r.topic} seq {seq} (p{r.partition}/o{r.offset})"
                if not c.check(m is not None, f"{where}: unexpected record, headers {hdrs[:2]}"):
                    continue
                c.equal(r.key, m["key"], f"{where} key")
                c.check(r.value == m["value"], f"{where} value differs")
                c.equal(hdrs, m["headers"], f"{where} headers")
                if m["ts"] is not None:
                    c.equal(r.timestamp, m["ts"], f"{where} timestamp")
                c.equal((r.partition, r.offset), meta.get((r.topic, seq)), f"{where} vs send metadata")
    await cons.stop()
    for codec, topic in runs:
        c.equal(sum(ends[TopicPartition(topic, p)] for p in range(PARTITIONS)), N, f"{codec}: end offsets")
        missing = [i for i in range(N) if (topic, i) not in seen]
        dups = [i for i in range(N) if seen.get((topic, i), 0) > 1]
        c.check(not missing, f"{codec}: {len(missing)} records never consumed, e.g. {missing[:5]}")
        c.check(not dups, f"{codec}: {len(dups)} records consumed twice, e.g. {dups[:5]}")
        for p in range(PARTITIONS):
            got = offsets.get((topic, p), [])
            c.equal(got, list(range(len(got))), f"{codec} p{p} offsets contiguous from 0")


asyncio.run(main())
c.finish()
