"""confluent-kafka AdminClient: CreateTopics / Metadata / DeleteTopics and their error codes.

Checks:
  - create_topics with 4 partitions and topic configs (retention.ms, cleanup.policy) succeeds
    and list_topics shows exactly partitions 0..3, each with a leader;
  - validate_only=True on a new name succeeds but creates nothing;
  - creating an existing topic (plain and validate_only) fails with TOPIC_ALREADY_EXISTS;
  - one request creating a new and an existing topic gets per-topic results (one ok, one error);
  - delete_topics removes the topic from metadata (bounded wait), and deleting an unknown
    topic fails with UNKNOWN_TOPIC_OR_PARTITION;
  - a deleted topic can be created again and is empty (watermarks 0/0).
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, log, unique_topic, wait_until  # noqa: E402
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402

bs = bootstrap()
c = Checks("confluent-kafka admin")
admin = ck_admin(bs)
T = 30


def outcome(future):
    """Returns None on success, else the KafkaError code (or the exception text)."""
    try:
        future.result(timeout=T)
        return None
    except KafkaException as exc:
        return exc.args[0].code()
    except Exception as exc:  # noqa: BLE001 - report anything else verbatim
        return f"{type(exc).__name__}: {exc}"


def name(code):
    """librdkafka's name for a Kafka error code (code 3 is UNKNOWN_TOPIC_OR_PART there)."""
    return f"{KafkaError(code).name()} ({code})" if isinstance(code, int) else code


def create(topics, validate_only=False):
    return {n: outcome(f) for n, f in admin.create_topics(
        topics, validate_only=validate_only, operation_timeout=T, request_timeout=T).items()}


def topics_now():
    return admin.list_topics(timeout=10).topics


a = unique_topic("ck-admin-a")
v = unique_topic("ck-admin-validate")
b = unique_topic("ck-admin-b")
missing = unique_topic("ck-admin-never-created")

res = create([NewTopic(a, num_partitions=4, replication_factor=1,
                       config={"retention.ms": "3600000", "cleanup.policy": "delete"})])
c.check(res[a] is None, f"create {a}: {name(res[a])}")
try:
    md = wait_until(lambda: topics_now().get(a), f"{a} in metadata", deadline_s=15)
    c.equal(sorted(md.partitions), [0, 1, 2, 3], "partitions of created topic")
    c.check(all(p.leader >= 0 for p in md.partitions.values()), "every partition has a leader")
    c.check(md.error is None, f"topic error in metadata: {md.error}")
except TimeoutError as exc:
    c.fail(str(exc))

res = create([NewTopic(v, num_partitions=2, replication_factor=1)], validate_only=True)
c.check(res[v] is None, f"validate_only create of new topic: {name(res[v])}")
c.check(v not in topics_now(), "validate_only create must not create the topic")

res = create([NewTopic(a, num_partitions=4, replication_factor=1)])
c.equal(name(res[a]), name(KafkaError.TOPIC_ALREADY_EXISTS), "create existing topic")
res = create([NewTopic(a, num_partitions=4, replication_factor=1)], validate_only=True)
c.equal(name(res[a]), name(KafkaError.TOPIC_ALREADY_EXISTS), "validate_only create of existing topic")

res = create([NewTopic(b, num_partitions=1, replication_factor=1),
              NewTopic(a, num_partitions=1, replication_factor=1)])
c.check(res[b] is None, f"mixed request: new topic {b}: {name(res[b])}")
c.equal(name(res[a]), name(KafkaError.TOPIC_ALREADY_EXISTS), "mixed request: existing topic")
c.check(v not in topics_now(), "validate_only topic still absent later")

# Put one record in `a` so the re-creation below can prove the old data is gone.
p = Producer({"bootstrap.servers": bs, "acks": "all"})
p.produce(a, value=b"before delete", partition=0)
c.equal(p.flush(30), 0, "produce one record before delete")

res = {n: outcome(f) for n, f in admin.delete_topics([a, b], operation_timeout=T,
                                                      request_timeout=T).items()}
c.check(res[a] is None and res[b] is None, f"delete topics: { {k: name(x) for k, x in res.items()} }")
try:
    wait_until(lambda: a not in topics_now() and b not in topics_now(),
               "deleted topics to leave metadata", deadline_s=15)
except TimeoutError as exc:
    c.fail(str(exc))

res = {n: outcome(f) for n, f in admin.delete_topics([missing], operation_timeout=T,
                                                      request_timeout=T).items()}
c.equal(name(res[missing]), name(KafkaError.UNKNOWN_TOPIC_OR_PART), "delete unknown topic")

res = create([NewTopic(a, num_partitions=2, replication_factor=1)])
c.check(res[a] is None, f"re-create deleted topic: {name(res[a])}")
try:
    md = wait_until(lambda: topics_now().get(a), f"re-created {a} in metadata", deadline_s=15)
    c.equal(sorted(md.partitions), [0, 1], "partitions of re-created topic")
    cons = Consumer({"bootstrap.servers": bs, "group.id": f"compat-unused-{uuid.uuid4().hex}",
                     "enable.auto.commit": False})
    wm = cons.get_watermark_offsets(TopicPartition(a, 0), timeout=10, cached=False)
    c.equal(tuple(wm) if wm else wm, (0, 0), "watermarks of re-created topic (old data gone)")
    cons.close()
except TimeoutError as exc:
    c.fail(str(exc))
admin.delete_topics([a], operation_timeout=T)

c.finish()
