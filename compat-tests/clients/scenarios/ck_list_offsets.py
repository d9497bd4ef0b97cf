"""confluent-kafka: ListOffsets through get_watermark_offsets, offsets_for_times and
AdminClient.list_offsets, on a topic whose record timestamps are known.

Partition 0 gets 20 records in two batches with CreateTime ts[i] = T0 + 1000*i, except record 7
which carries the largest timestamp (T0 + 500 000). Partition 1 stays empty.
Expected (Kafka's rule: the first offset whose timestamp >= target, else -1):
  watermarks p0 = (0, 20), p1 = (0, 0);
  for_times(T0-1)=0, (T0)=0, (T0+1)=1, (T0+5500)=6, (T0+12000)=7 (not 12: record 7 is later
  in time but earlier in the log), (T0+500000)=7, (T0+500001)=-1; empty partition: -1;
  list_offsets earliest=0, latest=20, max_timestamp=7 (timestamp T0+500000), and on the empty
  partition latest=0.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, log, unique_topic  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import OffsetSpec  # noqa: E402

bs = bootstrap()
c = Checks("confluent-kafka list offsets")
admin = ck_admin(bs)
topic = unique_topic("ck-offsets")
ck_create_topics(admin, {topic: 2})

T0 = (int(time.time() * 1000) // 1000) * 1000 - 10_000_000
ts = [T0 + 1000 * i for i in range(20)]
ts[7] = T0 + 500_000

p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 50})
for half in (range(0, 10), range(10, 20)):
    for i in half:
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0, timestamp=ts[i])
    c.equal(p.flush(30), 0, "records left after flush")

cons = Consumer({"bootstrap.servers": bs, "group.id": f"compat-unused-{uuid.uuid4().hex}",
                 "enable.auto.commit": False})
for part, want in ((0, (0, 20)), (1, (0, 0))):
    wm = cons.get_watermark_offsets(TopicPartition(topic, part), timeout=10, cached=False)
    c.equal(tuple(wm) if wm else wm, want, f"get_watermark_offsets p{part}")


def expected_for(target):
    return next((i for i, t in enumerate(ts) if t >= target), -1)


targets = [T0 - 1, T0, T0 + 1, T0 + 5500, T0 + 12_000, T0 + 19_000, T0 + 500_000, T0 + 500_001]
for target in targets:
    # One partition per call: the API takes one timestamp per partition.
    r = cons.offsets_for_times([TopicPartition(topic, 0, target)], timeout=10)[0]
    c.check(r.error is None, f"offsets_for_times(T0{target - T0:+d}) error {r.error}")
    c.equal(r.offset, expected_for(target), f"offsets_for_times(T0{target - T0:+d})")
r = cons.offsets_for_times([TopicPartition(topic, 1, T0)], timeout=10)[0]
c.equal(r.offset, -1, "offsets_for_times on empty partition")
cons.close()


def list_offsets(spec, part=0):
    fut = admin.list_offsets({TopicPartition(topic, part): spec}, request_timeout=15)
    info = next(iter(fut.values())).result(timeout=20)
    return info.offset, info.timestamp


for label, spec, part, want_off in (("earliest", OffsetSpec.earliest(), 0, 0),
                                    ("latest", OffsetSpec.latest(), 0, 20),
                                    ("for_timestamp(T0+12000)", OffsetSpec.for_timestamp(T0 + 12_000), 0, 7),
                                    ("latest (empty partition)", OffsetSpec.latest(), 1, 0),
                                    ("earliest (empty partition)", OffsetSpec.earliest(), 1, 0)):
    try:
        off, _ = list_offsets(spec, part)
        c.equal(off, want_off, f"AdminClient.list_offsets {label}")
    except Exception as exc:  # noqa: BLE001
        c.fail(f"AdminClient.list_offsets {label} raised {exc!r}")
try:
    off, stamp = list_offsets(OffsetSpec.max_timestamp())
    c.equal((off, stamp), (7, T0 + 500_000), "AdminClient.list_offsets max_timestamp (KIP-734)")
except Exception as exc:  # noqa: BLE001
    c.fail(f"AdminClient.list_offsets max_timestamp raised {exc!r}")

c.finish()
