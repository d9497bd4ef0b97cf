"""kafka-python: KafkaProducer(transactional_id=...) commits and aborts, read_committed and
read_uncommitted KafkaConsumers, send_offsets_to_transaction, and the transaction admin APIs
(ListTransactions, DescribeTransactions, DescribeProducers through KafkaAdminClient).

On a 2-partition topic: txn 1 commits 12 records; txn 2 sends 8 records, flushes them and,
while it is still open, DescribeTransactions must say Ongoing with both partitions,
ListTransactions must list the id, and DescribeProducers on p0 must show the producer with
current_transaction_start_offset = the offset of txn 2's first record there; then it aborts.
txn 3 commits 4 records plus offset 5 on an input partition for a consumer group
(send_offsets_to_transaction with the group id). Afterwards DescribeTransactions says
CompleteCommit with no partitions, the group's committed offset is 5, a read_committed
consumer gets exactly the 16 committed values in order per partition and a read_uncommitted
consumer gets all 24.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import (Checks, bootstrap, ck_admin, ck_create_topics, log, unique_topic,  # noqa: E402
                    wait_until)
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402

TIMEOUT_S = 30
bs = bootstrap()
c = Checks("kafka-python transactions")
run_id = uuid.uuid4().hex[:8]
topic = unique_topic("kp-txn")
in_topic = unique_topic("kp-txn-in")
ck_create_topics(ck_admin(bs), {topic: 2, in_topic: 1})
txn_id = f"compat-kp-txn-{run_id}"
group = f"compat-kp-txn-group-{run_id}"
tps = [TopicPartition(topic, p) for p in (0, 1)]

prod = KafkaProducer(bootstrap_servers=bs, transactional_id=txn_id, linger_ms=5,
                     request_timeout_ms=15000)
prod.init_transactions()
admin = KafkaAdminClient(bootstrap_servers=bs, client_id="gregor-compat", request_timeout_ms=20000)


def send_batch(name, n):
    """Sends n records alternating over both partitions; returns {partition: [(offset, value)]}."""
    futures = []
    for i in range(n):
        v = b"%s-%d" % (name.encode(), i)
        futures.append((v, prod.send(topic, value=v, partition=i % 2)))
    prod.flush(TIMEOUT_S)
    out = {0: [], 1: []}
    for v, f in futures:
        try:
            md = f.get(timeout=TIMEOUT_S)
            out[md.partition].append((md.offset, v))
        except Exception as exc:  # noqa: BLE001
            c.fail(f"{name}: send of {v!r} failed: {type(exc).__name__}: {exc}")
    return out


def state_name(state):
    return getattr(state, "value", state)


committed = {0: [], 1: []}
everything = {0: [], 1: []}

# txn 1: commit
prod.begin_transaction()
b1 = send_batch("c1", 12)
prod.commit_transaction()

# txn 2: flushed, inspected while open, then aborted
prod.begin_transaction()
b2 = send_batch("a2", 8)
desc = admin.describe_transactions([txn_id]).get(txn_id)
producer_id = None
if c.check(desc is not None, f"describe_transactions has no entry for {txn_id}"):
    producer_id = desc.producer_id
    c.equal(state_name(desc.state), "Ongoing", "describe_transactions state of the open txn")
    c.equal(sorted(desc.topic_partitions), sorted(tps), "partitions of the open txn")
    c.check(desc.producer_id >= 0 and desc.producer_epoch >= 0,
            f"describe_transactions producer id/epoch {desc.producer_id}/{desc.producer_epoch}")
listed = [t for ts in admin.list_transactions().values() for t in ts if t.transactional_id == txn_id]
if c.check(len(listed) == 1, f"list_transactions shows {txn_id} {len(listed)} times"):
    c.equal(state_name(listed[0].state), "Ongoing", "list_transactions state of the open txn")
    c.equal(listed[0].producer_id, producer_id, "list_transactions producer id")
ongoing_only = [t.transactional_id for ts in admin.list_transactions(state_filters=["Ongoing"]).values()
                for t in ts]
c.check(txn_id in ongoing_only, "list_transactions(state_filters=[Ongoing]) misses the open txn")
prods = admin.describe_producers([tps[0]]).get(tps[0])
mine = [s for s in (prods.active_producers if prods else []) if s.producer_id == producer_id]
if c.check(len(mine) == 1, f"describe_producers p0: producer {producer_id} not among "
                           f"{prods.active_producers if prods else None}"):
    c.equal(mine[0].current_transaction_start_offset, b2[0][0][0] if b2[0] else None,
            "describe_producers current_transaction_start_offset of the open txn")
prod.abort_transaction()

# txn 3: commit, with a consumer group offset
prod.begin_transaction()
b3 = send_batch("c3", 4)
prod.send_offsets_to_transaction({TopicPartition(in_topic, 0): OffsetAndMetadata(5, "", -1)}, group)
prod.commit_transaction()

for batch, is_committed in ((b1, True), (b2, False), (b3, True)):
    for part in (0, 1):
        everything[part] += [v for _, v in batch[part]]
        if is_committed:
            committed[part] += [v for _, v in batch[part]]

# Kafka answers EndTxn once PrepareCommit is logged and writes the markers afterwards, so the
# coordinator may still say PrepareCommit for a moment.
try:
    desc = wait_until(lambda: next((d for d in [admin.describe_transactions([txn_id]).get(txn_id)]
                                    if d is not None and state_name(d.state) == "CompleteCommit"), None),
                      "describe_transactions to say CompleteCommit", deadline_s=15)
except TimeoutError as exc:
    c.fail(str(exc))
    desc = admin.describe_transactions([txn_id]).get(txn_id)
if c.check(desc is not None, f"describe_transactions has no entry for {txn_id} after commit"):
    c.equal(state_name(desc.state), "CompleteCommit", "describe_transactions state after commit")
    # Kafka empties the partition set when a transaction completes (prepareComplete).
    c.equal(sorted(desc.topic_partitions), [], "describe_transactions partitions after commit")
    c.equal(desc.producer_id, producer_id, "producer id after commit")
listed = [t for ts in admin.list_transactions().values() for t in ts if t.transactional_id == txn_id]
c.equal([state_name(t.state) for t in listed], ["CompleteCommit"], "list_transactions state after commit")
prods = admin.describe_producers([tps[0]]).get(tps[0])
mine = [s for s in (prods.active_producers if prods else []) if s.producer_id == producer_id]
if c.check(len(mine) == 1, "describe_producers p0 after commit: producer missing"):
    c.equal(mine[0].current_transaction_start_offset, -1, "current_transaction_start_offset after commit")

group_offsets = admin.list_group_offsets(group).get(group, {})
c.equal(getattr(group_offsets.get(TopicPartition(in_topic, 0)), "offset", None), 5,
        "group offset committed through send_offsets_to_transaction")
admin.close()
prod.close(timeout=10)


def read_all(isolation):
    cons = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                         isolation_level=isolation, fetch_max_wait_ms=200)
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    ends = cons.end_offsets(tps)
    got = {0: [], 1: []}
    end = time.monotonic() + TIMEOUT_S
    while not all(cons.position(tp) >= ends[tp] for tp in tps):
        if time.monotonic() >= end:
            c.fail(f"{isolation}: positions {[cons.position(tp) for tp in tps]} did not reach "
                   f"end offsets {[ends[tp] for tp in tps]} within {TIMEOUT_S}s")
            break
        for tp, records in cons.poll(timeout_ms=500).items():
            got[tp.partition] += [r.value for r in records]
    cons.close()
    return got, {tp.partition: ends[tp] for tp in tps}


rc, rc_ends = read_all("read_committed")
c.equal(rc, committed, "read_committed values per partition")
ru, ru_ends = read_all("read_uncommitted")
c.equal(ru, everything, "read_uncommitted values per partition")
for part in (0, 1):
    # With no open transaction the last stable offset is the high watermark: every record plus
    # one marker per transaction.
    c.equal(ru_ends[part], len(everything[part]) + 3, f"p{part} end offset (records + markers)")
    c.equal(rc_ends[part], ru_ends[part], f"p{part} read_committed end offset (LSO) = high watermark")
log(f"producer id {producer_id}; committed {sum(map(len, committed.values()))} of "
    f"{sum(map(len, everything.values()))} records")
c.finish()
