"""kafka-python: KafkaAdminClient.delete_records moves a partition's log start; the new start
holds across a SIGKILL of the broker; an offset past the high watermark raises
OffsetOutOfRangeError.

Partition 0 gets 10 records. delete_records({p0: 6}) answers low_watermark 6; the consumer's
beginning_offsets then reads 6 and end_offsets 10, before and after the broker is killed and
restarted.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, restart_broker, unique_topic, wait_until  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from kafka.errors import OffsetOutOfRangeError  # noqa: E402

bs = bootstrap()
c = Checks("kafka-python delete records")
topic = unique_topic("kp-purge")
admin = KafkaAdminClient(bootstrap_servers=bs, client_id="gregor-compat", request_timeout_ms=20000)
admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=20000)
wait_until(lambda: topic in admin.list_topics(), f"{topic} in list_topics", deadline_s=15)

p = KafkaProducer(bootstrap_servers=bs, acks="all")
for i in range(10):
    p.send(topic, value=b"v%d" % i, partition=0)
p.flush(30)
p.close()
tp = TopicPartition(topic, 0)

res = admin.delete_records({tp: 6}, timeout_ms=20000)
c.equal(res[tp]["low_watermark"], 6, "low watermark after delete_records")
c.equal(res[tp]["error_code"], 0, "delete_records error code")


def check(when):
    cons = KafkaConsumer(bootstrap_servers=bs)
    c.equal(cons.beginning_offsets([tp])[tp], 6, f"beginning offset {when}")
    c.equal(cons.end_offsets([tp])[tp], 10, f"end offset {when}")
    cons.close()


check("after delete_records")
try:
    admin.delete_records({tp: 11}, timeout_ms=20000)
    c.fail("delete past the high watermark was accepted")
except OffsetOutOfRangeError:
    pass
admin.close()

restart_broker("KILL")
check("after SIGKILL and restart")
c.finish()
