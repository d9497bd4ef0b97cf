//! Transactions through librdkafka (the rdkafka crate): commits and aborts seen by
//! read_committed and read_uncommitted consumers, an open transaction holding the last stable
//! offset back, fencing by a second producer of the same transactional id, a consume-transform-
//! produce loop with its offsets committed in the transaction, and a transaction timeout.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::{self, RawClient, TestBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const T: Duration = Duration::from_secs(20);

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let r = admin.create_topics([&topic], &AdminOptions::new()).await.expect("create_topics");
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
}

fn txn_producer(bootstrap: &str, tid: &str, extra: &[(&str, &str)]) -> ThreadedProducer<DefaultProducerContext> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap).set("transactional.id", tid).set("linger.ms", "5");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    let p: ThreadedProducer<DefaultProducerContext> = cfg.create().expect("producer");
    p.init_transactions(T).expect("init_transactions");
    p
}

fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, partition: i32, value: &str) {
    p.send(BaseRecord::<(), str>::to(topic).partition(partition).payload(value)).expect("send");
}

/// Everything a consumer at `isolation` reads from the partitions until it has `count`
/// records: values per partition, in order.
fn consume(bootstrap: &str, topic: &str, partitions: i32, isolation: &str, count: usize) -> HashMap<i32, Vec<String>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out: HashMap<i32, Vec<String>> = HashMap::new();
    let mut n = 0;
    let deadline = std::time::Instant::now() + T;
    while n < count {
        assert!(std::time::Instant::now() < deadline, "read {n} of {count} records: {out:?}");
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            let v = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            out.entry(m.partition()).or_default().push(v);
            n += 1;
        }
    }
    out
}

/// (last stable offset, high watermark, record bytes) of a read_committed Fetch from `offset`.
async fn committed_fetch(raw: &mut RawClient, topic: &str, offset: i64) -> (i64, i64, usize) {
    let req =
        FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_isolation_level(1).with_topics(vec![
            FetchTopic::default().with_topic(TopicName(topic.to_string().into())).with_partitions(vec![
                FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
            ]),
        ]);
    let resp = raw.call(11, &req).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (p.last_stable_offset, p.high_watermark, p.records.as_ref().map_or(0, |r| r.len()))
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_records_are_read_and_aborted_ones_never_leak() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tx-basic", 2).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let p = txn_producer(&b, "tx-basic-1", &[]);
        for (round, commit) in [("c1", true), ("a1", false), ("c2", true), ("a2", false)] {
            p.begin_transaction().unwrap();
            for part in 0..2 {
                for v in values(&format!("{round}-p{part}"), 5) {
                    send(&p, "tx-basic", part, &v);
                }
            }
            if commit {
                p.commit_transaction(T).expect("commit");
            } else {
                p.flush(T).unwrap();
                p.abort_transaction(T).expect("abort");
            }
        }
        // Committed data after the aborts, so that a reader must go past the aborted ones.
        p.begin_transaction().unwrap();
        send(&p, "tx-basic", 0, "c3-p0-0");
        send(&p, "tx-basic", 1, "c3-p1-0");
        p.commit_transaction(T).expect("commit");

        let committed = consume(&b, "tx-basic", 2, "read_committed", 22);
        let uncommitted = consume(&b, "tx-basic", 2, "read_uncommitted", 42);
        for part in 0..2 {
            let mut want = values(&format!("c1-p{part}"), 5);
            want.extend(values(&format!("c2-p{part}"), 5));
            want.push(format!("c3-p{part}-0"));
            assert_eq!(committed[&part], want, "read_committed, partition {part}");
            let mut all = Vec::new();
            for round in ["c1", "a1", "c2", "a2"] {
                all.extend(values(&format!("{round}-p{part}"), 5));
            }
            all.push(format!("c3-p{part}-0"));
            assert_eq!(uncommitted[&part], all, "read_uncommitted, partition {part}");
        }
    })
    .await
    .unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_the_last_stable_offset_until_it_ends() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tx-lso", 1).await;
    let mut raw = RawClient::connect(broker.addr).await;
    let b = bootstrap.clone();
    let p = tokio::task::spawn_blocking(move || {
        let plain: ThreadedProducer<DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        plain.send(BaseRecord::<(), str>::to("tx-lso").partition(0).payload("before")).unwrap();
        plain.flush(T).unwrap();
        let p = txn_producer(&b, "tx-lso-1", &[]);
        p.begin_transaction().unwrap();
        send(&p, "tx-lso", 0, "inside");
        p.flush(T).unwrap();
        plain.send(BaseRecord::<(), str>::to("tx-lso").partition(0).payload("after")).unwrap();
        plain.flush(T).unwrap();
        p
    })
    .await
    .unwrap();
    let (lso, hw, _) = committed_fetch(&mut raw, "tx-lso", 0).await;
    assert_eq!((lso, hw), (1, 3), "the open transaction starts at offset 1");
    let (_, _, bytes) = committed_fetch(&mut raw, "tx-lso", 1).await;
    assert_eq!(bytes, 0, "read_committed gets nothing at the LSO, not even the later plain record");
    tokio::task::spawn_blocking(move || p.commit_transaction(T).expect("commit")).await.unwrap();
    let (lso, hw, _) = committed_fetch(&mut raw, "tx-lso", 0).await;
    assert_eq!(lso, hw, "after the commit marker the LSO is the high watermark");
    assert_eq!(hw, 4);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_fences_the_first_and_aborts_its_transaction() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tx-fence", 1).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let first = txn_producer(&b, "tx-fence-1", &[]);
        first.begin_transaction().unwrap();
        send(&first, "tx-fence", 0, "zombie");
        first.flush(T).unwrap();
        let second = txn_producer(&b, "tx-fence-1", &[]);
        let err = first.commit_transaction(T).expect_err("the fenced producer cannot commit");
        assert!(
            matches!(&err, KafkaError::Transaction(e) if e.is_fatal()),
            "a fenced producer gets a fatal error, got {err:?}"
        );
        second.begin_transaction().unwrap();
        send(&second, "tx-fence", 0, "live");
        second.commit_transaction(T).expect("commit");
        let read = consume(&b, "tx-fence", 1, "read_committed", 1);
        assert_eq!(read[&0], vec!["live".to_string()]);
    })
    .await
    .unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_commits_outputs_and_offsets_together() {
    const N: usize = 300;
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "ctp-in", 1).await;
    create_topic(&bootstrap, "ctp-out", 1).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let plain: ThreadedProducer<DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        for v in values("in", N) {
            plain.send(BaseRecord::<(), str>::to("ctp-in").partition(0).payload(&v)).unwrap();
        }
        plain.flush(T).unwrap();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", "ctp")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        consumer.subscribe(&["ctp-in"]).unwrap();
        let producer = txn_producer(&b, "ctp-1", &[]);
        let mut done = 0;
        let mut aborted_once = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while done < N {
            assert!(std::time::Instant::now() < deadline, "processed {done} of {N}");
            producer.begin_transaction().unwrap();
            let mut batch = Vec::new();
            while batch.len() < 50 {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(m) => {
                        let m = m.unwrap();
                        batch.push((m.offset(), String::from_utf8(m.payload().unwrap().to_vec()).unwrap()));
                    }
                    None if !batch.is_empty() => break,
                    None => {}
                }
            }
            for (_, v) in &batch {
                send(&producer, "ctp-out", 0, &v.replace("in", "out"));
            }
            let next = batch.last().unwrap().0 + 1;
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset("ctp-in", 0, Offset::Offset(next)).unwrap();
            producer.send_offsets_to_transaction(&offsets, &consumer.group_metadata().unwrap(), T).unwrap();
            if !aborted_once && done > 0 {
                // One aborted round: its outputs must vanish and its inputs be read again.
                aborted_once = true;
                producer.flush(T).unwrap();
                producer.abort_transaction(T).unwrap();
                let mut rewind = TopicPartitionList::new();
                rewind.add_partition_offset("ctp-in", 0, Offset::Offset(batch[0].0)).unwrap();
                consumer.seek_partitions(rewind, T).unwrap();
                continue;
            }
            producer.commit_transaction(T).unwrap();
            done += batch.len();
        }
        let outputs = consume(&b, "ctp-out", 1, "read_committed", N);
        assert_eq!(outputs[&0], values("out", N), "exactly one output per input, in order");
        let committed = consumer.committed(T).unwrap();
        let offset = committed.find_partition("ctp-in", 0).unwrap().offset();
        assert_eq!(offset, Offset::Offset(N as i64), "the group's offset was committed with the outputs");
    })
    .await
    .unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_producer_is_aborted_after_its_timeout_and_the_lso_moves_on() {
    let broker = TestBroker::start_with(|c| c.transaction.abort_check_interval_ms = 100).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tx-timeout", 1).await;
    let mut raw = RawClient::connect(broker.addr).await;
    let b = bootstrap.clone();
    let p = tokio::task::spawn_blocking(move || {
        let p = txn_producer(&b, "tx-timeout-1", &[("transaction.timeout.ms", "1000")]);
        p.begin_transaction().unwrap();
        send(&p, "tx-timeout", 0, "abandoned");
        p.flush(T).unwrap();
        p
    })
    .await
    .unwrap();
    let (lso, _, _) = committed_fetch(&mut raw, "tx-timeout", 0).await;
    assert_eq!(lso, 0);
    let mut lso_now = 0;
    for _ in 0..200 {
        let (lso, hw, _) = committed_fetch(&mut raw, "tx-timeout", 0).await;
        if lso == hw && hw == 2 {
            lso_now = lso;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lso_now, 2, "the coordinator aborted the transaction: record and marker, LSO past both");
    let err = tokio::task::spawn_blocking(move || p.commit_transaction(T)).await.unwrap();
    assert!(err.is_err(), "the timed-out producer was fenced");
    broker.stop().await;
}

/// One consume-transform-produce worker as an application writes it: on an error it aborts
/// (or, when the producer is fenced or broken, starts a new one) and goes back to the last
/// committed input offset. Returns when the committed input offset reaches `n`.
fn exactly_once_worker(bootstrap: &str, n: i64, on_commit: &dyn Fn(i64), hold_at: Option<i64>) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eos")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let rewind = |consumer: &BaseConsumer| loop {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("eos-in", 0);
        if let Ok(c) = consumer.committed_offsets(tpl, Duration::from_secs(5)) {
            let at = match c.find_partition("eos-in", 0).map(|p| p.offset()) {
                Some(Offset::Offset(o)) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("eos-in", 0, at).unwrap();
            consumer.assign(&tpl).unwrap();
            return match at {
                Offset::Offset(o) => o,
                _ => 0,
            };
        }
    };
    let new_producer = || loop {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", "eos-worker")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        if p.init_transactions(Duration::from_secs(10)).is_ok() {
            return p;
        }
    };
    let mut producer = new_producer();
    let mut committed = rewind(&consumer);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while committed < n {
        assert!(std::time::Instant::now() < deadline, "processed {committed} of {n}");
        let round = (|| -> Result<i64, KafkaError> {
            producer.begin_transaction()?;
            let mut last = None;
            let mut taken = 0;
            while taken < 20 {
                assert!(std::time::Instant::now() < deadline, "no input to read at {committed} of {n}");
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let v = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                        producer
                            .send(BaseRecord::<(), str>::to("eos-out").partition(0).payload(&v.replace("in", "out")))
                            .map_err(|(e, _)| e)?;
                        last = Some(m.offset());
                        taken += 1;
                    }
                    Some(Err(e)) => return Err(e),
                    None if last.is_some() => break,
                    None => {}
                }
            }
            let next = last.unwrap() + 1;
            if hold_at.is_some_and(|at| next >= at) {
                // Where the test kills this process: outputs written, transaction open.
                producer.flush(T)?;
                on_commit(-next);
                std::thread::sleep(Duration::from_secs(60));
            }
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset("eos-in", 0, Offset::Offset(next)).unwrap();
            producer.send_offsets_to_transaction(&offsets, &consumer.group_metadata().unwrap(), T)?;
            producer.commit_transaction(T)?;
            Ok(next)
        })();
        match round {
            Ok(next) => {
                committed = next;
                on_commit(next);
            }
            Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                eprintln!("round failed at {committed}, aborting: {e}");
                if producer.abort_transaction(T).is_err() {
                    producer = new_producer();
                }
                committed = rewind(&consumer);
            }
            Err(e) => {
                eprintln!("round failed at {committed}, new producer: {e}");
                producer = new_producer();
                committed = rewind(&consumer);
            }
        }
    }
}

/// The exactly-once loop while the broker is SIGKILLed and restarted in the middle of it:
/// every input becomes exactly one output, in order, and the group's offset says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_holds_across_a_broker_sigkill() {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    const N: i64 = 400;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut broker = common::BrokerProcess::spawn(&data, &[]);
    let (addr, bootstrap) = (broker.addr, broker.addr.to_string());
    create_topic(&bootstrap, "eos-in", 1).await;
    create_topic(&bootstrap, "eos-out", 1).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let plain: ThreadedProducer<DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &b).set("acks", "all").create().unwrap();
        for v in values("in", N as usize) {
            plain.send(BaseRecord::<(), str>::to("eos-in").partition(0).payload(&v)).unwrap();
        }
        plain.flush(T).unwrap();
    })
    .await
    .unwrap();
    let progress = Arc::new(AtomicI64::new(0));
    let (b, p) = (bootstrap.clone(), progress.clone());
    let worker =
        tokio::task::spawn_blocking(move || exactly_once_worker(&b, N, &|next| p.store(next, Ordering::SeqCst), None));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while progress.load(Ordering::SeqCst) < N / 3 {
        assert!(std::time::Instant::now() < deadline && !worker.is_finished(), "no progress before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.kill_9();
    let killed_at = progress.load(Ordering::SeqCst);
    let broker = common::BrokerProcess::spawn_at(&data, addr, &[], |_| {});
    worker.await.unwrap();
    assert!(killed_at < N, "the kill came in the middle of the stream");
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let outputs = consume(&b, "eos-out", 1, "read_committed", N as usize);
        assert_eq!(outputs[&0], values("out", N as usize), "exactly one output per input, in order");
    })
    .await
    .unwrap();
    drop(broker);
}

/// A transactional batch of one record, as a client would send it.
fn txn_record(pid: i64, epoch: i16, seq: i32, value: &str) -> bytes::Bytes {
    use bytes::BufMut;
    let mut b =
        gregor::log::batch::build_transactional(&[(None, Some(value.as_bytes()))], 1_700_000_000_000, pid, epoch);
    (&mut b[53..57]).put_i32(seq);
    let crc = crc32c::crc32c(&b[21..]);
    (&mut b[17..21]).put_u32(crc);
    b.into()
}

fn produce_txn(tid: &str, topic: &str, records: bytes::Bytes) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    kafka_protocol::messages::ProduceRequest::default()
        .with_transactional_id(Some(kafka_protocol::messages::TransactionalId(tid.to_string().into())))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(topic.to_string().into()))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))])])
}

fn produce_code(resp: &kafka_protocol::messages::ProduceResponse) -> i16 {
    resp.responses[0].partition_responses[0].error_code
}

/// Transaction Version 2 as a Kafka 4 Java client speaks it (no such client installs here, so
/// the exchange is written out): the finalized `transaction.version` 2 feature, produces and
/// offset commits that add their partitions themselves, and EndTxn v5 moving the epoch on at
/// every transaction, which fences late writes of the ended one.
#[tokio::test]
async fn transaction_version_2_bumps_the_epoch_per_transaction() {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::*;
    let broker = TestBroker::start().await;
    let mut raw = RawClient::connect(broker.addr).await;
    raw.create_topic("tv2", 1).await;
    let versions = raw
        .call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name("apache-kafka-java".into())
                .with_client_software_version("4.1.0".into()),
        )
        .await;
    let tv = versions.finalized_features.iter().find(|f| f.name.as_str() == "transaction.version").expect("feature");
    assert_eq!(tv.max_version_level, 2);
    let tid = || TransactionalId("tv2-app".into());
    let init = raw
        .call(
            5,
            &InitProducerIdRequest::default().with_transactional_id(Some(tid())).with_transaction_timeout_ms(60_000),
        )
        .await;
    let (pid, e0) = (init.producer_id.0, init.producer_epoch);
    assert_eq!((init.error_code, e0), (0, 0));

    // No AddPartitionsToTxn: Produce v12 adds the partition. Produce v11 (TV1) would not.
    let v11 = raw.call(11, &produce_txn("tv2-app", "tv2", txn_record(pid, e0, 0, "one"))).await;
    assert_eq!(produce_code(&v11), 48, "INVALID_TXN_STATE: a TV1 produce must be added first");
    assert_eq!(produce_code(&raw.call(12, &produce_txn("tv2-app", "tv2", txn_record(pid, e0, 0, "one"))).await), 0);
    // No AddOffsetsToTxn either: TxnOffsetCommit v5 adds the group's offsets partition.
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid())
        .with_group_id(GroupId("tv2-group".into()))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(e0)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default().with_name(TopicName("tv2".into())).with_partitions(
            vec![TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(1)],
        )]);
    let resp = raw.call(5, &commit).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    assert_eq!(committed_fetch(&mut raw, "tv2", 0).await.0, 0, "the transaction is open");

    let end = |epoch: i16, committed: bool| {
        EndTxnRequest::default()
            .with_transactional_id(tid())
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(committed)
    };
    let ended = raw.call(5, &end(e0, true)).await;
    assert_eq!((ended.error_code, ended.producer_id.0, ended.producer_epoch), (0, pid, e0 + 1));
    let retried = raw.call(5, &end(e0, true)).await;
    assert_eq!((retried.error_code, retried.producer_epoch), (0, e0 + 1), "a retry gets the new epoch again");
    let (lso, hw, _) = committed_fetch(&mut raw, "tv2", 0).await;
    assert_eq!((lso, hw), (2, 2), "record and commit marker");
    let fetched = raw
        .call(
            7,
            &OffsetFetchRequest::default().with_group_id(GroupId("tv2-group".into())).with_topics(Some(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName("tv2".into()))
                    .with_partition_indexes(vec![0]),
            ])),
        )
        .await;
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 1, "the offset committed with the transaction");

    // The next transaction runs at the new epoch, its sequences starting over; the ended
    // epoch is fenced at the partition.
    let e1 = e0 + 1;
    let late = raw.call(12, &produce_txn("tv2-app", "tv2", txn_record(pid, e0, 1, "late"))).await;
    assert_eq!(produce_code(&late), 47, "INVALID_PRODUCER_EPOCH");
    assert_eq!(produce_code(&raw.call(12, &produce_txn("tv2-app", "tv2", txn_record(pid, e1, 0, "two"))).await), 0);
    let aborted = raw.call(5, &end(e1, false)).await;
    assert_eq!((aborted.error_code, aborted.producer_epoch), (0, e1 + 1));
    assert_eq!(raw.call(5, &end(e1, true)).await.error_code, 48, "a commit retried after an abort is refused");
    assert_eq!(raw.call(5, &end(e0, false)).await.error_code, 90, "two epochs behind: PRODUCER_FENCED");
    // An abort with nothing in the transaction still moves the epoch on.
    let empty = raw.call(5, &end(e1 + 1, false)).await;
    assert_eq!((empty.error_code, empty.producer_epoch), (0, e1 + 2));
    let (lso, hw, _) = committed_fetch(&mut raw, "tv2", 0).await;
    assert_eq!((lso, hw), (4, 4));
    broker.stop().await;
}

/// Not a test by itself: the worker process of
/// `exactly_once_holds_when_the_worker_is_sigkilled`, started as a child of this test binary.
#[test]
#[ignore = "entry point of a child process"]
fn eos_worker_process() {
    let Ok(bootstrap) = std::env::var("EOS_BOOTSTRAP") else { return };
    let n: i64 = std::env::var("EOS_N").unwrap().parse().unwrap();
    let progress = std::env::var("EOS_PROGRESS").unwrap();
    let hold_at = std::env::var("EOS_HOLD_AT").ok().map(|v| v.parse().unwrap());
    exactly_once_worker(&bootstrap, n, &|next| std::fs::write(&progress, next.to_string()).unwrap(), hold_at);
}

/// The name the test harness knows [`eos_worker_process`] by, for `--exact`: its module path
/// without the crate's name (`transactions::eos_worker_process` in the folded integration
/// binary). A bare `eos_worker_process` would match no test there, and the child would run none.
fn eos_worker_test_name() -> String {
    let path = concat!(module_path!(), "::eos_worker_process");
    path.split_once("::").map_or(path, |(_, in_crate)| in_crate).to_string()
}

/// The input offset the worker process last reported committed; negative once it holds an
/// open transaction with its outputs written.
fn reported(progress: &std::path::Path) -> i64 {
    std::fs::read_to_string(progress).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The exactly-once loop's process is SIGKILLed in the middle of the stream (with a
/// transaction open, at some point of it) and started again: the new instance fences the old
/// one, whose open transaction is aborted, and goes on from the committed offset. Every input
/// becomes exactly one output, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_holds_when_the_worker_is_sigkilled() {
    const N: i64 = 2000;
    let tmp = tempfile::tempdir().unwrap();
    let progress = tmp.path().join("progress");
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "eos-in", 1).await;
    create_topic(&bootstrap, "eos-out", 1).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let plain: ThreadedProducer<DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        for v in values("in", N as usize) {
            plain.send(BaseRecord::<(), str>::to("eos-in").partition(0).payload(&v)).unwrap();
        }
        plain.flush(T).unwrap();
        let spawn = |hold: bool| {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            if hold {
                cmd.env("EOS_HOLD_AT", (N / 4).to_string());
            }
            cmd.args(["--exact", &eos_worker_test_name(), "--ignored", "--nocapture"])
                .env("EOS_BOOTSTRAP", &b)
                .env("EOS_N", N.to_string())
                .env("EOS_PROGRESS", &progress)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut first = spawn(true);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while reported(&progress) >= 0 {
            assert!(std::time::Instant::now() < deadline, "no progress before the kill");
            assert!(first.try_wait().unwrap().is_none(), "the worker exited early");
            std::thread::sleep(Duration::from_millis(10));
        }
        first.kill().unwrap();
        first.wait().unwrap();
        let status = spawn(false).wait().unwrap();
        assert!(status.success(), "the second worker failed");
        let outputs = consume(&b, "eos-out", 1, "read_committed", N as usize);
        assert_eq!(outputs[&0], values("out", N as usize), "exactly one output per input, in order");
        let raw_outputs = consume(&b, "eos-out", 1, "read_uncommitted", N as usize);
        assert!(raw_outputs[&0].len() >= N as usize);
    })
    .await
    .unwrap();
    broker.stop().await;
}

/// ListTransactions v2 (KIP-1152): only the transactional ids the whole pattern matches; an
/// invalid pattern is INVALID_REGULAR_EXPRESSION; null or empty filters nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_transactions_filters_by_a_transactional_id_pattern() {
    use kafka_protocol::messages::ListTransactionsRequest;
    use kafka_protocol::protocol::StrBytes;
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let producers = tokio::task::spawn_blocking(move || {
        ["orders-1", "orders-2", "billing-1"].map(|tid| txn_producer(&bootstrap, tid, &[]))
    })
    .await
    .unwrap();
    let mut raw = RawClient::connect(broker.addr).await;
    let mut list = async |version: i16, pattern: Option<&str>| {
        let req = ListTransactionsRequest::default()
            .with_duration_filter(-1)
            .with_transactional_id_pattern(pattern.map(|p| StrBytes::from_string(p.to_string())));
        let r = raw.call(version, &req).await;
        let mut ids: Vec<String> = r.transaction_states.iter().map(|t| t.transactional_id.to_string()).collect();
        ids.sort();
        (r.error_code, ids)
    };
    let all = vec!["billing-1".to_string(), "orders-1".into(), "orders-2".into()];
    assert_eq!(list(1, None).await, (0, all.clone()));
    assert_eq!(list(2, Some("")).await, (0, all));
    assert_eq!(list(2, Some("orders-.*")).await, (0, vec!["orders-1".into(), "orders-2".into()]));
    assert_eq!(list(2, Some("orders")).await, (0, vec![]), "the whole id must match");
    assert_eq!(list(2, Some(".*-1")).await, (0, vec!["billing-1".into(), "orders-1".into()]));
    let (code, ids) = list(2, Some("orders-(")).await;
    assert_eq!((code, ids.len()), (kafka_protocol::error::ResponseError::InvalidRegularExpression.code(), 0));
    drop(producers);
    broker.stop().await;
}
