"""confluent-kafka: AdminClient.delete_records purges a partition up to an offset, and up to
the high watermark with OFFSET_END; the new log start holds across a SIGKILL of the broker.

Partition 0 gets 10 records, partition 1 gets 5. delete_records(p0 -> 4, p1 -> OFFSET_END)
gives low watermarks 4 and 5; watermarks then read (4, 10) and (5, 5), a consumer from the
beginning gets offset 4 first, and an offset past the high watermark is OFFSET_OUT_OF_RANGE.
After the broker is killed and restarted all of that still holds.
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Checks, bootstrap, ck_admin, ck_create_topics, restart_broker,  # noqa: E402
                    unique_topic, wait_until)
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402

bs = bootstrap()
c = Checks("confluent-kafka delete records")
admin = ck_admin(bs)
topic = unique_topic("ck-purge")
ck_create_topics(admin, {topic: 2})

p = Producer({"bootstrap.servers": bs, "acks": "all"})
for part, n in ((0, 10), (1, 5)):
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, partition=part)
c.equal(p.flush(30), 0, "records left after flush")


def watermarks(part):
    cons = Consumer({"bootstrap.servers": bs, "group.id": f"compat-unused-{uuid.uuid4().hex}"})
    wm = cons.get_watermark_offsets(TopicPartition(topic, part), timeout=10, cached=False)
    cons.close()
    return tuple(wm) if wm else wm


def first_offset():
    cons = Consumer({"bootstrap.servers": bs, "group.id": f"compat-purge-{uuid.uuid4().hex}",
                     "enable.auto.commit": False})
    cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        m = wait_until(lambda: cons.poll(0.5), "a record from the purged partition", deadline_s=20)
        return m.offset()
    finally:
        cons.close()


def check_purged(when):
    c.equal(watermarks(0), (4, 10), f"watermarks p0 {when}")
    c.equal(watermarks(1), (5, 5), f"watermarks p1 {when}")
    c.equal(first_offset(), 4, f"first offset consumed {when}")


futures = admin.delete_records([TopicPartition(topic, 0, 4), TopicPartition(topic, 1, OFFSET_END)],
                               request_timeout=30)
for tp, f in futures.items():
    res = f.result()
    c.equal(res.low_watermark, 4 if tp.partition == 0 else 5, f"low watermark of p{tp.partition}")
check_purged("after delete_records")

f = admin.delete_records([TopicPartition(topic, 0, 11)], request_timeout=30)
err = None
try:
    next(iter(f.values())).result()
except Exception as exc:  # confluent-kafka raises KafkaException carrying the KafkaError
    err = exc.args[0] if exc.args else exc
c.equal(getattr(err, "code", lambda: None)(), KafkaError.OFFSET_OUT_OF_RANGE, "delete past the high watermark")

restart_broker("KILL")
check_purged("after SIGKILL and restart")
c.finish()
