"""confluent-kafka: produce with every compression codec x acks 0/1/all, consume by assignment.

For each of the 15 (compression, acks) combinations a fresh 3-partition topic receives 300
messages in multi-record batches (linger), with:
  - unique sequence number in the first header `seq`, keys (some null), values of many sizes
    (some null, some empty, some highly compressible, some random);
  - headers including a duplicated name (`dup`=one, `dup`=two: KIP-82 allows duplicates and
    order matters), an empty value, a binary value, and on some messages a null value;
  - explicit partitions on some messages and explicit CreateTime timestamps on half of them.
For acks 1/all every delivery report must succeed and carry a partition and offset; for acks 0
only "no error" is checked (there is no response).

With `--idempotent`: enable.idempotence=true (InitProducerId, producer id/epoch/sequence in every
batch), acks=all, one topic per codec; the same checks.

Then one consumer (group.id is mandatory in confluent-kafka, but it never subscribes or
commits) assign()s every partition from OFFSET_BEGINNING and reads to the end. Checks: every
message exactly once, with exactly the key, value, header list (names, values, null-ness, order),
timestamp and partition it was produced with; (partition, offset) equal to its delivery report;
offsets in each partition contiguous from 0 and matching the high watermark.
"""
import os
import random
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Checks, bootstrap, ck_admin, ck_create_topics, ck_high_watermarks,  # noqa: E402
                    flag, log, unique_topic, wait_until)
from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer,  # noqa: E402
                             KafkaError, Producer, TopicPartition)

PER_COMBO = int(os.environ.get("CK_MESSAGES", "300"))
PARTITIONS = 3
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ACKS = ["0", "1", "all"]

IDEMPOTENT = flag("idempotent")
if IDEMPOTENT:
    ACKS = ["all"]

bs = bootstrap()
c = Checks("confluent-kafka " + ("idempotent produce/consume" if IDEMPOTENT
                                 else "produce/consume (compression x acks)"))
rng = random.Random(42)
base_ts = int(time.time() * 1000) - 3_600_000  # an hour ago: clearly not "now"

combos = [(codec, acks, unique_topic(f"ck-{codec}-acks{acks}{'-idem' if IDEMPOTENT else ''}")) for codec in CODECS for acks in ACKS]
ck_create_topics(ck_admin(bs), {t: PARTITIONS for _, _, t in combos})


def make_message(i):
    headers = [("seq", str(i).encode()), ("dup", b"one"), ("dup", b"two"),
               ("bin", bytes([0, 255, i % 256, 10, 13])), ("empty", b"")]
    if i % 5 == 0:
        headers.append(("nullv", None))
    headers.append(("dup", b"three"))
    key = None if i % 7 == 3 else b"key-%d" % i
    kind = i % 6
    if i % 11 == 4:
        value = None
    elif kind == 0:
        value = b""
    elif kind == 1:
        value = b"A" * rng.choice([10, 1000, 50_000])                 # compressible
    elif kind == 2:
        value = bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 100, 3000])))
    else:
        value = ("value %d ünïcødé " % i).encode() * rng.choice([1, 3, 20])
    partition = (i % PARTITIONS) if i % 13 == 0 else None
    ts = base_ts + i if i % 2 == 0 else None
    return {"key": key, "value": value, "headers": headers, "partition": partition, "ts": ts}


expected = {}    # (topic, seq) -> message dict
reports = {}     # (topic, seq) -> (err, partition, offset)
windows = {}     # topic -> (t_start, t_end) for producer-assigned timestamps

produced = []
for codec, acks, topic in combos:
    produced.append((codec, acks, topic))
    p = Producer({"bootstrap.servers": bs, "compression.type": codec, "acks": acks,
                  "linger.ms": 30, "batch.num.messages": 100, "enable.idempotence": IDEMPOTENT,
                  "message.timeout.ms": 30000, "request.timeout.ms": 15000})
    t_start = int(time.time() * 1000)
    for i in range(PER_COMBO):
        m = make_message(i)
        expected[(topic, i)] = m

        def on_delivery(err, msg, key=(topic, i)):
            reports[key] = (err, msg.partition(), msg.offset())

        kwargs = {"key": m["key"], "value": m["value"], "headers": m["headers"],
                  "on_delivery": on_delivery}
        if m["partition"] is not None:
            kwargs["partition"] = m["partition"]
        if m["ts"] is not None:
            kwargs["timestamp"] = m["ts"]
        p.produce(topic, **kwargs)
        p.poll(0)
    try:
        left = p.flush(60)
    except Exception as exc:  # noqa: BLE001 - e.g. a fatal idempotence error raised in a callback
        c.fail(f"{codec}/acks={acks}: producer failed during flush: {type(exc).__name__}: "
               f"{exc.__cause__ or exc}")
        left = len(p)
    windows[topic] = (t_start, int(time.time() * 1000))
    c.equal(left, 0, f"{codec}/acks={acks}: messages still queued after flush(60)")
    no_report, failed = [], []
    for i in range(PER_COMBO):
        rep = reports.get((topic, i))
        if rep is None:
            no_report.append(i)
            continue
        err, part, off = rep
        if err is not None:
            failed.append((i, err))
        elif acks != "0":
            c.check(off >= 0, f"{codec}/acks={acks} seq {i}: delivery report offset {off}")
    c.check(not no_report, f"{codec}/acks={acks}: {len(no_report)} messages without delivery "
            f"report, e.g. seq {no_report[:5]}")
    c.check(not failed, f"{codec}/acks={acks}: {len(failed)} deliveries failed; first: "
            f"seq {failed[0][0] if failed else ''}: {failed[0][1] if failed else ''}")
    if c.failures and IDEMPOTENT:
        break  # a fatal producer error repeats for every codec; one report is enough
combos = produced  # only verify what was actually produced

# acks=0 has no response, so wait (bounded) until the broker has appended everything.
consumer = Consumer({"bootstrap.servers": bs, "group.id": f"compat-unused-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "enable.auto.offset.store": False,
                     "enable.partition.eof": True, "auto.offset.reset": "earliest"})
highs = {}
for codec, acks, topic in combos:
    def all_there(topic=topic):
        wm = ck_high_watermarks(consumer, topic, range(PARTITIONS))
        highs[topic] = wm
        return sum(h for _, h in wm.values()) >= PER_COMBO
    try:
        wait_until(all_there, f"{topic} high watermarks to reach {PER_COMBO}", deadline_s=20)
    except TimeoutError:
        pass  # reported below with the actual numbers
    total = sum(h for _, h in highs.get(topic, {}).values())
    c.equal(total, PER_COMBO, f"{codec}/acks={acks}: sum of high watermarks")
    for part, (low, high) in highs.get(topic, {}).items():
        c.equal(low, 0, f"{codec}/acks={acks} partition {part} low watermark")

consumer.assign([TopicPartition(t, part, OFFSET_BEGINNING)
                 for _, _, t in combos for part in range(PARTITIONS)])
pending = {(t, part) for _, _, t in combos for part in range(PARTITIONS)}
consumed = {}     # (topic, seq) -> list of (partition, offset)
offsets = {}      # (topic, partition) -> offsets in consumption order
transient = []
deadline = time.monotonic() + 60
while pending and time.monotonic() < deadline:
    msg = consumer.poll(0.5)
    if msg is None:
        continue
    if msg.error():
        if msg.error().code() == KafkaError._PARTITION_EOF:
            tp = (msg.topic(), msg.partition())
            if msg.offset() >= highs.get(msg.topic(), {}).get(msg.partition(), (0, 0))[1]:
                pending.discard(tp)
        elif msg.error().fatal():
            c.fail(f"fatal consumer error: {msg.error()}")
            break
        else:
            transient.append(str(msg.error()))
        continue
    t, part, off = msg.topic(), msg.partition(), msg.offset()
    offsets.setdefault((t, part), []).append(off)
    hdrs = msg.headers() or []
    if not hdrs or hdrs[0][0] != "seq":
        c.fail(f"{t} p{part}/o{off}: first header is not seq: {hdrs[:3]!r}")
        continue
    seq = int(hdrs[0][1])
    consumed.setdefault((t, seq), []).append((part, off))
    m = expected.get((t, seq))
    if m is None:
        c.fail(f"{t} p{part}/o{off}: unknown seq {seq}")
        continue
    where = f"{t} seq {seq} (p{part}/o{off})"
    c.equal(msg.key(), m["key"], f"{where} key")
    if msg.value() != m["value"]:
        c.fail(f"{where} value differs: got {len(msg.value() or b'')} bytes "
               f"{(msg.value() or b'')[:20]!r}, want {len(m['value'] or b'')} bytes "
               f"{(m['value'] or b'')[:20]!r} (null: got {msg.value() is None}, want {m['value'] is None})")
    c.equal(hdrs, m["headers"], f"{where} headers")
    ts_type, ts = msg.timestamp()
    c.equal(ts_type, TIMESTAMP_CREATE_TIME, f"{where} timestamp type")
    if m["ts"] is not None:
        c.equal(ts, m["ts"], f"{where} explicit timestamp")
    else:
        lo, hi = windows[t]
        c.check(lo - 5000 <= ts <= hi + 5000, f"{where} timestamp {ts} outside [{lo}, {hi}]")
    if m["partition"] is not None:
        c.equal(part, m["partition"], f"{where} explicit partition")
    err, rpart, roff = reports.get((t, seq), (None, None, None))
    if roff is not None and roff >= 0:
        c.equal((part, off), (rpart, roff), f"{where} position vs delivery report")
consumer.close()

for tp in sorted(pending):
    c.fail(f"{tp[0]} partition {tp[1]}: did not reach end of partition within 60 s "
           f"(read {len(offsets.get(tp, []))} of {highs.get(tp[0], {}).get(tp[1])})")
for codec, acks, topic in combos:
    missing = [i for i in range(PER_COMBO) if (topic, i) not in consumed]
    dups = [i for i in range(PER_COMBO) if len(consumed.get((topic, i), [])) > 1]
    c.check(not missing, f"{codec}/acks={acks}: {len(missing)} messages never consumed, "
            f"e.g. seq {missing[:5]}")
    c.check(not dups, f"{codec}/acks={acks}: {len(dups)} messages consumed more than once, "
            f"e.g. seq {dups[:5]} at {[consumed[(topic, i)] for i in dups[:2]]}")
    for part in range(PARTITIONS):
        got = offsets.get((topic, part), [])
        c.equal(got, list(range(len(got))), f"{codec}/acks={acks} p{part} offsets contiguous from 0")
if transient:
    log(f"note: {len(transient)} transient consumer errors, first: {transient[0]}")
log(f"combos: {len(combos)}, messages per combo: {PER_COMBO}")
c.finish()
