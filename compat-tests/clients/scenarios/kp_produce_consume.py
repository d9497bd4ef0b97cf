"""kafka-python: KafkaProducer with every codec it supports, KafkaConsumer by assign() (no group).

One fresh 2-partition topic per codec (none, gzip, snappy, lz4, zstd), acks=all (plus one acks=1
run uncompressed), 200 records each with keys (some null), values of varied size (some null or
empty, some compressible), headers with a duplicated name in a fixed order, explicit partitions
on some, explicit timestamps on half. Every send's RecordMetadata must come back.
The producer sets enable_idempotence=False explicitly: kafka-python >= 3.0 turns idempotence on by
default (KIP-679), which needs InitProducerId; that path is the separate `--default-config`
variant below.
With `--default-config`: KafkaProducer(bootstrap_servers=..., compression_type=...) and nothing
else, i.e. acks=all + idempotence as kafka-python ships it, for none and zstd; same checks, and
exactly-once matters here (no duplicates from retries).
Consumer (group_id=None, auto-commit off) assign()s the partitions, seeks to the beginning and
polls to the end offsets. Checks: each record exactly once with identical key, value, headers,
partition/offset equal to its RecordMetadata, CreateTime timestamps, contiguous offsets.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, flag, log, unique_topic  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

N = int(os.environ.get("KP_MESSAGES", "200"))
PARTITIONS = 2
RUNS = [("none", "all"), ("none", 1), ("gzip", "all"), ("snappy", "all"), ("lz4", "all"),
        ("zstd", "all")]

DEFAULT_CONFIG = flag("default-config")
if DEFAULT_CONFIG:
    RUNS = [("none", "default"), ("zstd", "default")]

bs = bootstrap()
c = Checks("kafka-python " + ("idempotent produce (default producer config)" if DEFAULT_CONFIG
                              else "produce/consume"))
rng = random.Random(7)
base_ts = int(time.time() * 1000) - 7_200_000
runs = [(codec, acks, unique_topic(f"kp-{codec}-acks{acks}")) for codec, acks in RUNS]
# Topics are created with the confluent AdminClient so that this scenario's verdict is about
# kafka-python's produce/fetch paths (kp_admin covers kafka-python's admin requests).
ck_create_topics(ck_admin(bs), {t: PARTITIONS for _, _, t in runs})


def make(i):
    key = None if i % 9 == 2 and i % 10 != 5 else b"k-%d" % i   # kafka-python refuses key=value=None
    if i % 10 == 5:
        value = None
    elif i % 10 == 6:
        value = b""
    elif i % 3 == 0:
        value = b"z" * rng.choice([100, 20_000])
    else:
        value = bytes(rng.getrandbits(8) for _ in range(rng.choice([3, 80, 900])))
    headers = [("seq", str(i).encode()), ("dup", b"1"), ("x", b"\x00\x01"), ("dup", b"2")]
    return {"key": key, "value": value, "headers": headers,
            "partition": (i % PARTITIONS) if i % 4 == 0 else None,
            "ts": base_ts + i if i % 2 == 0 else None}


expected, meta = {}, {}
for codec, acks, topic in runs:
    try:
        codec_arg = None if codec == "none" else codec
        if DEFAULT_CONFIG:
            prod = KafkaProducer(bootstrap_servers=bs, compression_type=codec_arg)
        else:
            prod = KafkaProducer(bootstrap_servers=bs, acks=acks, linger_ms=20,
                                 compression_type=codec_arg, enable_idempotence=False,
                                 request_timeout_ms=15000, max_block_ms=20000)
    except Exception as exc:  # noqa: BLE001
        c.fail(f"{codec}/acks={acks}: KafkaProducer() raised {type(exc).__name__}: {exc}")
        continue
    futures = []
    for i in range(N):
        m = make(i)
        expected[(topic, i)] = m
        futures.append((i, prod.send(topic, key=m["key"], value=m["value"], headers=m["headers"],
                                     partition=m["partition"], timestamp_ms=m["ts"])))
    prod.flush(timeout=60)
    send_errors = []
    for i, fut in futures:
        try:
            md = fut.get(timeout=30)
            meta[(topic, i)] = (md.partition, md.offset)
            c.check(md.offset >= 0, f"{codec}/acks={acks} seq {i}: RecordMetadata offset {md.offset}")
        except Exception as exc:  # noqa: BLE001
            send_errors.append((i, f"{type(exc).__name__}: {exc}"))
    if send_errors:
        c.fail(f"{codec}/acks={acks}: {len(send_errors)} of {N} sends failed; first (seq "
               f"{send_errors[0][0]}): {send_errors[0][1]}")
    prod.close(timeout=10)

cons = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                     auto_offset_reset="earliest", request_timeout_ms=30000,
                     fetch_max_wait_ms=200)
tps = [TopicPartition(t, p) for _, _, t in runs for p in range(PARTITIONS)]
cons.assign(tps)
cons.seek_to_beginning(*tps)
ends = cons.end_offsets(tps)
for codec, acks, topic in runs:
    total = sum(ends[TopicPartition(topic, p)] for p in range(PARTITIONS))
    c.equal(total, N, f"{codec}/acks={acks}: sum of end offsets")

seen, offsets = {}, {}
deadline = time.monotonic() + 60
while time.monotonic() < deadline and any(cons.position(tp) < ends[tp] for tp in tps):
    for tp, records in cons.poll(timeout_ms=500).items():
        for r in records:
            offsets.setdefault((r.topic, r.partition), []).append(r.offset)
            hdrs = list(r.headers or [])
            if not hdrs or hdrs[0][0] != "seq":
                c.fail(f"{r.topic} p{r.partition}/o{r.offset}: first header not seq: {hdrs[:2]}")
                continue
            seq = int(hdrs[0][1])
            seen[(r.topic, seq)] = seen.get((r.topic, seq), 0) + 1
            m = expected.get((r.topic, seq))
            where = f"{r.topic} seq {seq} (p{r.partition}/o{r.offset})"
            if not c.check(m is not None, f"{where}: unexpected record"):
                continue
            c.equal(r.key, m["key"], f"{where} key")
            if r.value != m["value"]:
                c.fail(f"{where} value differs: got {len(r.value or b'')} bytes, "
                       f"want {len(m['value'] or b'')} (null got/want {r.value is None}/{m['value'] is None})")
            c.equal(hdrs, m["headers"], f"{where} headers")
            c.equal(r.timestamp_type, 0, f"{where} timestamp type (CreateTime)")
            if m["ts"] is not None:
                c.equal(r.timestamp, m["ts"], f"{where} timestamp")
            if m["partition"] is not None:
                c.equal(r.partition, m["partition"], f"{where} partition")
            c.equal((r.partition, r.offset), meta.get((r.topic, seq)), f"{where} vs RecordMetadata")
cons.close()

for codec, acks, topic in runs:
    missing = [i for i in range(N) if (topic, i) not in seen]
    dups = [i for i in range(N) if seen.get((topic, i), 0) > 1]
    c.check(not missing, f"{codec}/acks={acks}: {len(missing)} records never consumed, e.g. {missing[:5]}")
    c.check(not dups, f"{codec}/acks={acks}: {len(dups)} records consumed twice, e.g. {dups[:5]}")
    for p in range(PARTITIONS):
        got = offsets.get((topic, p), [])
        c.equal(got, list(range(len(got))), f"{codec}/acks={acks} p{p} offsets contiguous from 0")
c.finish()
