"""A share group (KIP-932) in shared mode, with the leader of some of its partitions SIGKILLed.

PostgreSQL and three brokers are started as cluster_compose.py starts them
(examples/cluster/local_cluster.py). A 6-partition topic gets 3000 records with unique values
from an idempotent acks=all producer; the group's share.auto.offset.reset=earliest is set once
through the AdminClient and read back from every broker. Two confluent-kafka ShareConsumers
(implicit acknowledgement) read the topic; once about a third of the records came, a broker
that leads partitions of the topic, and is not the group's coordinator when that can be told,
is SIGKILLed. They go on until every record came or the deadline passed.

Each partition's records are handed out by its leader, which keeps the share-partition's
state in PostgreSQL; the broker taking a partition over reads it back. Checks: no acknowledged
record is lost; records received more than once (those in flight at the kill) stay under 10%
of them; every survivor answers Metadata with the survivors leading every partition. Then the
group is deleted through the AdminClient and read again from the earliest offset: every record
comes again (each partition's leader forgot what it held of the deleted group).
Needs PostgreSQL's programs (skipped without them unless GREGOR_REQUIRE_POSTGRES=1); starts its
own brokers, so it skips against an external one.
"""
import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, ck_create_topics, log, skip  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "examples", "cluster"))
import local_cluster  # noqa: E402
from confluent_kafka import KafkaException, Producer, ShareConsumer  # noqa: E402
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType  # noqa: E402
from kafka import KafkaAdminClient  # noqa: E402
from kafka.protocol.admin import DescribeConfigsRequest  # noqa: E402

PARTITIONS = 6
RECORDS = 3000
MAX_POLL_RECORDS = 50
KILL_WAIT_S = 30   # longest wait for a third of the records before the kill
DEADLINE_S = 90    # from the consumers' start to every record received
GROUP_RESOURCE = 32

if os.environ.get("GREGOR_BOOTSTRAP"):
    skip("starts its own brokers from the compose environment")
binary = os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor"))
# run.sh's timeout sends SIGTERM: leave through the `finally` below, which stops the cluster.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class OwnCluster(local_cluster.Cluster):
    """local_cluster's Cluster, which also stops PostgreSQL and the brokers it had started when
    a broker does not come up."""

    def __init__(self, binary):
        try:
            super().__init__(binary)
        except BaseException:
            if hasattr(self, "pg"):
                self.procs, self.s3 = getattr(self, "procs", {}), getattr(self, "s3", None)
                self.stop()
            raise


try:
    cluster = OwnCluster(binary)
except FileNotFoundError as e:
    if os.environ.get("GREGOR_REQUIRE_POSTGRES") == "1":
        raise
    skip(str(e))

c = Checks("cluster-share")
topic = f"compat-cluster-share-{os.getpid()}-{uuid.uuid4().hex[:8]}"
group = f"cluster-share-{uuid.uuid4().hex[:8]}"
host = cluster.bootstrap("PLAINTEXT_HOST")
lock = threading.Lock()
received, by_partition, redelivered = Counter(), Counter(), Counter()


def set_group_config():
    """share.auto.offset.reset=earliest for the group, set once through confluent-kafka's
    AdminClient (librdkafka sends GROUP configs to the controller): group configs are the
    cluster's."""
    res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    try:
        admin = AdminClient({"bootstrap.servers": host})
        admin.incremental_alter_configs([res])[res].result(timeout=20)
        c.check(True, "group config set through the AdminClient")
    except KafkaException as e:
        c.check(False, f"group config set through the AdminClient: {e}")


def group_config_on(name):
    """Polls broker `name` (kafka-python, sent to that broker's node id) until it reads the
    group config back as earliest: every broker takes it up at its next heartbeat."""
    node = cluster.node_id(name)
    admin = KafkaAdminClient(bootstrap_servers=cluster.advertised(name, "PLAINTEXT_HOST"), request_timeout_ms=20000)

    def send(request):
        async def go():
            return await admin._manager.send(request, node_id=node)
        return admin._manager.run(go)

    value, deadline = None, time.monotonic() + 15
    try:
        while value != "earliest" and time.monotonic() < deadline:
            desc = send(DescribeConfigsRequest(resources=[(GROUP_RESOURCE, group, ["share.auto.offset.reset"])],
                                               include_synonyms=False))
            value = {e.name: e.value for e in desc.results[0].configs}.get("share.auto.offset.reset")
            if value != "earliest":
                time.sleep(0.2)
    finally:
        admin.close()
    c.check(value == "earliest", f"group config on {name} (node {node}) reads back {value}")


def leaders(name, at=None):
    """{partition: leader} of topic `name` as Metadata through `at` (every broker by default)
    says; {} when it cannot be told."""
    try:
        md = AdminClient({"bootstrap.servers": at or host}).list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        return {} if t is None or t.error is not None else {p.id: p.leader for p in t.partitions.values()}
    except Exception:  # noqa: BLE001
        return {}


class Member(threading.Thread):
    """A ShareConsumer (implicit acknowledgement: a poll accepts the previous poll's records)
    counting every value it receives."""

    def __init__(self, name):
        super().__init__(daemon=True, name=name)
        self.stop = threading.Event()
        self.errors = Counter()
        self.closed = False

    def run(self):
        s = ShareConsumer({"bootstrap.servers": host, "group.id": group, "client.id": self.name,
                           "max.poll.records": MAX_POLL_RECORDS, "socket.timeout.ms": 10000})
        try:
            s.subscribe([topic])
            while not self.stop.is_set():
                try:
                    batch = s.poll(0.5)
                except KafkaException as e:
                    self.errors[str(e)] += 1
                    time.sleep(0.1)
                    continue
                for m in batch:
                    if m.error() is not None:
                        self.errors[str(m.error())] += 1
                        continue
                    with lock:
                        received[m.value().decode()] += 1
                        by_partition[m.partition()] += 1
                        redelivered[m.delivery_count() > 1] += 1
            try:
                s.commit_sync(10.0)  # accepts the last poll's records
            except Exception as e:  # noqa: BLE001
                self.errors[f"commit_sync: {e}"] += 1
        finally:
            s.close()
            self.closed = True


def brokers_last_lines(n=15):
    keep = ("WARN", "ERROR", "share", "lease", "coordinator", "leading the partition")
    for name in cluster.env:
        lines = [line for line in cluster.log(name).splitlines() if any(k in line for k in keep)]
        log(f"---- last lines of {name}'s log ----\n" + "\n".join(lines[-n:]))


members, acked, errors = [], [], []
t0 = time.monotonic()
try:
    ck_create_topics(AdminClient({"bootstrap.servers": host}), {topic: PARTITIONS})
    set_group_config()
    for name in cluster.env:
        group_config_on(name)

    producer = Producer({"bootstrap.servers": host, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    produced = Counter()

    def delivered(err, msg):
        if err is None:
            acked.append(msg.value().decode())
        else:
            errors.append(str(err))

    for i in range(RECORDS):
        producer.produce(topic, value=f"r-{i:05d}".encode(), partition=i % PARTITIONS, on_delivery=delivered)
        produced[i % PARTITIONS] += 1
        producer.poll(0)
    left = producer.flush(30)
    c.check(left == 0 and not errors and len(acked) == RECORDS,
            f"{len(acked)} of {RECORDS} records acknowledged, {left} still queued, errors {errors[:5]}")

    members = [Member(f"share-{i}") for i in (1, 2)]
    started = time.monotonic()
    for m in members:
        m.start()
    while sum(received.values()) < RECORDS // 3 and time.monotonic() < started + KILL_WAIT_S:
        time.sleep(0.05)
    at_kill = sum(received.values())
    before = leaders(topic)
    if at_kill < RECORDS // 3:
        log(f"only {at_kill} records received {KILL_WAIT_S} s after the consumers started "
            f"(by partition {dict(sorted(by_partition.items()))}, leaders {before}); killing anyway")
    coordinator = leaders("__consumer_offsets").get(0)
    names = {cluster.node_id(n): n for n in cluster.env}
    candidates = sorted({node for node in before.values() if node in names} - {coordinator})
    if coordinator is None:
        candidates = [node for node in candidates if node != cluster.node_id(list(cluster.env)[0])]
    victim = names[candidates[0]] if candidates else list(cluster.env)[1]
    led = sorted(p for p, node in before.items() if node == cluster.node_id(victim))
    log(f"{at_kill} records received after {time.monotonic() - started:.1f}s; leaders {before}, "
        f"coordinator {coordinator}: killing {victim} (node {cluster.node_id(victim)}, partitions {led})")
    cluster.kill(victim)
    killed_at = time.monotonic()

    want = set(acked)
    while time.monotonic() < started + DEADLINE_S and not want <= set(received):
        time.sleep(0.1)
    complete = time.monotonic() - killed_at
    for m in members:
        m.stop.set()
    for m in members:
        m.join(timeout=30)

    lost = sorted(want - set(received))
    duplicated = {v: n for v, n in received.items() if n > 1}
    after = leaders(topic)
    log(f"all received {complete:.1f}s after the kill" if not lost else f"{len(lost)} never received by the deadline")
    for p in range(PARTITIONS):
        log(f"  partition {p} (leader {before.get(p)}, then {after.get(p)}): {by_partition[p]} received of {produced[p]}")
    for m in members:
        log(f"  {m.name}: {'closed' if m.closed else 'still closing'}; errors {dict(m.errors.most_common(3))}")
    c.check(not lost, f"{len(lost)} acknowledged records never received: {lost[:5]}")
    c.check(len(duplicated) <= RECORDS // 10,
            f"{len(duplicated)} records received more than once (at most {RECORDS // 10}): {list(duplicated.items())[:5]}")

    survivors = sorted(cluster.node_id(n) for n in cluster.env if n != victim)
    for name in (n for n in cluster.env if n != victim):
        at, seen = cluster.advertised(name, "PLAINTEXT_HOST"), None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                md = AdminClient({"bootstrap.servers": at}).list_topics(timeout=5)
                t = md.topics.get(topic)
                seen = (sorted(md.brokers), sorted({p.leader for p in t.partitions.values()}) if t else None)
                if seen[0] == survivors and seen[1] and set(seen[1]) <= set(survivors):
                    break
            except Exception as e:  # noqa: BLE001
                seen = repr(e)
            time.sleep(0.2)
        c.check(isinstance(seen, tuple) and seen[0] == survivors and seen[1] and set(seen[1]) <= set(survivors),
                f"Metadata through {name}: (brokers, leaders of {topic}) {seen}, want only {survivors}")
    log(f"{RECORDS} produced, {len(acked)} acknowledged, {len(received)} received "
        f"({sum(received.values())} deliveries, {redelivered[True]} with delivery count > 1): {len(lost)} lost, "
        f"{len(duplicated)} duplicated, {victim} killed after {at_kill} records; {time.monotonic() - t0:.1f}s")

    # The group is deleted through the AdminClient (DeleteGroups to its coordinator, which has
    # each partition's leader forget the group's share-partition), then used again from the
    # earliest offset: every record comes again, from every partition whoever leads it.
    deleter = AdminClient({"bootstrap.servers": host})  # kept referenced until its answer came
    try:
        deleter.delete_consumer_groups([group], request_timeout=20)[group].result(timeout=30)
        c.check(True, "share group deleted through the AdminClient")
    except Exception as e:  # noqa: BLE001
        c.check(False, f"share group deleted through the AdminClient: {e!r}")
    set_group_config()
    for name in (n for n in cluster.env if n != victim):
        group_config_on(name)
    received.clear()
    by_partition.clear()
    again = Member("share-again")
    again.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not want <= set(received):
        time.sleep(0.1)
    again.stop.set()
    again.join(timeout=30)
    missing = sorted(want - set(received))
    log(f"after the deletion: {len(received)} of {len(want)} records again, by partition "
        f"{dict(sorted(by_partition.items()))}")
    c.check(not missing, f"after deleting the group, {len(missing)} records never came again: {missing[:5]}")
    if c.failures:
        brokers_last_lines()
except BaseException:
    brokers_last_lines()
    raise
finally:
    for m in members:
        m.stop.set()
    cluster.stop()
c.finish()
