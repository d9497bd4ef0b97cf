"""confluent-kafka: transactional producer, read_committed consumers, fencing and a
consume-transform-produce loop with send_offsets_to_transaction.

Part 1, commit/abort: one producer (transactional.id unique per run) runs three transactions
on a 2-partition topic: txn 1 commits 20 records, txn 2 produces 10 records, flushes them (so
they are in the log) and aborts, txn 3 commits 6 records; every transaction writes to both
partitions. A read_committed consumer (assign from the beginning, read to EOF) gets exactly
the committed values in production order per partition and none of the aborted ones; a
read_uncommitted consumer gets all 36. Each partition's high watermark is its record count + 3
(one commit/abort marker per transaction, as in Kafka).

Part 2, fencing: producer A (new transactional.id) begins a transaction on a 1-partition topic,
produces 5 records and flushes them. Producer B with the same transactional.id calls
init_transactions: the coordinator bumps the epoch and aborts A's transaction. A's
commit_transaction must then fail with a fatal / fenced error; B commits 3 records of its own.
read_committed sees only B's 3 records; read_uncommitted sees A's 5 too.

Part 3, consume-transform-produce: 30 plain records on a 2-partition input topic (15 each).
A consumer in a group (isolation.level=read_committed, enable.auto.commit=false) subscribes;
each polled batch is produced to an output topic as "T:" + value in one transaction together
with the consumer's next offsets (send_offsets_to_transaction) and committed. The output
(read_committed) holds every input record transformed exactly once, and consumer.committed()
reports each input partition's end (15 + 15 = 30).

Part 4: AdminClient list_transactions / describe_transactions, when the installed
confluent-kafka has them (2.16 does not; the kafka-python transactions scenario covers
ListTransactions/DescribeTransactions/DescribeProducers). Missing API = skipped sub-check.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap, ck_admin, ck_create_topics, ck_produce, log, unique_topic  # noqa: E402
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,  # noqa: E402
                             Producer, TopicPartition)

TIMEOUT_S = 30
bs = bootstrap()
c = Checks("confluent-kafka transactions")
admin = ck_admin(bs)
run_id = uuid.uuid4().hex[:8]
topic = unique_topic("ck-txn")
fence_topic = unique_topic("ck-txn-fence")
in_topic = unique_topic("ck-txn-in")
out_topic = unique_topic("ck-txn-out")
ck_create_topics(admin, {topic: 2, fence_topic: 1, in_topic: 2, out_topic: 2})


def txn_producer(txn_id, **extra):
    conf = {"bootstrap.servers": bs, "transactional.id": txn_id, "linger.ms": 5,
            "transaction.timeout.ms": 60000, "message.timeout.ms": TIMEOUT_S * 1000}
    conf.update(extra)
    return Producer(conf)


def produce_checked(p, tpc, values_by_partition, what):
    """Produces {partition: [values]} with delivery reports; flushes and checks every report."""
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(f"p{msg.partition()} {msg.value()!r}: {err}")
    for part, values in values_by_partition.items():
        for v in values:
            p.produce(tpc, value=v, partition=part, on_delivery=cb)
    left = p.flush(TIMEOUT_S)
    c.equal(left, 0, f"{what}: records left after flush")
    c.check(not errors, f"{what}: delivery failed: {errors[:3]}")


def read_all(tpc, partitions, isolation, deadline_s=TIMEOUT_S):
    """Assigns the partitions from the beginning and reads until every one reports EOF.
    Returns {partition: [(offset, value)]}."""
    cons = Consumer({"bootstrap.servers": bs, "group.id": f"compat-unused-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "enable.partition.eof": True,
                     "isolation.level": isolation})
    cons.assign([TopicPartition(tpc, p, OFFSET_BEGINNING) for p in partitions])
    got = {p: [] for p in partitions}
    at_eof = set()
    end = time.monotonic() + deadline_s
    try:
        while at_eof != set(partitions):
            if time.monotonic() >= end:
                c.fail(f"{isolation} read of {tpc}: no EOF on partitions "
                       f"{sorted(set(partitions) - at_eof)} within {deadline_s}s "
                       f"(got {({p: len(v) for p, v in got.items()})} records)")
                break
            m = cons.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                else:
                    c.fail(f"{isolation} read of {tpc}: consumer error {m.error()}")
                continue
            at_eof.discard(m.partition())
            got[m.partition()].append((m.offset(), m.value()))
    finally:
        cons.close()
    return got


def values_of(got):
    return {p: [v for _, v in recs] for p, recs in got.items()}


def kafka_error(exc):
    return exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None


# --- part 1: commit, abort, commit ------------------------------------------------------
p = txn_producer(f"compat-ck-txn-{run_id}")
p.init_transactions(TIMEOUT_S)
txns = [("c1", 20, True), ("a2", 10, False), ("c3", 6, True)]
committed = {0: [], 1: []}
everything = {0: [], 1: []}
for name, n, commit in txns:
    p.begin_transaction()
    batch = {0: [], 1: []}
    for i in range(n):
        batch[i % 2].append(b"%s-%d" % (name.encode(), i))
    produce_checked(p, topic, batch, f"txn {name}")
    if commit:
        p.commit_transaction(TIMEOUT_S)
    else:
        p.abort_transaction(TIMEOUT_S)
    for part in (0, 1):
        everything[part] += batch[part]
        if commit:
            committed[part] += batch[part]

rc = read_all(topic, [0, 1], "read_committed")
c.equal(values_of(rc), committed, "read_committed values per partition")
aborted_seen = [v for vs in values_of(rc).values() for v in vs if v.startswith(b"a2-")]
c.check(not aborted_seen, f"read_committed returned aborted records {aborted_seen[:5]}")
ru = read_all(topic, [0, 1], "read_uncommitted")
c.equal(values_of(ru), everything, "read_uncommitted values per partition")
for part in (0, 1):
    offs = [o for o, _ in ru[part]]
    c.check(offs == sorted(offs) and len(set(offs)) == len(offs),
            f"p{part}: read_uncommitted offsets not increasing: {offs}")
    # Control records take one offset each and are never handed to the application.
    c.check(len(offs) == len(everything[part]) and offs[-1] >= len(everything[part]),
            f"p{part}: offsets {offs} leave no room for transaction markers")
hw_cons = Consumer({"bootstrap.servers": bs, "group.id": f"compat-unused-{uuid.uuid4().hex}"})
for part in (0, 1):
    lo, hi = hw_cons.get_watermark_offsets(TopicPartition(topic, part), timeout=10, cached=False)
    c.equal(hi, len(everything[part]) + len(txns), f"p{part} high watermark (records + markers)")
hw_cons.close()
p.flush(5)
del p

# --- part 2: fencing ----------------------------------------------------------------------
fence_id = f"compat-ck-txn-fence-{run_id}"
pa = txn_producer(fence_id)
pa.init_transactions(TIMEOUT_S)
pa.begin_transaction()
produce_checked(pa, fence_topic, {0: [b"zombie-%d" % i for i in range(5)]}, "producer A")
pb = txn_producer(fence_id)
try:
    pb.init_transactions(TIMEOUT_S)
except KafkaException as exc:
    c.fail(f"producer B init_transactions failed: {exc}")
fence_err = None
try:
    pa.commit_transaction(TIMEOUT_S)
except KafkaException as exc:
    fence_err = kafka_error(exc)
if c.check(fence_err is not None, "producer A committed after B's init_transactions (not fenced)"):
    fenced_codes = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                    KafkaError.INVALID_PRODUCER_EPOCH)
    c.check(fence_err.fatal() or fence_err.code() in fenced_codes,
            f"producer A's commit failed, but not as fenced/fatal: {fence_err}")
    log(f"producer A's commit failed as expected: {fence_err}")
pb.begin_transaction()
produce_checked(pb, fence_topic, {0: [b"b-%d" % i for i in range(3)]}, "producer B")
pb.commit_transaction(TIMEOUT_S)
c.equal(values_of(read_all(fence_topic, [0], "read_committed")),
        {0: [b"b-0", b"b-1", b"b-2"]}, "fence topic read_committed")
c.equal(values_of(read_all(fence_topic, [0], "read_uncommitted")),
        {0: [b"zombie-%d" % i for i in range(5)] + [b"b-0", b"b-1", b"b-2"]},
        "fence topic read_uncommitted")
del pa, pb

# --- part 3: consume-transform-produce ------------------------------------------------------
K = 30
inputs = ck_produce(bs, in_topic, [(b"k%d" % i, b"in-%d" % i, i % 2) for i in range(K)])
per_part = {0: sum(1 for r in inputs if r[2] == 0), 1: sum(1 for r in inputs if r[2] == 1)}
group = f"compat-ck-txn-group-{run_id}"
cons = Consumer({"bootstrap.servers": bs, "group.id": group, "isolation.level": "read_committed",
                 "enable.auto.commit": False, "auto.offset.reset": "earliest"})
cons.subscribe([in_topic])
ctp = txn_producer(f"compat-ck-txn-ctp-{run_id}")
ctp.init_transactions(TIMEOUT_S)
processed = []
batches = 0
end = time.monotonic() + 60
while len(processed) < K:
    if time.monotonic() >= end:
        c.fail(f"consume-transform-produce: only {len(processed)} of {K} inputs within 60s")
        break
    msgs = cons.consume(num_messages=7, timeout=0.5)
    msgs = [m for m in msgs if not m.error()]
    if not msgs:
        continue
    ctp.begin_transaction()
    next_offsets = {}
    for m in msgs:
        ctp.produce(out_topic, key=m.key(), value=b"T:" + m.value(), partition=m.partition())
        next_offsets[m.partition()] = max(next_offsets.get(m.partition(), 0), m.offset() + 1)
        processed.append(m.value())
    ctp.send_offsets_to_transaction(
        [TopicPartition(in_topic, part, off) for part, off in sorted(next_offsets.items())],
        cons.consumer_group_metadata(), TIMEOUT_S)
    ctp.commit_transaction(TIMEOUT_S)
    batches += 1
log(f"consume-transform-produce: {len(processed)} inputs in {batches} transactions")
c.equal(sorted(processed), sorted(r[1] for r in inputs), "inputs processed (each once)")
got_committed = cons.committed([TopicPartition(in_topic, p) for p in (0, 1)], timeout=10)
c.equal({tp.partition: tp.offset for tp in got_committed}, per_part,
        "group's committed offsets on the input topic")
c.equal(sum(tp.offset for tp in got_committed), K, "sum of committed offsets")
cons.close()
out = values_of(read_all(out_topic, [0, 1], "read_committed"))
want_out = {part: [b"T:" + r[1] for r in inputs if r[2] == part] for part in (0, 1)}
c.equal(out, want_out, "output topic (read_committed) = transformed inputs, in order")
# A fresh member of the same group starts at the committed offsets: it reaches EOF on both
# partitions without being handed a record.
cons2 = Consumer({"bootstrap.servers": bs, "group.id": group, "isolation.level": "read_committed",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True})
cons2.subscribe([in_topic])
late, eof = [], set()
end = time.monotonic() + TIMEOUT_S
while eof != {0, 1}:
    if time.monotonic() >= end:
        c.fail(f"new group member: no EOF on {sorted({0, 1} - eof)} within {TIMEOUT_S}s")
        break
    m = cons2.poll(0.5)
    if m is None:
        continue
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            eof.add(m.partition())
            c.equal(m.offset(), per_part[m.partition()], f"new member's EOF offset on p{m.partition()}")
        continue
    late.append(m.value())
c.equal(late, [], "records re-read by a new group member after the transactional commits")
cons2.close()
ctp.flush(5)

# --- part 4: admin listing (only if this confluent-kafka has it) ---------------------------
if hasattr(admin, "list_transactions") and hasattr(admin, "describe_transactions"):
    txn_id = f"compat-ck-txn-{run_id}"
    listed = admin.list_transactions().result(TIMEOUT_S)
    ids = {getattr(t, "transactional_id", None): t for t in listed}
    c.check(txn_id in ids, f"list_transactions does not show {txn_id}")
    desc = admin.describe_transactions([txn_id])
    d = next(iter(desc.values())).result(TIMEOUT_S)
    c.check("CompleteCommit" in str(getattr(d, "state", "")).replace("_", "").title().replace(" ", "")
            or "COMPLETE_COMMIT" in str(getattr(d, "state", "")),
            f"describe_transactions state {getattr(d, 'state', None)}, want CompleteCommit")
else:
    log("skipped: AdminClient.list_transactions/describe_transactions are not in this "
        "confluent-kafka (kp_transactions.py checks them with kafka-python)")
c.finish()
