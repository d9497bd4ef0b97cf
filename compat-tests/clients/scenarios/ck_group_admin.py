"""confluent-kafka AdminClient group operations (+ kafka-python for OffsetDelete).

A group of two members (lib/ck_member.py, range) on a 4-partition topic, 40 messages read and
committed. Then:
  - list_consumer_groups: the group is listed, state STABLE, not simple; a states={EMPTY}
    filter leaves it out;
  - describe_consumer_groups: STABLE, protocol "range", 2 members with their client ids,
    assignments covering the 4 partitions exactly once, coordinator = the broker;
  - list_consumer_group_offsets: offset 10 per partition (end of log);
  - delete_consumer_groups while members exist: GROUP_NOT_EMPTY;
  - alter_consumer_group_offsets while members exist: refused (Kafka: UNKNOWN_MEMBER_ID);
  - the members close: describe shows EMPTY with no members, states={EMPTY} lists it;
  - alter_consumer_group_offsets p0 -> 3 with metadata: list_consumer_group_offsets shows it;
  - OffsetDelete (confluent-kafka 2.16 has no delete_consumer_group_offsets, so kafka-python's
    KafkaAdminClient.delete_group_offsets) for p1: p1 has no committed offset any more;
  - delete_consumer_groups: succeeds; the group is gone from list_consumer_groups and its
    offsets from list_consumer_group_offsets.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Abort, Checks, CkMember, bootstrap, ck_admin, ck_create_topics,  # noqa: E402
                    ck_produce, log, unique_topic, wait_until)
from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions,  # noqa: E402
                             KafkaError, KafkaException, TopicPartition)

PARTITIONS = 4
bs = bootstrap()
c = Checks("confluent-kafka admin: consumer groups")
topic = unique_topic("ck-group-admin")
group = f"compat-ck-admin-{uuid.uuid4().hex[:8]}"
admin = ck_admin(bs)
ck_create_topics(admin, {topic: PARTITIONS})
ck_produce(bs, topic, [(f"k{i}".encode(), b"v", i % PARTITIONS) for i in range(40)])
ALL = {(topic, p) for p in range(PARTITIONS)}
conf = {"partition.assignment.strategy": "range", "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000, "fetch.wait.max.ms": 100}
members = [CkMember(n, bs, group, [topic], conf, commit_every=1) for n in ("adm-1", "adm-2")]
try:
    members[0].wait(lambda m: len(m.assignment()) == 2 and len(members[1].assignment()) == 2 and
                    {k for x in members for _, _, _, k, _ in x.consumed()} ==
                    {f"k{i}" for i in range(40)}, "2 members with 2 partitions, all 40 read", 30)
except (TimeoutError, Abort) as exc:
    c.fail(f"setup: {exc}")


def err_code(exc):
    e = exc.args[0] if exc.args else None
    return e.code() if hasattr(e, "code") else None


def listed(states=None):
    kw = {"request_timeout": 10}
    if states:
        kw["states"] = states
    res = admin.list_consumer_groups(**kw).result(15)
    return {g.group_id: g for g in res.valid}, res.errors


def describe():
    return admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)


def offsets():
    r = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                          request_timeout=10)[group].result(15)
    return {tp.partition: (tp.offset, tp.metadata) for tp in r.topic_partitions
            if tp.topic == topic and tp.offset >= 0}


groups, errors = listed()
c.equal(errors, [], "list_consumer_groups errors")
g = groups.get(group)
c.check(g is not None, f"list_consumer_groups does not list {group}: {sorted(groups)[:10]}")
if g is not None:
    c.equal(g.state, ConsumerGroupState.STABLE, "listed state")
    c.equal(g.is_simple_consumer_group, False, "listed is_simple_consumer_group")
groups, _ = listed({ConsumerGroupState.EMPTY})
c.check(group not in groups, "states={EMPTY} filter still lists the stable group")

try:
    d = describe()
    c.equal(d.state, ConsumerGroupState.STABLE, "describe: state")
    c.equal(d.partition_assignor, "range", "describe: partition_assignor")
    c.equal(sorted(m.client_id for m in d.members), ["adm-1", "adm-2"], "describe: client ids")
    parts = sorted((tp.topic, tp.partition) for m in d.members
                   for tp in m.assignment.topic_partitions)
    c.equal(parts, sorted(ALL), "describe: member assignments")
    c.check(all(m.host for m in d.members), f"describe: member hosts {[m.host for m in d.members]}")
    c.equal(d.coordinator.id if d.coordinator else None, 1, "describe: coordinator id")
    c.equal(d.is_simple_consumer_group, False, "describe: is_simple_consumer_group")
except KafkaException as exc:
    c.fail(f"describe_consumer_groups raised {exc}")

try:
    wait_until(lambda: {p for p, (o, _) in offsets().items() if o == 10} == set(range(PARTITIONS)),
               "committed offset 10 on every partition", deadline_s=10)
except TimeoutError as exc:
    c.fail(str(exc))
try:
    # offsets only: for "no metadata" confluent-kafka's admin path gives None where
    # kafka-python reads "" off the wire, so the metadata is not compared here.
    c.equal({p: o for p, (o, _) in offsets().items()}, {p: 10 for p in range(PARTITIONS)},
            "list_consumer_group_offsets")
except KafkaException as exc:
    c.fail(f"list_consumer_group_offsets raised {exc}")

try:
    admin.delete_consumer_groups([group], request_timeout=10)[group].result(15)
    c.fail("delete_consumer_groups succeeded on a group with members")
except KafkaException as exc:
    c.equal(err_code(exc), KafkaError.NON_EMPTY_GROUP, f"delete non-empty group: error ({exc})")

# Kafka refuses the commit per partition (UNKNOWN_MEMBER_ID); librdkafka reports that in each
# partition's error rather than by failing the future.
try:
    res = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 1)])], request_timeout=10)[group].result(15)
    errors = [tp.error.code() if tp.error else None for tp in res.topic_partitions]
    c.equal(errors, [KafkaError.UNKNOWN_MEMBER_ID], "alter offsets of an active group: partition errors")
except KafkaException as exc:
    c.equal(err_code(exc), KafkaError.UNKNOWN_MEMBER_ID,
            f"alter offsets of an active group: error ({exc})")

for m in members:
    c.equal(m.close(), 0, f"{m.name} close")
try:
    d = describe()
    c.equal((d.state, len(d.members)), (ConsumerGroupState.EMPTY, 0), "describe after leave")
except KafkaException as exc:
    c.fail(f"describe_consumer_groups after leave raised {exc}")
groups, _ = listed({ConsumerGroupState.EMPTY})
c.check(group in groups, "states={EMPTY} does not list the group after its members left")

try:
    res = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 3, metadata="rewound")])],
        request_timeout=10)[group].result(15)
    c.equal([(tp.partition, tp.offset, tp.error) for tp in res.topic_partitions],
            [(0, 3, None)], "alter_consumer_group_offsets result")
    c.equal(offsets().get(0), (3, "rewound"), "p0 after alter_consumer_group_offsets")
except KafkaException as exc:
    c.fail(f"alter_consumer_group_offsets on the empty group raised {exc}")

from kafka.admin import KafkaAdminClient  # noqa: E402
from kafka import TopicPartition as KTP  # noqa: E402
kp = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=10000)
try:
    res = kp.delete_group_offsets(group, [KTP(topic, 1)])
    log(f"kafka-python delete_group_offsets -> {res}")
    c.equal(sorted(offsets()), [0, 2, 3], "partitions with committed offsets after OffsetDelete p1")
except Exception as exc:  # noqa: BLE001
    c.fail(f"kafka-python delete_group_offsets (OffsetDelete) raised {type(exc).__name__}: {exc}")
kp.close()

try:
    admin.delete_consumer_groups([group], request_timeout=10)[group].result(15)
except KafkaException as exc:
    c.fail(f"delete_consumer_groups of the empty group raised {exc}")
groups, _ = listed()
c.check(group not in groups, "deleted group is still listed")
try:
    c.equal(offsets(), {}, "committed offsets of the deleted group")
except KafkaException as exc:
    c.check(err_code(exc) == KafkaError.GROUP_ID_NOT_FOUND, f"offsets of deleted group: {exc}")
c.finish()
