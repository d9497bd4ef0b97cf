"""confluent-kafka AdminClient: broker configs (DescribeConfigs with synonyms, dynamic values
through IncrementalAlterConfigs and legacy AlterConfigs on broker "1") and __consumer_offsets as
an internal topic in Metadata.

What confluent-kafka 2.16 (librdkafka 2.16) cannot do, and so is left to kp_admin_extra.py /
kafkajs_admin_extra.js: DescribeTopicPartitions (its describe_topics sends Metadata), the
partition reassignment APIs, ListConfigResources, include_documentation (it sends
DescribeConfigs v1, always with IncludeSynonyms=true), and the cluster-default resource
BROKER "" (ConfigResource(BROKER, "") is refused locally with ValueError; checked below).
It keys a config's synonyms by name, so a list with one name twice (per-broker and default
value of log.retention.ms) collapses: the synonym order is checked by kafka-python.

Checks:
  - describe_topics of a new 2-partition topic: partitions 0..1 led by broker 1,
    replicas = ISR = [1], not internal, a topic id;
  - describe_configs(BROKER "1"): log.retention.ms and log.cleaner.backoff.ms are not read-only,
    come from the static config or the default, have numeric values and synonyms (librdkafka
    asks for them) from the retention family with a static/default one among them;
  - incremental_alter_configs SET of both on broker "1" -> source DYNAMIC_BROKER_CONFIG with the
    new values; an invalid value is refused and changes nothing;
  - legacy alter_configs with only log.retention.ms replaces the broker's whole dynamic set:
    log.retention.ms takes the new value, log.cleaner.backoff.ms goes back to its original;
  - incremental DELETE -> original values and sources again;
  - after a consumer commits an offset for a group, list_topics shows __consumer_offsets and
    describe_topics reports it internal with led partitions.
Dynamic values set here are deleted again at the end, also when a check failed.
"""
import os
import sys
import uuid
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, log, unique_topic, wait_until  # noqa: E402
from confluent_kafka import Consumer, KafkaException, TopicCollection, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,  # noqa: E402
                                   ConfigSource, ResourceType)

T = 30
# alter_configs (legacy AlterConfigs) is what this scenario means to call.
warnings.filterwarnings("ignore", message="alter_configs has been deprecated")
STATIC_OR_DEFAULT = ("STATIC_BROKER_CONFIG", "DEFAULT_CONFIG")
RETENTION_FAMILY = {"log.retention.ms", "log.retention.minutes", "log.retention.hours"}
KEYS = ("log.retention.ms", "log.cleaner.backoff.ms")
# Far above any default, so that nothing on the broker expires because of them.
RETENTION_1 = "315360000000"
RETENTION_2 = "315360000002"
BACKOFF_1 = "17000"

bs = bootstrap()
c = Checks("confluent-kafka admin extra")
admin = ck_admin(bs)
BROKER_ID = "1"


def section(name, fn):
    """Runs one part; an exception there is a failed check, the other parts still run."""
    before = len(c.failures)
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - report and go on
        c.fail(f"{name}: {type(exc).__name__}: {exc}")
    failed = len(c.failures) - before
    log(f"{name}: {'ok' if not failed else f'{failed} failed check(s)'}")


def source(entry_or_source):
    s = getattr(entry_or_source, "source", entry_or_source)
    return ConfigSource(s).name if isinstance(s, int) else getattr(s, "name", str(s))


def describe_broker(name=BROKER_ID):
    (fut,) = admin.describe_configs([ConfigResource(ResourceType.BROKER, name)], request_timeout=T).values()
    return fut.result(timeout=T)


def incremental(name, entries):
    """entries: [(key, AlterConfigOpType, value)]. Returns None on success, else the error."""
    res = ConfigResource(ResourceType.BROKER, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, op, v in entries])
    (fut,) = admin.incremental_alter_configs([res], request_timeout=T).values()
    try:
        fut.result(timeout=T)
        return None
    except KafkaException as exc:
        return exc.args[0]


def legacy_alter(name, values):
    (fut,) = admin.alter_configs([ConfigResource(ResourceType.BROKER, name, set_config=values)],
                                 request_timeout=T).values()
    try:
        fut.result(timeout=T)
        return None
    except KafkaException as exc:
        return exc.args[0]


def value_source(cfg, key):
    e = cfg.get(key)
    return None if e is None else (e.value, source(e))


topic = unique_topic("ck-admx")
ck_create_topics(admin, {topic: 2})


def describe_topics():
    (fut,) = admin.describe_topics(TopicCollection([topic]), request_timeout=T).values()
    d = fut.result(timeout=T)
    c.equal(d.is_internal, False, f"describe_topics {topic}: is_internal")
    c.check(d.topic_id is not None, f"describe_topics {topic}: topic id {d.topic_id}")
    c.equal([(p.id, p.leader.id if p.leader else None, [r.id for r in p.replicas], [r.id for r in p.isr])
             for p in d.partitions],
            [(0, 1, [1], [1]), (1, 1, [1], [1])], f"describe_topics {topic}: partitions (id, leader, replicas, isr)")


section("describe_topics", describe_topics)

baseline = {}


def broker_configs_static():
    cfg = describe_broker()
    for key in KEYS:
        e = cfg.get(key)
        if not c.check(e is not None, f"describe_configs(broker 1) has {key} ({len(cfg)} configs)"):
            continue
        c.equal(e.is_read_only, False, f"{key} is_read_only (dynamically updatable in Kafka)")
        c.check(source(e) in STATIC_OR_DEFAULT, f"{key} source before any change: {source(e)}")
        c.check(e.value is not None and e.value.lstrip("-").isdigit(), f"{key} value {e.value!r}")
        baseline[key] = (e.value, source(e))
    e = cfg.get("log.retention.ms")
    if e is not None:
        syn = {n: (s.value, source(s)) for n, s in e.synonyms.items()}
        log(f"log.retention.ms: {e.value} {source(e)} synonyms {syn}")
        if c.check(bool(syn), "log.retention.ms has synonyms (librdkafka sends IncludeSynonyms=true)"):
            c.check(set(syn) <= RETENTION_FAMILY, f"log.retention.ms synonyms are retention settings: {syn}")
            c.check(any(src in STATIC_OR_DEFAULT for _, src in syn.values()),
                    f"log.retention.ms: a static or default synonym: {syn}")
    if "node.id" in cfg:
        c.equal(cfg["node.id"].is_read_only, True, "node.id is_read_only")


def broker_configs_dynamic():
    if set(baseline) != set(KEYS):
        c.fail("dynamic broker configs: skipped, no baseline for " + ", ".join(KEYS))
        return
    err = incremental(BROKER_ID, [("log.retention.ms", AlterConfigOpType.SET, RETENTION_1),
                                  ("log.cleaner.backoff.ms", AlterConfigOpType.SET, BACKOFF_1)])
    c.check(err is None, f"incremental_alter_configs SET on broker 1: {err}")
    cfg = describe_broker()
    c.equal(value_source(cfg, "log.retention.ms"), (RETENTION_1, "DYNAMIC_BROKER_CONFIG"),
            "log.retention.ms after SET on broker 1")
    c.equal(value_source(cfg, "log.cleaner.backoff.ms"), (BACKOFF_1, "DYNAMIC_BROKER_CONFIG"),
            "log.cleaner.backoff.ms after SET on broker 1")
    e = cfg.get("log.retention.ms")
    if e is not None:
        syn = {n: (s.value, source(s)) for n, s in e.synonyms.items()}
        c.check(any(src in STATIC_OR_DEFAULT for _, src in syn.values()),
                f"log.retention.ms: the static/default synonym is still listed: {syn}")

    err = incremental(BROKER_ID, [("log.retention.ms", AlterConfigOpType.SET, "not-a-number")])
    c.check(err is not None, "SET log.retention.ms=not-a-number must be refused")
    if err is not None:
        log(f"invalid value refused with {err.name()} ({err.code()}): {err.str()}")
    c.equal(value_source(describe_broker(), "log.retention.ms"), (RETENTION_1, "DYNAMIC_BROKER_CONFIG"),
            "log.retention.ms after the refused SET")

    # The cluster-wide default resource is BROKER "": librdkafka's Python binding refuses it.
    try:
        err = incremental("", [("log.retention.ms", AlterConfigOpType.DELETE, None)])
        c.check(err is None, f"incremental_alter_configs DELETE on BROKER \"\": {err}")
    except (ValueError, TypeError) as exc:
        log(f"note: confluent-kafka refuses ConfigResource(BROKER, \"\") locally ({exc}); "
            "the cluster default is covered by kp_admin_extra.py")

    err = legacy_alter(BROKER_ID, {"log.retention.ms": RETENTION_2})
    c.check(err is None, f"alter_configs (legacy) on broker 1: {err}")
    cfg = describe_broker()
    c.equal(value_source(cfg, "log.retention.ms"), (RETENTION_2, "DYNAMIC_BROKER_CONFIG"),
            "log.retention.ms after legacy alter_configs")
    c.equal(value_source(cfg, "log.cleaner.backoff.ms"), baseline["log.cleaner.backoff.ms"],
            "log.cleaner.backoff.ms after a legacy alter_configs without it "
            "(AlterConfigs replaces the broker's whole dynamic set, as in Kafka)")

    err = incremental(BROKER_ID, [(k, AlterConfigOpType.DELETE, None) for k in KEYS])
    c.check(err is None, f"incremental_alter_configs DELETE on broker 1: {err}")
    cfg = describe_broker()
    for key in KEYS:
        c.equal(value_source(cfg, key), baseline[key], f"{key} after DELETE (reverted)")


def restore():
    try:
        err = incremental(BROKER_ID, [(k, AlterConfigOpType.DELETE, None) for k in KEYS])
        if err is not None:
            log(f"cleanup: DELETE on broker 1: {err}")
    except Exception as exc:  # noqa: BLE001
        log(f"cleanup: DELETE on broker 1 failed: {type(exc).__name__}: {exc}")


section("broker configs", broker_configs_static)
try:
    section("dynamic broker configs", broker_configs_dynamic)
finally:
    restore()


def consumer_offsets_internal():
    group = f"compat-ck-admx-{uuid.uuid4().hex[:8]}"
    cons = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    try:
        cons.assign([TopicPartition(topic, 0, 0)])
        cons.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
        (tp,) = cons.committed([TopicPartition(topic, 0)], timeout=T)
        c.equal(tp.offset, 0, "offset committed by the group")
    finally:
        cons.close()
    wait_until(lambda: "__consumer_offsets" in admin.list_topics(timeout=10).topics,
               "__consumer_offsets in list_topics after an offset commit", deadline_s=20)
    (fut,) = admin.describe_topics(TopicCollection(["__consumer_offsets"]), request_timeout=T).values()
    d = fut.result(timeout=T)
    c.equal(d.is_internal, True, "describe_topics __consumer_offsets: is_internal")
    c.check(len(d.partitions) > 0 and all(p.leader is not None and p.leader.id == 1 for p in d.partitions),
            f"describe_topics __consumer_offsets: partitions led by broker 1: "
            f"{[(p.id, p.leader.id if p.leader else None) for p in d.partitions][:5]}")
    md = admin.list_topics(timeout=10).topics["__consumer_offsets"]
    c.check(md.error is None and len(md.partitions) == len(d.partitions),
            f"list_topics __consumer_offsets: error {md.error}, {len(md.partitions)} partitions")


section("__consumer_offsets", consumer_offsets_internal)

try:
    for fut in admin.delete_topics([topic], operation_timeout=T, request_timeout=T).values():
        fut.result(timeout=T)
except Exception as exc:  # noqa: BLE001
    log(f"cleanup: delete_topics failed: {exc}")
c.finish()
