"""kafka-python: DescribeTopicPartitions, partition reassignments, ListConfigResources, broker
configs (synonyms, documentation, dynamic per-broker and cluster-default values) and
__consumer_offsets as an internal topic.

kafka-python 3.0.x is the only client installed here with DescribeTopicPartitions (API 75) and
ListConfigResources (API 74); with kafkajs it is one of two with the reassignment APIs (45, 46).
Its public describe/alter_configs insist on an integer broker name, so the cluster-default
resource (BROKER "") and include_documentation go through kafka-python's own request classes
on its own connection (`_manager.send`), the way its admin methods send them.

Checks:
  - describe_topic_partitions of two topics (3 and 2 partitions): sorted by name, no errors,
    not internal, the topic ids Metadata reports, partitions 0..n-1 led by broker 1 with
    replicas = ISR = [1]; paging with response_partition_limit 2 gives a/[0,1] -> cursor (a, 2),
    a/[2] + b/[0] -> cursor (b, 1), b/[1] -> no cursor; limit 3 ends exactly after a and gives
    cursor (b, 0); an unknown topic gets UNKNOWN_TOPIC_OR_PARTITION;
  - list_partition_reassignments (all, and for the topic) is empty; alter to [1] succeeds, to
    [2] is INVALID_REPLICA_ASSIGNMENT, cancelling (None) is NO_REASSIGNMENT_IN_PROGRESS, an
    unknown topic is UNKNOWN_TOPIC_OR_PARTITION, a mixed request gets per-partition results;
    nothing is listed afterwards and the replicas are still [1];
  - list_config_resources: TOPIC lists both topics (and only the topic type), BROKER lists
    exactly ["1"], no filter lists both;
  - describe_configs of broker "1" (config_filter all): the usual Kafka broker configs exist,
    log.retention.ms / log.cleaner.backoff.ms are not read-only and node.id is, no synonyms and
    no documentation unless asked; with include_synonyms log.retention.ms has synonyms (first one
    = the entry's own source, a static/default one present, names from the retention family);
    with include_documentation (request v3+) it has a non-empty documentation text;
  - IncrementalAlterConfigs SET on broker "1" -> DYNAMIC_BROKER_CONFIG (first synonym), then SET
    on the cluster default "" -> "" lists only DYNAMIC_DEFAULT_BROKER_CONFIG entries, broker "1"
    keeps its own value ahead of the default synonym; DELETE on "1" -> the default shows through,
    DELETE on "" -> the original value and source come back; an invalid value and a read-only
    config are refused without changing anything; legacy AlterConfigs (incremental=False) sets
    and reset_configs clears a value on broker "1";
  - after a consumer commits an offset for a group, list_topics / describe_topics show
    __consumer_offsets with is_internal true and led partitions, and DescribeTopicPartitions
    reports it internal too.
Dynamic values changed here are deleted again at the end, also when a check failed.
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, log, unique_topic, wait_until  # noqa: E402
import kafka.errors as Errors  # noqa: E402
from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from kafka.admin import (AlterConfigOp, ConfigResource, ConfigResourceType,  # noqa: E402
                         KafkaAdminClient, NewTopic)
from kafka.protocol.admin import (AlterConfigsRequest, AlterPartitionReassignmentsRequest,  # noqa: E402
                                  DescribeConfigsRequest, DescribeTopicPartitionsRequest,
                                  IncrementalAlterConfigsRequest, ListConfigResourcesRequest,
                                  ListPartitionReassignmentsRequest)
from kafka.structs import OffsetAndMetadata  # noqa: E402

BROKER = ConfigResourceType.BROKER
SRC = {1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
       4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG"}
STATIC_OR_DEFAULT = ("STATIC_BROKER_CONFIG", "DEFAULT_CONFIG")
RETENTION_FAMILY = {"log.retention.ms", "log.retention.minutes", "log.retention.hours"}
# Broker configs every Kafka broker describes (KafkaConfig names); gregor should list them too.
EXPECTED_BROKER_CONFIGS = [
    "node.id", "broker.id", "advertised.listeners", "log.dirs", "num.partitions",
    "default.replication.factor", "min.insync.replicas", "auto.create.topics.enable",
    "message.max.bytes", "log.segment.bytes", "log.roll.ms", "log.retention.ms",
    "log.retention.minutes", "log.retention.hours", "log.retention.bytes",
    "log.cleanup.policy", "log.cleaner.enable", "log.cleaner.backoff.ms", "compression.type",
    "offsets.topic.num.partitions", "offsets.retention.minutes",
    "group.initial.rebalance.delay.ms", "transaction.max.timeout.ms",
]
# Far above any default (10 and 20 years), so that nothing on the broker expires because of them.
RETENTION_BROKER = "315360000000"
RETENTION_DEFAULT = "630720000000"
BACKOFF_BROKER = "16000"

bs = bootstrap()
c = Checks("kafka-python admin extra")
admin = KafkaAdminClient(bootstrap_servers=bs, client_id="gregor-compat", request_timeout_ms=20000)


def section(name, fn):
    """Runs one part; an exception there is a failed check, the other parts still run."""
    before = len(c.failures)
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - report and go on
        c.fail(f"{name}: {type(exc).__name__}: {exc}")
    failed = len(c.failures) - before
    log(f"{name}: {'ok' if not failed else f'{failed} failed check(s)'}")


def raw_send(request, node_id=None):
    """Sends a kafka-python request object on the admin client's connection and returns the
    response (for what the public methods cannot express)."""
    async def send():
        return await admin._manager.send(request, node_id=node_id)
    return admin._manager.run(send)


def negotiated(request_class):
    try:
        return f"v{admin._manager.broker_version_data.api_version(request_class)}"
    except Exception as exc:  # noqa: BLE001
        return f"none ({type(exc).__name__})"


broker_id = admin.describe_cluster()["brokers"][0]["broker_id"]
c.equal(broker_id, 1, "node id of the only broker")
log("versions kafka-python will use: " + ", ".join(
    f"{cls.__name__.replace('Request', '')} {negotiated(cls)}" for cls in (
        DescribeTopicPartitionsRequest, ListPartitionReassignmentsRequest,
        AlterPartitionReassignmentsRequest, ListConfigResourcesRequest, DescribeConfigsRequest,
        IncrementalAlterConfigsRequest, AlterConfigsRequest)))

base = unique_topic("kp-admx")
ta, tb = f"{base}-a", f"{base}-b"   # ta < tb: DescribeTopicPartitions sorts by name
missing = unique_topic("kp-admx-never-created")
admin.create_topics([NewTopic(ta, 3, 1), NewTopic(tb, 2, 1)], timeout_ms=20000)
wait_until(lambda: {ta, tb} <= set(admin.list_topics()), f"{ta} and {tb} in list_topics",
           deadline_s=15)


# --- DescribeTopicPartitions ------------------------------------------------------------------

def parts(topic_dict):
    return [p["partition_index"] for p in topic_dict["partitions"]]


def page(limit=2000, cursor=None, topics=(ta, tb)):
    res = admin.describe_topic_partitions(list(topics), response_partition_limit=limit, cursor=cursor)
    return [(t["name"], parts(t)) for t in res["topics"]], res["next_cursor"], res


def describe_topic_partitions():
    metadata_ids = {t["name"]: t.get("topic_id") for t in admin.describe_topics([ta, tb])}
    got, cursor, res = page()
    c.equal(got, [(ta, [0, 1, 2]), (tb, [0, 1])], "DescribeTopicPartitions: topics and partitions")
    c.equal(cursor, None, "DescribeTopicPartitions: next cursor when everything fit")
    for t in res["topics"]:
        name = t["name"]
        c.equal(t["error_code"], 0, f"DescribeTopicPartitions {name}: error code")
        c.equal(t["is_internal"], False, f"DescribeTopicPartitions {name}: is_internal")
        tid = t["topic_id"]
        c.check(tid is not None and str(tid) != "00000000-0000-0000-0000-000000000000",
                f"DescribeTopicPartitions {name}: topic id {tid}")
        if metadata_ids.get(name) is not None:
            c.equal(str(tid), str(metadata_ids[name]), f"DescribeTopicPartitions {name}: topic id = Metadata's")
        for p in t["partitions"]:
            where = f"DescribeTopicPartitions {name}/{p['partition_index']}"
            c.equal(p["error_code"], 0, f"{where}: error code")
            c.equal(p["leader_id"], broker_id, f"{where}: leader")
            c.check(p["leader_epoch"] >= 0, f"{where}: leader epoch {p['leader_epoch']}")
            c.equal(p["replica_nodes"], [broker_id], f"{where}: replicas")
            c.equal(p["isr_nodes"], [broker_id], f"{where}: ISR")
            c.equal(p["offline_replicas"], [], f"{where}: offline replicas")

    # Paging: Kafka fills pages in name order, the cursor names the next partition to return.
    got, cursor, _ = page(limit=2)
    c.equal(got, [(ta, [0, 1])], "DescribeTopicPartitions limit 2, page 1")
    c.equal(cursor, {"topic_name": ta, "partition_index": 2}, "DescribeTopicPartitions page 1 cursor")
    if cursor:
        got, cursor, _ = page(limit=2, cursor=cursor)
        c.equal(got, [(ta, [2]), (tb, [0])], "DescribeTopicPartitions limit 2, page 2")
        c.equal(cursor, {"topic_name": tb, "partition_index": 1}, "DescribeTopicPartitions page 2 cursor")
    if cursor:
        got, cursor, _ = page(limit=2, cursor=cursor)
        c.equal(got, [(tb, [1])], "DescribeTopicPartitions limit 2, page 3")
        c.equal(cursor, None, "DescribeTopicPartitions page 3 cursor (last page)")
    got, cursor, _ = page(limit=3)
    c.equal(got, [(ta, [0, 1, 2])], "DescribeTopicPartitions limit 3 (exactly topic a)")
    c.equal(cursor, {"topic_name": tb, "partition_index": 0},
            "DescribeTopicPartitions limit 3 cursor (start of the next topic)")

    res = admin.describe_topic_partitions([missing])
    c.equal([(t["name"], t["error_code"]) for t in res["topics"]], [(missing, 3)],
            "DescribeTopicPartitions of an unknown topic (UNKNOWN_TOPIC_OR_PARTITION = 3)")


section("DescribeTopicPartitions", describe_topic_partitions)


# --- partition reassignments ------------------------------------------------------------------

def err_code(e):
    """None for success, else the Kafka error code of kafka-python's error class."""
    return None if e is None else getattr(e, "errno", e)


def reassignments():
    c.equal(admin.list_partition_reassignments(), {}, "list_partition_reassignments (all)")
    c.equal(admin.list_partition_reassignments({ta: [0, 1, 2]}), {},
            f"list_partition_reassignments({ta})")
    cases = [
        ({TopicPartition(ta, 0): [broker_id]}, {TopicPartition(ta, 0): None},
         "alter to the current replicas [1] (a no-op)"),
        ({TopicPartition(ta, 1): [2]}, {TopicPartition(ta, 1): 39},
         "alter to unknown broker [2]"),
        ({TopicPartition(ta, 2): None}, {TopicPartition(ta, 2): 85},
         "cancel (None) with nothing in progress"),
        ({TopicPartition(missing, 0): [broker_id]},
         {TopicPartition(missing, 0): 3}, "alter on an unknown topic"),
        ({TopicPartition(tb, 0): [broker_id], TopicPartition(tb, 1): [broker_id, 2]},
         {TopicPartition(tb, 0): None, TopicPartition(tb, 1): 39},
         "mixed request, per-partition results"),
    ]
    for request, want, what in cases:
        try:
            got = admin.alter_partition_reassignments(request, timeout_ms=20000)
            c.equal({tp: err_code(e) for tp, e in got.items()}, want,
                    f"alter_partition_reassignments: {what} (codes: 39 INVALID_REPLICA_ASSIGNMENT, "
                    "85 NO_REASSIGNMENT_IN_PROGRESS, 3 UNKNOWN_TOPIC_OR_PARTITION)")
        except Exception as exc:  # noqa: BLE001
            c.fail(f"alter_partition_reassignments: {what}: raised {type(exc).__name__}: {exc}")
    c.equal(admin.list_partition_reassignments(), {}, "list_partition_reassignments afterwards")
    res = admin.describe_topic_partitions([ta, tb])
    c.equal({(t["name"], p["partition_index"]): p["replica_nodes"] for t in res["topics"] for p in t["partitions"]},
            {(ta, 0): [1], (ta, 1): [1], (ta, 2): [1], (tb, 0): [1], (tb, 1): [1]},
            "replicas after the reassignment requests")


section("partition reassignments", reassignments)


# --- ListConfigResources ----------------------------------------------------------------------

def list_config_resources():
    got = admin.list_config_resources(["TOPIC"])
    c.equal(sorted(got), ["topic"], "list_config_resources(TOPIC): resource types returned")
    c.check({ta, tb} <= set(got.get("topic", [])),
            f"list_config_resources(TOPIC) lists {ta} and {tb}: {sorted(got.get('topic', []))[:10]}")
    c.equal(admin.list_config_resources(["BROKER"]), {"broker": [str(broker_id)]},
            "list_config_resources(BROKER)")
    got = admin.list_config_resources()
    c.check({ta, tb} <= set(got.get("topic", [])), "list_config_resources() lists the topics")
    c.equal(got.get("broker"), [str(broker_id)], "list_config_resources() lists the broker")


section("ListConfigResources", list_config_resources)


# --- broker configs ---------------------------------------------------------------------------

def describe_broker(keys=None, synonyms=True, config_filter="all"):
    """{name: entry dict} for broker "1" through the public describe_configs."""
    res = admin.describe_configs([ConfigResource(BROKER, str(broker_id), keys)],
                                 include_synonyms=synonyms, config_filter=config_filter)
    return res.get("broker", {}).get(str(broker_id), {})


def raw_describe(name, keys=None, synonyms=True, documentation=False):
    """{config name: DescribeConfigs result entry} for BROKER `name` via the request class."""
    req = DescribeConfigsRequest(resources=[(BROKER, name, keys)], include_synonyms=synonyms,
                                 include_documentation=documentation,
                                 min_version=3 if documentation else 1)
    resp = raw_send(req, node_id=broker_id)
    (result,) = resp.results
    if result.error_code:
        raise RuntimeError(f"DescribeConfigs BROKER {name!r}: error {result.error_code} {result.error_message}")
    return {e.name: e for e in result.configs}


def raw_incremental(name, ops):
    """IncrementalAlterConfigs on BROKER `name`: ops = [(key, AlterConfigOp, value)]."""
    req = IncrementalAlterConfigsRequest(
        resources=[(BROKER, name, [(k, int(op), v) for k, op, v in ops])], validate_only=False)
    resp = raw_send(req, node_id=broker_id)
    errors = [(r.resource_name, r.error_code, r.error_message) for r in resp.responses if r.error_code]
    if errors:
        log(f"IncrementalAlterConfigs BROKER {name!r} errors: {errors}")
    return [(r.resource_name, r.error_code) for r in resp.responses]


def syn(entry):
    return [(s["name"], s["value"], s["source"]) for s in entry.get("synonyms", [])]


baseline = {}


def broker_configs_static():
    plain = describe_broker(synonyms=False)
    missing_names = [n for n in EXPECTED_BROKER_CONFIGS if n not in plain]
    c.check(not missing_names, f"describe_configs(broker 1): Kafka broker configs missing: {missing_names}")
    c.check(len(plain) >= len(EXPECTED_BROKER_CONFIGS), f"describe_configs(broker 1): {len(plain)} configs")
    for name in ("log.retention.ms", "log.cleaner.backoff.ms"):
        e = plain.get(name)
        if not c.check(e is not None, f"describe_configs(broker 1) has {name}"):
            continue
        c.equal(e["read_only"], False, f"{name} read_only (dynamically updatable in Kafka)")
        c.check(e["config_source"] in STATIC_OR_DEFAULT,
                f"{name} source before any change: {e['config_source']}, want one of {STATIC_OR_DEFAULT}")
        c.check(e["value"] is not None and e["value"].lstrip("-").isdigit(), f"{name} value {e['value']!r}")
        c.equal(syn(e), [], f"{name} synonyms when include_synonyms is false")
        if "documentation" in e:
            c.equal(e["documentation"], None, f"{name} documentation when not asked")
        baseline[name] = (e["value"], e["config_source"])
    if "node.id" in plain:
        c.equal(plain["node.id"]["read_only"], True, "node.id read_only")
        c.equal(plain["node.id"]["value"], str(broker_id), "node.id value")
    undocumented = [n for n, e in plain.items() if e.get("documentation") is not None]
    c.check(not undocumented, f"configs with documentation although not asked: {undocumented[:5]}")

    withsyn = describe_broker(["log.retention.ms", "log.cleaner.backoff.ms"])
    c.equal(sorted(withsyn), ["log.cleaner.backoff.ms", "log.retention.ms"],
            "describe_configs with configuration keys returns exactly those keys")
    e = withsyn.get("log.retention.ms")
    if e is not None:
        s = syn(e)
        log(f"log.retention.ms: value {e['value']} source {e['config_source']} synonyms {s}")
        if c.check(bool(s), "log.retention.ms has synonyms when include_synonyms is true"):
            c.equal(s[0][2], e["config_source"], "log.retention.ms: first synonym's source = entry source")
            c.check(any(src in STATIC_OR_DEFAULT for _, _, src in s),
                    f"log.retention.ms: a static or default synonym: {s}")
            c.check({n for n, _, _ in s} <= RETENTION_FAMILY,
                    f"log.retention.ms synonyms are retention settings: {s}")

    docs = raw_describe(str(broker_id), ["log.retention.ms"], synonyms=False, documentation=True)
    d = docs.get("log.retention.ms")
    c.check(d is not None and isinstance(d.documentation, str) and d.documentation.strip() != "",
            f"log.retention.ms documentation when include_documentation is true: "
            f"{None if d is None else d.documentation!r}")
    docs = raw_describe(str(broker_id), ["log.retention.ms"], synonyms=False, documentation=False)
    d = docs.get("log.retention.ms")
    c.check(d is not None and d.documentation is None,
            f"log.retention.ms documentation with include_documentation false (v3+ request): "
            f"{None if d is None else d.documentation!r}")


def broker_configs_dynamic():
    if "log.retention.ms" not in baseline or "log.cleaner.backoff.ms" not in baseline:
        c.fail("dynamic broker configs: skipped, no baseline for log.retention.ms / log.cleaner.backoff.ms")
        return
    one = ConfigResource(BROKER, str(broker_id),
                         {"log.retention.ms": RETENTION_BROKER, "log.cleaner.backoff.ms": BACKOFF_BROKER})
    # raise_on_unknown=False: the broker, not kafka-python's read_only pre-check (tested above),
    # decides.
    c.equal(admin.alter_configs([one], raise_on_unknown=False), {"broker": {str(broker_id): "OK"}},
            "IncrementalAlterConfigs SET on broker 1")
    cfg = describe_broker(["log.retention.ms", "log.cleaner.backoff.ms"])
    e = cfg.get("log.retention.ms", {})
    c.equal((e.get("value"), e.get("config_source")), (RETENTION_BROKER, "DYNAMIC_BROKER_CONFIG"),
            "log.retention.ms after SET on broker 1")
    s = syn(e)
    c.check(s[:1] == [("log.retention.ms", RETENTION_BROKER, "DYNAMIC_BROKER_CONFIG")],
            f"log.retention.ms: first synonym is the per-broker value: {s}")
    c.check(any(src in STATIC_OR_DEFAULT for _, _, src in s[1:]),
            f"log.retention.ms: the static/default synonym stays behind it: {s}")
    e = cfg.get("log.cleaner.backoff.ms", {})
    c.equal((e.get("value"), e.get("config_source")), (BACKOFF_BROKER, "DYNAMIC_BROKER_CONFIG"),
            "log.cleaner.backoff.ms after SET on broker 1")
    modified = describe_broker(config_filter="modified", synonyms=False)
    c.equal(sorted(modified), ["log.cleaner.backoff.ms", "log.retention.ms"],
            "describe_configs(config_filter=modified) = the two dynamic values")

    c.equal(raw_incremental("", [("log.retention.ms", AlterConfigOp.SET, RETENTION_DEFAULT)]),
            [("", 0)], "IncrementalAlterConfigs SET on the cluster default (BROKER \"\")")
    dflt = {k: (v.value, SRC.get(v.config_source, v.config_source)) for k, v in raw_describe("").items()}
    want = {"log.retention.ms": (RETENTION_DEFAULT, "DYNAMIC_DEFAULT_BROKER_CONFIG")}
    c.check(dflt == want, f"DescribeConfigs BROKER \"\" lists only the dynamic cluster defaults: got "
            f"{len(dflt)} entries {dict(list(dflt.items())[:4])}{' ...' if len(dflt) > 4 else ''}, want {want}")
    e = describe_broker(["log.retention.ms"]).get("log.retention.ms", {})
    c.equal((e.get("value"), e.get("config_source")), (RETENTION_BROKER, "DYNAMIC_BROKER_CONFIG"),
            "broker 1 keeps its own value over the cluster default")
    c.equal(syn(e)[:2], [("log.retention.ms", RETENTION_BROKER, "DYNAMIC_BROKER_CONFIG"),
                         ("log.retention.ms", RETENTION_DEFAULT, "DYNAMIC_DEFAULT_BROKER_CONFIG")],
            "log.retention.ms synonyms: per-broker, then cluster default")

    # Refused changes leave everything as it was.
    res = admin.alter_configs([ConfigResource(BROKER, str(broker_id), {"log.retention.ms": "not-a-number"})],
                             raise_on_unknown=False)
    c.check(res.get("broker", {}).get(str(broker_id)) not in (None, "OK"),
            f"SET log.retention.ms=not-a-number must be refused: {res}")
    res = admin.alter_configs([ConfigResource(BROKER, str(broker_id), {"node.id": "7"})], raise_on_unknown=False)
    c.check(res.get("broker", {}).get(str(broker_id)) not in (None, "OK"),
            f"SET of read-only node.id must be refused: {res}")
    e = describe_broker(["log.retention.ms", "node.id"], synonyms=False)
    c.equal(e.get("log.retention.ms", {}).get("value"), RETENTION_BROKER, "log.retention.ms after refused SETs")
    c.equal(e.get("node.id", {}).get("value"), str(broker_id), "node.id after refused SET")

    delete = ConfigResource(BROKER, str(broker_id), {"log.retention.ms": (AlterConfigOp.DELETE, None),
                                                     "log.cleaner.backoff.ms": (AlterConfigOp.DELETE, None)})
    c.equal(admin.alter_configs([delete], raise_on_unknown=False), {"broker": {str(broker_id): "OK"}},
            "IncrementalAlterConfigs DELETE on broker 1")
    cfg = describe_broker(["log.retention.ms", "log.cleaner.backoff.ms"])
    e = cfg.get("log.retention.ms", {})
    c.equal((e.get("value"), e.get("config_source")), (RETENTION_DEFAULT, "DYNAMIC_DEFAULT_BROKER_CONFIG"),
            "log.retention.ms after DELETE on broker 1 (the cluster default shows through)")
    c.equal(syn(e)[:1], [("log.retention.ms", RETENTION_DEFAULT, "DYNAMIC_DEFAULT_BROKER_CONFIG")],
            "log.retention.ms first synonym after DELETE on broker 1")
    e = cfg.get("log.cleaner.backoff.ms", {})
    c.equal((e.get("value"), e.get("config_source")), baseline["log.cleaner.backoff.ms"],
            "log.cleaner.backoff.ms after DELETE (reverted)")

    c.equal(raw_incremental("", [("log.retention.ms", AlterConfigOp.DELETE, None)]), [("", 0)],
            "IncrementalAlterConfigs DELETE on the cluster default")
    e = describe_broker(["log.retention.ms"]).get("log.retention.ms", {})
    c.equal((e.get("value"), e.get("config_source")), baseline["log.retention.ms"],
            "log.retention.ms after both DELETEs (reverted)")
    left = sorted(raw_describe(""))
    c.check(not left, f"DescribeConfigs BROKER \"\" after the DELETE lists nothing: got {len(left)} entries "
            f"{left[:4]}{' ...' if len(left) > 4 else ''}")

    # Legacy AlterConfigs: the request carries the resource's whole dynamic set.
    one = ConfigResource(BROKER, str(broker_id), {"log.retention.ms": RETENTION_BROKER})
    c.equal(admin.alter_configs([one], incremental=False, raise_on_unknown=False), {"broker": {str(broker_id): "OK"}},
            "AlterConfigs (legacy) on broker 1")
    e = describe_broker(["log.retention.ms"]).get("log.retention.ms", {})
    c.equal((e.get("value"), e.get("config_source")), (RETENTION_BROKER, "DYNAMIC_BROKER_CONFIG"),
            "log.retention.ms after legacy AlterConfigs")
    c.equal(admin.reset_configs([ConfigResource(BROKER, str(broker_id), ["log.retention.ms"])],
                                incremental=False, raise_on_unknown=False),
            {"broker": {str(broker_id): "OK"}}, "reset_configs (legacy AlterConfigs without the key)")
    e = describe_broker(["log.retention.ms"]).get("log.retention.ms", {})
    c.equal((e.get("value"), e.get("config_source")), baseline["log.retention.ms"],
            "log.retention.ms after legacy reset (reverted)")


def restore_broker_configs():
    """Whatever happened above, leave no dynamic value behind for later scenarios."""
    for name in ("", str(broker_id)):
        try:
            res = raw_incremental(name, [("log.retention.ms", AlterConfigOp.DELETE, None),
                                         ("log.cleaner.backoff.ms", AlterConfigOp.DELETE, None)])
            if any(code for _, code in res):
                log(f"cleanup: DELETE on BROKER {name!r}: {res}")
        except Exception as exc:  # noqa: BLE001
            log(f"cleanup: DELETE on BROKER {name!r} failed: {type(exc).__name__}: {exc}")


section("broker configs", broker_configs_static)
try:
    section("dynamic broker configs", broker_configs_dynamic)
finally:
    restore_broker_configs()


# --- __consumer_offsets -----------------------------------------------------------------------

def consumer_offsets_internal():
    group = f"compat-kp-admx-{uuid.uuid4().hex[:8]}"
    cons = KafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False,
                         request_timeout_ms=20000)
    try:
        tp = TopicPartition(ta, 0)
        cons.assign([tp])
        cons.commit({tp: OffsetAndMetadata(0, "admin-extra", -1)})
        c.equal(cons.committed(tp), 0, "offset committed by the group")
    finally:
        cons.close()
    wait_until(lambda: "__consumer_offsets" in admin.list_topics(),
               "__consumer_offsets in list_topics after an offset commit", deadline_s=20)
    (t,) = admin.describe_topics(["__consumer_offsets"])
    c.equal(t["error_code"], 0, "Metadata __consumer_offsets: error code")
    c.equal(t["is_internal"], True, "Metadata __consumer_offsets: is_internal")
    c.check(len(t["partitions"]) > 0 and all(p["leader_id"] == broker_id for p in t["partitions"]),
            f"Metadata __consumer_offsets: partitions led by the broker: "
            f"{[(p['partition_index'], p['leader_id']) for p in t['partitions']][:5]}")
    everything = {t["name"]: t["is_internal"] for t in admin.describe_topics()}
    c.equal(everything.get("__consumer_offsets"), True, "Metadata (all topics): __consumer_offsets internal")
    c.equal((everything.get(ta), everything.get(tb)), (False, False), "Metadata (all topics): our topics not internal")
    res = admin.describe_topic_partitions(["__consumer_offsets"])
    c.equal([(t["name"], t["error_code"], t["is_internal"]) for t in res["topics"]],
            [("__consumer_offsets", 0, True)], "DescribeTopicPartitions __consumer_offsets")


section("__consumer_offsets", consumer_offsets_internal)

try:
    admin.delete_topics([ta, tb], timeout_ms=20000)
except Exception as exc:  # noqa: BLE001
    log(f"cleanup: delete_topics failed: {exc}")
admin.close()
c.finish()
