"""ACL admin APIs and their enforcement through confluent-kafka (and kafka-python for SECURITY_DISABLED) (CreateAcls, DescribeAcls, DeleteAcls): literal,
prefixed and wildcard bindings, MATCH filters, invalid bindings refused with the broker's
message, ACLs kept across a restart, and SECURITY_DISABLED from a broker without an
authorizer; then what librdkafka's producer, consumer and admin client get from topics and
groups whose ACLs leave them out (the broker's principal here is User:ANONYMOUS: this is a
plaintext listener). It starts its own brokers (one with `authorizer.class.name` set through the
apache/kafka image's variable), so it skips against an external one.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, skip  # noqa: E402
from ports import free_port  # noqa: E402
from confluent_kafka import KafkaError, KafkaException  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient, ResourcePatternType,
    ResourceType)

if os.environ.get("GREGOR_BOOTSTRAP"):
    skip("starts its own brokers")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor"))


def start(data_dir, extra_env):
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "GREGOR__"))}
    env = dict(base, GREGOR__SERVER__HTTP_LISTEN="off", NO_COLOR="1", **extra_env)
    log = open(data_dir + ".log", "a")
    proc = subprocess.Popen([BINARY, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gregor exited: {open(data_dir + '.log').read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("gregor did not start")
            time.sleep(0.05)


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def result(future):
    try:
        return future.result(timeout=20)
    except KafkaException as e:
        return e.args[0]


ANY = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                       AclOperation.ANY, AclPermissionType.ANY)
BINDINGS = [
    AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
               AclOperation.READ, AclPermissionType.ALLOW),
    AclBinding(ResourceType.TOPIC, "orders-", ResourcePatternType.PREFIXED, "User:bob", "*",
               AclOperation.WRITE, AclPermissionType.ALLOW),
    AclBinding(ResourceType.GROUP, "*", ResourcePatternType.LITERAL, "User:*", "10.0.0.7",
               AclOperation.READ, AclPermissionType.DENY),
    AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:admin", "*",
               AclOperation.ALTER, AclPermissionType.ALLOW),
]

c = Checks("acls")
work = tempfile.mkdtemp(prefix="gregor-acls-")
data = os.path.join(work, "data")
secured = {"KAFKA_AUTHORIZER_CLASS_NAME": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
           "KAFKA_SUPER_USERS": "User:ANONYMOUS"}
broker, bootstrap = start(data, secured)
try:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = admin.create_acls(BINDINGS)
    errors = [result(f) for f in created.values()]
    c.check(errors == [None] * 4, f"four ACLs created: {errors}")
    bad = AclBinding(ResourceType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL, "User:x", "*",
                     AclOperation.ALTER, AclPermissionType.ALLOW)
    err = result(list(admin.create_acls([bad]).values())[0])
    c.check(isinstance(err, KafkaError) and err.code() == KafkaError.INVALID_REQUEST and "kafka-cluster" in err.str(),
            f"a CLUSTER ACL on another name is refused with a reason: {err}")

    listed = result(admin.describe_acls(ANY))
    c.check(sorted(map(str, listed)) == sorted(map(str, BINDINGS)), f"DescribeAcls lists them: {listed}")
    match = AclBindingFilter(ResourceType.TOPIC, "orders-eu", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    matched = result(admin.describe_acls(match))
    c.check([b.name for b in matched] == ["orders-"], f"MATCH orders-eu finds the prefixed ACL only: {matched}")
    by_host = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, "10.0.0.7",
                               AclOperation.ANY, AclPermissionType.DENY)
    c.check(len(result(admin.describe_acls(by_host))) == 1, "filter by host and permission")

    # Kept across a restart.
    stop(broker)
    broker, bootstrap = start(data, secured)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    c.check(len(result(admin.describe_acls(ANY))) == 4, "the ACLs are back after a restart")
    bob = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:bob", None,
                           AclOperation.ANY, AclPermissionType.ANY)
    deleted = result(list(admin.delete_acls([bob]).values())[0])
    c.check([b.principal for b in deleted] == ["User:bob"], f"DeleteAcls removes bob's ACL: {deleted}")
    c.check(len(result(admin.describe_acls(ANY))) == 3, "three left")
finally:
    stop(broker)

# Enforcement: ACLs name "locked" and "locked-group" for alice only, so the anonymous client
# is refused them; "open" has no ACL and allow.everyone.if.no.acl.found lets everyone use it.
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402

enforced = dict(secured, KAFKA_SUPER_USERS="", KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND="true")
broker, bootstrap = start(os.path.join(work, "enforced"), enforced)
try:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic("open", 1), NewTopic("locked", 1)]).values():
        f.result(timeout=20)
    alice_only = [
        AclBinding(ResourceType.TOPIC, "locked", ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.ALL, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "locked-group", ResourcePatternType.LITERAL, "User:alice", "*",
                   AclOperation.ALL, AclPermissionType.ALLOW),
    ]
    c.check([result(f) for f in admin.create_acls(alice_only).values()] == [None, None], "ACLs for alice created")

    topics = admin.list_topics(timeout=20).topics
    c.check("open" in topics and "locked" not in topics, f"Metadata hides the locked topic: {sorted(topics)}")

    outcomes = {}
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000})
    for topic in ("open", "locked"):
        producer.produce(topic, b"v", on_delivery=lambda err, msg, t=topic: outcomes.__setitem__(t, err))
    producer.flush(20)
    c.check(outcomes.get("open") is None and "open" in outcomes, f"producing to the open topic works: {outcomes}")
    locked = outcomes.get("locked")
    c.check(isinstance(locked, KafkaError) and locked.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
            f"producing to the locked topic: TOPIC_AUTHORIZATION_FAILED ({locked})")

    def consume_error(group, topic):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                return msg.error()
            return "nothing"
        finally:
            consumer.close()

    err = consume_error("free-group", "open")
    c.check(err is None, f"consuming the open topic in a free group works ({err})")
    err = consume_error("locked-group", "open")
    c.check(isinstance(err, KafkaError) and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED,
            f"joining the locked group: GROUP_AUTHORIZATION_FAILED ({err})")
    err = consume_error("free-group-2", "locked")
    c.check(isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
            f"consuming the locked topic: TOPIC_AUTHORIZATION_FAILED ({err})")
    deleted = result(admin.delete_topics(["locked"])["locked"])
    c.check(isinstance(deleted, KafkaError) and deleted.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
            f"deleting the locked topic: TOPIC_AUTHORIZATION_FAILED ({deleted})")
finally:
    stop(broker)

# Without an authorizer, as Kafka: SECURITY_DISABLED. (librdkafka reports that as an empty
# list, so kafka-python, which raises it, is the judge here.)
plain, bootstrap = start(os.path.join(work, "plain"), {})
try:
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import SecurityDisabledError
    kp = KafkaAdminClient(bootstrap_servers=bootstrap)
    everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY))
    try:
        kp.describe_acls(everything)
        c.check(False, "no authorizer: DescribeAcls succeeded")
    except SecurityDisabledError as e:
        c.check("authorizer.class.name" in str(e), f"no authorizer: SECURITY_DISABLED, saying what to set ({e})")
    kp.close()
finally:
    stop(plain)
    shutil.rmtree(work, ignore_errors=True)
c.finish()
