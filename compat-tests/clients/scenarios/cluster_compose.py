"""Shared mode as examples/cluster/docker-compose.yml runs it: PostgreSQL and three brokers, each
started with its compose service's environment (examples/cluster/local_cluster.py: host names
made local, free ports, a private PostgreSQL, a temp directory as the objects volume).

Under load from an idempotent acks=all producer (confluent-kafka; kafka-python with
--kafka-python) and a consumer group committing after every poll (kafka-python; confluent-kafka
with --kafka-python): SIGKILL the group's coordinator, start it again (it
rejoins and takes its share), then SIGKILL another broker. Then a transaction is committed and
one aborted over the two brokers left (the same producing client). Checks: the producer got no error;
every acknowledged record is read back exactly once (0 lost, 0 duplicated); the group saw every
acknowledged record and its committed offsets end at the log end; Metadata lists the live
brokers through each listener; a read_committed reader sees exactly the committed transaction;
partitions added, a config set, records deleted and a topic deleted through AdminClient reach
every survivor.
With --s3 the brokers keep their objects in a bucket of moto's S3-compatible server (PyPI
`moto[server]`) instead of the shared volume: the same checks, over the S3 protocol. Needs PostgreSQL's programs (skipped without them unless
GREGOR_REQUIRE_POSTGRES=1); starts its own brokers, so it skips against an external one.
"""
import os
import sys
import threading
import time
import traceback
import uuid
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, flag, log, skip  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "examples", "cluster"))
import local_cluster  # noqa: E402
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

PARTITIONS = 6
PER_PHASE = 1000
# kafka-python's max.poll.records: what one poll may hand out again after a coordinator move.
MAX_POLL_RECORDS = 500
DEADLINE_S = 90

if os.environ.get("GREGOR_BOOTSTRAP"):
    skip("starts its own brokers from the compose environment")
binary = os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor"))
S3 = flag("s3")
try:
    cluster = local_cluster.Cluster(binary, s3=S3)
except FileNotFoundError as e:
    if os.environ.get("GREGOR_REQUIRE_POSTGRES") == "1":
        raise
    skip(str(e))

KP_PRODUCES = flag("kafka-python")
c = Checks("cluster" + ("-kafka-python" if KP_PRODUCES else "") + ("-s3" if S3 else ""))
topic = f"compat-cluster-{os.getpid()}-{uuid.uuid4().hex[:8]}"
group = f"cluster-group-{uuid.uuid4().hex[:8]}"
host = cluster.bootstrap("PLAINTEXT_HOST")
internal = cluster.bootstrap("PLAINTEXT")


class GroupMember(threading.Thread):
    """A group member on the internal listeners, committing after every poll: kafka-python's,
    or confluent-kafka's when kafka-python produces."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen = []
        self.commit_errors = 0
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            if KP_PRODUCES:
                self.run_confluent()
            else:
                self.run_kafka_python()
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)

    def commit_last(self, commit):
        """Commits what it saw, in case the commit after its last poll was refused by a moving
        coordinator (retried until it goes through; confluent-kafka's "no offset stored" means
        there was nothing left to commit)."""
        deadline = time.monotonic() + 20
        while True:
            try:
                commit()
                return
            except Exception as e:  # noqa: BLE001
                if "_NO_OFFSET" in repr(e) or time.monotonic() > deadline:
                    return
                time.sleep(0.2)

    def run_kafka_python(self):
        consumer = KafkaConsumer(topic, bootstrap_servers=internal.split(","), group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=MAX_POLL_RECORDS)
        while not self.stop.is_set():
            batch = consumer.poll(timeout_ms=200)
            for records in batch.values():
                self.seen.extend(r.value.decode() for r in records)
            if batch:
                try:
                    consumer.commit()
                except Exception:  # noqa: BLE001 (a coordinator move: those records come again)
                    self.commit_errors += 1
        self.commit_last(consumer.commit)
        consumer.close()

    def run_confluent(self):
        consumer = Consumer({"bootstrap.servers": internal, "group.id": group, "enable.auto.commit": False,
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        while not self.stop.is_set():
            batch = [m for m in consumer.consume(MAX_POLL_RECORDS, 0.2) if m.error() is None]
            self.seen.extend(m.value().decode() for m in batch)
            if batch:
                try:
                    consumer.commit(asynchronous=False)
                except Exception:  # noqa: BLE001 (a coordinator move: those records come again)
                    self.commit_errors += 1
        self.commit_last(lambda: consumer.commit(asynchronous=False))
        consumer.close()


def coordinator_service():
    """The service whose broker coordinates the group."""
    admin = AdminClient({"bootstrap.servers": host})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return next(n for n in cluster.env if cluster.node_id(n) == desc.coordinator.id)


def brokers_listed(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return sorted(admin.list_topics(timeout=20).brokers)


acked, errors = [], []


def delivered(err, msg):
    if err is None:
        acked.append(msg.value().decode())
    else:
        errors.append(str(err))


if KP_PRODUCES:
    producer = KafkaProducer(bootstrap_servers=host.split(","), acks="all", enable_idempotence=True, linger_ms=5)
else:
    producer = Producer({"bootstrap.servers": host, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
sent = 0


def send(key, value):
    if KP_PRODUCES:
        future = producer.send(topic, key=key, value=value)
        future.add_callback(lambda _meta: acked.append(value.decode()))
        future.add_errback(lambda e: errors.append(repr(e)))
    else:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
        producer.poll(0)


def produce(count, then=None):
    """Sends `count` more records; runs `then` while they are in flight, then waits for them."""
    global sent
    for _ in range(count):
        send(str(sent % 97).encode(), f"v{sent}".encode())
        sent += 1
    if then:
        then()
    if KP_PRODUCES:
        producer.flush(timeout=DEADLINE_S)
    else:
        producer.flush(DEADLINE_S)
    remaining = sent - len(acked) - len(errors)
    c.check(remaining == 0, f"{remaining} records still unacknowledged {DEADLINE_S} s after record {sent}")


diagnosis = []


def brokers_last_lines(n=12):
    """Each broker's last `n` lines about leases, coordinators, groups and problems (start-up
    chatter left out, so that all three fit in what a runner shows of a failed try)."""
    keep = ("WARN", "ERROR", "lease", "coordinator", "group", "leading the partition", "took a topic")
    for name in cluster.env:
        lines = [line for line in cluster.log(name).splitlines() if any(k in line for k in keep)]
        log(f"---- last lines of {name}'s log ----\n" + "\n".join(lines[-n:]))


def diagnose_group(what):
    """Notes what the group is doing while the member still runs: the coordinator's view of the
    group and where the member's thread is. Printed after the brokers' last lines, so that a
    runner showing the tail of the output shows it."""
    diagnosis.append(what)
    try:
        admin = AdminClient({"bootstrap.servers": host})  # kept: a dropped client never answers
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
        diagnosis.append(f"group {group}: state {desc.state}, coordinator {desc.coordinator.id}, members "
                         f"{[(m.member_id, m.client_id) for m in desc.members]}")
    except Exception as e:  # noqa: BLE001
        diagnosis.append(f"cannot describe the group: {e!r}")
    # Who each broker says leads __consumer_offsets (the group coordinator), and since when.
    for name in cluster.env:
        try:
            md = AdminClient({"bootstrap.servers": cluster.advertised(name, "PLAINTEXT_HOST")}).list_topics(
                topic="__consumer_offsets", timeout=5)
            p = md.topics["__consumer_offsets"].partitions[0]
            diagnosis.append(f"{name} says __consumer_offsets-0 is led by {p.leader} (error {p.error})")
        except Exception as e:  # noqa: BLE001
            diagnosis.append(f"{name} does not say who leads __consumer_offsets: {e!r}")
    frame = sys._current_frames().get(member.ident)
    if frame is not None:
        diagnosis.append("the member's thread is at:\n" + "".join(traceback.format_stack(frame)[-8:]).rstrip())


member = GroupMember()
try:
    for bootstrap in (host, internal):
        c.check(brokers_listed(bootstrap) == [1, 2, 3], f"Metadata through {bootstrap.split(',')[0]}: brokers {brokers_listed(bootstrap)}")
    admin = AdminClient({"bootstrap.servers": host})
    admin.create_topics([NewTopic(topic, PARTITIONS)])[topic].result(timeout=30)
    member.start()
    produce(PER_PHASE)

    # Wait for the group to form, so that it has a coordinator to lose.
    deadline = time.monotonic() + DEADLINE_S
    while not member.seen and time.monotonic() < deadline and member.error is None:
        time.sleep(0.1)
    if not member.seen:
        diagnose_group(f"the group member has seen nothing {DEADLINE_S} s after it started")
        raise RuntimeError("the group did not form")
    first = coordinator_service()
    log(f"killing {first} (node {cluster.node_id(first)}, the group coordinator) with records in flight")
    produce(PER_PHASE, then=lambda: cluster.kill(first))
    produce(PER_PHASE)

    log(f"starting {first} again")
    cluster.start(first)
    cluster.wait_for(list(cluster.env))
    second = next(n for n in cluster.env if n != first)
    log(f"killing {second} (node {cluster.node_id(second)}) with records in flight")
    produce(PER_PHASE, then=lambda: cluster.kill(second))
    produce(PER_PHASE)
    survivors = sorted(cluster.node_id(n) for n in cluster.env if n != second)
    c.check(brokers_listed(host) == survivors, f"Metadata after the kills: brokers {brokers_listed(host)}, want {survivors}")

    c.check(not errors, f"producer errors: {errors[:5]}")
    c.check(len(acked) == sent, f"{len(acked)} of {sent} records acknowledged")

    # Everything acknowledged, read back from the start of every partition.
    reader = Consumer({"bootstrap.servers": host, "group.id": f"reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    parts = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
    ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(PARTITIONS)}
    reader.assign(parts)
    read, positions = Counter(), dict.fromkeys(range(PARTITIONS), 0)
    deadline = time.monotonic() + DEADLINE_S
    while any(positions[p] < ends[p] for p in positions) and time.monotonic() < deadline:
        m = reader.poll(0.2)
        if m is not None and m.error() is None:
            read[m.value().decode()] += 1
            positions[m.partition()] = m.offset() + 1
    reader.close()
    lost = [v for v in acked if v not in read]
    duplicated = {v: n for v, n in read.items() if n > 1}
    log(f"{sent} sent, {len(acked)} acknowledged, {sum(read.values())} read back: {len(lost)} lost, {len(duplicated)} duplicated")
    c.check(not lost, f"{len(lost)} acknowledged records lost: {lost[:5]}")
    c.check(not duplicated, f"{len(duplicated)} records duplicated: {list(duplicated.items())[:5]}")

    # The group went on through both kills and committed the log end.
    deadline = time.monotonic() + DEADLINE_S
    while set(acked) - set(member.seen) and time.monotonic() < deadline and member.error is None:
        time.sleep(0.1)
    if set(acked) - set(member.seen):
        diagnose_group(f"the group member still misses {len(set(acked) - set(member.seen))} records after {DEADLINE_S} s")
        brokers_last_lines()
        log("\n".join(diagnosis))
    member.stop.set()
    member.join(timeout=30)
    c.check(member.error is None, f"group member failed: {member.error}")
    missed = set(acked) - set(member.seen)
    again = len(member.seen) - len(set(member.seen))
    log(f"group saw {len(member.seen)} records ({again} again after a move), {member.commit_errors} commits refused during moves")
    # It went on from its committed offsets: at most the poll in progress at each kill comes again.
    c.check(again <= 2 * MAX_POLL_RECORDS, f"the group saw {again} records twice: it did not resume from its committed offsets")
    c.check(not missed, f"the group never saw {len(missed)} acknowledged records: {sorted(missed)[:5]}")
    probe = Consumer({"bootstrap.servers": host, "group.id": group})
    committed = {tp.partition: tp.offset for tp in probe.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)}
    probe.close()
    c.check(committed == ends, f"group committed {committed}, log ends {ends}")

    # Transactions over the two brokers left (the coordinator and the leaders on both): one
    # committed, one aborted; a read_committed reader sees exactly the committed records.
    txn_topic = topic + "-txn"
    admin = AdminClient({"bootstrap.servers": host})
    admin.create_topics([NewTopic(txn_topic, PARTITIONS)])[txn_topic].result(timeout=30)
    tid = f"cluster-txn-{uuid.uuid4().hex[:8]}"
    if KP_PRODUCES:
        tp = KafkaProducer(bootstrap_servers=host.split(","), transactional_id=tid)
        tp.init_transactions()
        for outcome, n in (("commit", 100), ("abort", 50)):
            tp.begin_transaction()
            for i in range(n):
                tp.send(txn_topic, partition=i % PARTITIONS, value=f"{outcome}-{i}".encode())
            tp.flush()
            tp.commit_transaction() if outcome == "commit" else tp.abort_transaction()
        tp.close()
    else:
        tp = Producer({"bootstrap.servers": host, "transactional.id": tid})
        tp.init_transactions(DEADLINE_S)
        for outcome, n in (("commit", 100), ("abort", 50)):
            tp.begin_transaction()
            for i in range(n):
                tp.produce(txn_topic, partition=i % PARTITIONS, value=f"{outcome}-{i}".encode())
            tp.flush(DEADLINE_S)
            tp.commit_transaction(DEADLINE_S) if outcome == "commit" else tp.abort_transaction(DEADLINE_S)
    rc = Consumer({"bootstrap.servers": host, "group.id": f"rc-{uuid.uuid4().hex[:8]}", "isolation.level": "read_committed",
                   "enable.partition.eof": True, "enable.auto.commit": False})
    rc.assign([TopicPartition(txn_topic, p, 0) for p in range(PARTITIONS)])
    got, at_end = [], set()
    deadline = time.monotonic() + DEADLINE_S
    while len(at_end) < PARTITIONS and time.monotonic() < deadline:
        m = rc.poll(0.2)
        if m is None:
            continue
        if m.error() is None:
            got.append(m.value().decode())
        elif m.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(m.partition())
    rc.close()
    want = sorted(f"commit-{i}" for i in range(100))
    log(f"transactions over the brokers left: read_committed saw {len(got)} records")
    c.check(sorted(got) == want, f"read_committed saw {len(got)} records, {len([g for g in got if g.startswith('abort')])} aborted ones; want the 100 committed")
    # Topic administration over the survivors with confluent-kafka's AdminClient: partitions
    # added, a config set, records deleted (by the partition's leader), then the topic deleted;
    # every survivor's Metadata follows.
    survivors_at = [cluster.advertised(n, "PLAINTEXT_HOST") for n in cluster.env if n != second]

    def topic_on_each(want, what):
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            seen = []
            for at in survivors_at:
                # All topics: asking for the one topic would have a producer-type client's
                # Metadata request create it again once deleted (auto-creation).
                t = AdminClient({"bootstrap.servers": at}).list_topics(timeout=30).topics.get(txn_topic)
                seen.append(None if t is None or t.error is not None else sorted(p.leader for p in t.partitions.values()))
            if all(want(x) for x in seen):
                return True
            time.sleep(0.2)
        c.check(False, f"{what}: the survivors see {seen}")
        return False

    admin.create_partitions([NewPartitions(txn_topic, PARTITIONS + 2)])[txn_topic].result(timeout=30)
    if topic_on_each(lambda x: x is not None and len(x) == PARTITIONS + 2 and min(x) > 0, "partitions added"):
        log(f"partitions added: {PARTITIONS + 2} on every survivor, each with a leader")
    entry = ConfigEntry("retention.ms", "12345678", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, txn_topic, incremental_configs=[entry])
    list(admin.incremental_alter_configs([resource]).values())[0].result(timeout=30)
    described = list(admin.describe_configs([ConfigResource(ResourceType.TOPIC, txn_topic)]).values())[0].result(timeout=30)
    c.check(described["retention.ms"].value == "12345678", f"retention.ms described as {described['retention.ms'].value}")
    low = admin.delete_records([TopicPartition(txn_topic, 0, 5)])[TopicPartition(txn_topic, 0)].result(timeout=30)
    c.check(low.low_watermark == 5, f"DeleteRecords: low watermark {low.low_watermark}, want 5")
    admin.delete_topics([txn_topic])[txn_topic].result(timeout=30)
    if topic_on_each(lambda x: x is None, "topic deleted"):
        log("config set, records deleted and the topic deleted through the survivors")
    if S3:
        # The records above were read back through the bucket (a broker that takes a partition
        # over rebuilds it from the objects); the shared volume must have stayed empty.
        in_bucket = cluster.s3.object_count()
        in_volume = sum(len(files) for _, _, files in os.walk(os.path.join(cluster.work, "objects")))
        log(f"S3: {in_bucket} objects in the bucket, {in_volume} files in the unused volume")
        c.check(in_bucket > 0 and in_volume == 0, f"{in_bucket} objects in the bucket, {in_volume} in the volume")
except Exception:
    brokers_last_lines(30 if not diagnosis else 12)
    log("\n".join(diagnosis))
    raise
finally:
    member.stop.set()
    cluster.stop()
c.finish()
