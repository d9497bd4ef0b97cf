"""kafka-python KafkaAdminClient: CreateTopics / Metadata / DeleteTopics and error codes.

Checks: create (3 partitions, retention.ms config) returns error_code 0 and describe_topics
shows partitions 0..2 with a leader; validate_only on a new name creates nothing; re-creating
gives error code 36 (TOPIC_ALREADY_EXISTS) in the response and TopicAlreadyExistsError when
raise_errors is on; delete works (topic leaves list_topics within a bounded wait); deleting an
unknown topic gives error code 3 (UNKNOWN_TOPIC_OR_PARTITION).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, log, unique_topic, wait_until  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from kafka.errors import TopicAlreadyExistsError  # noqa: E402

bs = bootstrap()
c = Checks("kafka-python admin")
admin = KafkaAdminClient(bootstrap_servers=bs, client_id="gregor-compat",
                         request_timeout_ms=20000)

a = unique_topic("kp-admin")
v = unique_topic("kp-admin-validate")
missing = unique_topic("kp-admin-never-created")


def codes(result):
    return {t["name"]: t["error_code"] for t in result["topics"]}


r = admin.create_topics({a: {"num_partitions": 3, "replication_factor": 1,
                             "configs": {"retention.ms": "3600000"}}},
                        timeout_ms=20000, raise_errors=False)
c.equal(codes(r).get(a), 0, "create topic error_code")
try:
    wait_until(lambda: a in admin.list_topics(), f"{a} in list_topics", deadline_s=15)
    desc = {t["name"]: t for t in admin.describe_topics([a])}[a]
    c.equal(desc.get("error_code"), 0, "describe_topics error_code")
    parts = sorted(desc.get("partitions", []), key=lambda p: p["partition_index"])
    c.equal([p["partition_index"] for p in parts], [0, 1, 2], "partition indexes")
    c.check(all(p["leader_id"] >= 0 and p["error_code"] == 0 for p in parts),
            f"every partition led and error-free: {parts}")
except TimeoutError as exc:
    c.fail(str(exc))

r = admin.create_topics({v: {"num_partitions": 1, "replication_factor": 1}},
                        validate_only=True, raise_errors=False)
c.equal(codes(r).get(v), 0, "validate_only create error_code")
c.check(v not in admin.list_topics(), "validate_only must not create the topic")

r = admin.create_topics({a: {"num_partitions": 3, "replication_factor": 1}}, raise_errors=False)
c.equal(codes(r).get(a), 36, "create existing topic error_code (TOPIC_ALREADY_EXISTS)")
try:
    admin.create_topics({a: {"num_partitions": 3, "replication_factor": 1}})
    c.fail("create existing topic with raise_errors=True did not raise")
except TopicAlreadyExistsError:
    c.check(True, "")
except Exception as exc:  # noqa: BLE001
    c.fail(f"create existing topic raised {type(exc).__name__}: {exc}, want TopicAlreadyExistsError")

r = admin.delete_topics([a], timeout_ms=20000, raise_errors=False)
c.equal(codes(r).get(a), 0, "delete topic error_code")
try:
    wait_until(lambda: a not in admin.list_topics(), f"{a} to leave list_topics", deadline_s=15)
except TimeoutError as exc:
    c.fail(str(exc))

r = admin.delete_topics([missing], raise_errors=False)
c.equal(codes(r).get(missing), 3, "delete unknown topic error_code (UNKNOWN_TOPIC_OR_PARTITION)")
admin.close()
c.finish()
