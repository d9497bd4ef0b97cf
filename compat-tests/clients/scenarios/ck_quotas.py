"""Client quotas with third-party encoders: kafka-python's protocol classes send
AlterClientQuotas/DescribeClientQuotas (its admin client has no helper for them), then
confluent-kafka produces and consumes under producer_byte_rate/consumer_byte_rate for its
client id. Everything is delivered and read back, and librdkafka reports the waits the
broker asked for through throttle_cb. A fractional byte rate is refused with Kafka's
message, and removing the quotas leaves nothing behind.
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, unique_topic  # noqa: E402
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka import KafkaAdminClient  # noqa: E402
from kafka.protocol.admin import AlterClientQuotasRequest, DescribeClientQuotasRequest  # noqa: E402

RATE = 20_000.0
COUNT, SIZE = 240, 1_000  # 240 kB: past the 200 kB one 10 s window allows at 20 kB/s

c = Checks("quotas")
client_id = f"quota-client-{uuid.uuid4().hex[:8]}"
topic = unique_topic("quotas")
kp = KafkaAdminClient(bootstrap_servers=bootstrap(), client_id="quota-admin")


def send(request):
    return kp._manager.run(kp._manager.send, request)


def alter(ops, validate_only=False):
    entry = AlterClientQuotasRequest.EntryData
    return send(AlterClientQuotasRequest(
        entries=[entry(entity=[entry.EntityData(entity_type="client-id", entity_name=client_id)],
                       ops=[entry.OpData(key=k, value=v or 0.0, remove=v is None) for k, v in ops])],
        validate_only=validate_only)).entries[0]


def described():
    component = DescribeClientQuotasRequest.ComponentData
    resp = send(DescribeClientQuotasRequest(
        components=[component(entity_type="client-id", match_type=0, match=client_id)], strict=True))
    c.equal(resp.error_code, 0, "DescribeClientQuotas error code")
    return {v.key: v.value for e in (resp.entries or []) for v in e.values}


bad = alter([("producer_byte_rate", 10.5)])
c.equal((bad.error_code, bad.error_message), (42, "producer_byte_rate cannot be a fractional value."),
        "a fractional byte rate")
ok = alter([("producer_byte_rate", RATE), ("consumer_byte_rate", RATE)])
c.equal(ok.error_code, 0, "quotas set")
c.equal(described(), {"producer_byte_rate": RATE, "consumer_byte_rate": RATE}, "quotas described")

admin = AdminClient({"bootstrap.servers": bootstrap()})
admin.create_topics([NewTopic(topic, 1)])[topic].result(timeout=20)

produce_waits = []
# Batches of at most 16 kB (the Java client's default): a single batch larger than what one
# quota window allows could never be fetched within the quota (Kafka behaves the same).
producer = Producer({"bootstrap.servers": bootstrap(), "client.id": client_id, "linger.ms": 5,
                     "batch.size": 16_384,
                     "throttle_cb": lambda ev: produce_waits.append(ev.throttle_time)})
acked = []
for i in range(COUNT):
    producer.produce(topic, value=b"q" * SIZE, key=str(i).encode(),
                     on_delivery=lambda err, msg: acked.append(err is None))
    producer.poll(0)
c.equal(producer.flush(90), 0, "messages left unflushed")
c.check(len(acked) == COUNT and all(acked), f"every message acknowledged ({sum(acked)} of {COUNT})")
c.check(any(w > 0 for w in produce_waits), f"the producer was told to wait ({produce_waits[:5]})")

fetch_waits = []
consumer = Consumer({"bootstrap.servers": bootstrap(), "client.id": client_id,
                     "group.id": f"quota-group-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
                     "throttle_cb": lambda ev: fetch_waits.append(ev.throttle_time)})
consumer.subscribe([topic])
seen = 0
for _ in range(600):
    if seen >= COUNT:
        break
    msg = consumer.poll(0.2)
    if msg is not None and msg.error() is None:
        seen += 1
consumer.close()
c.equal(seen, COUNT, f"messages read back under the consumer quota ({len(fetch_waits)} waits)")
c.check(any(w > 0 for w in fetch_waits), f"the consumer was told to wait ({fetch_waits[:5]})")

gone = alter([("producer_byte_rate", None), ("consumer_byte_rate", None)])
c.equal(gone.error_code, 0, "quotas removed")
c.equal(described(), {}, "nothing left for the client id")
admin.delete_topics([topic])
kp.close()
c.finish()
