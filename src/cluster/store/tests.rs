//! The coordination store against a real PostgreSQL (a private server per test, see
//! `cluster::testing`). Lease expiry is stepped by moving a lease's end into the past in the
//! database, never by sleeping.

use super::*;
use crate::cluster::testing::PgServer;

const LEASE: Duration = Duration::from_secs(30);

fn registration(node_id: i32) -> Registration {
    Registration {
        node_id,
        rack: None,
        listeners: [("PLAINTEXT".to_string(), format!("127.0.0.1:{}", 9090 + node_id))].into(),
    }
}

async fn store(pg: &PgServer) -> Store {
    let mut s = Store::connect(&pg.url).await.expect("connect");
    s.migrate().await.expect("migrate");
    s
}

/// Steps time for one broker: its lease ends now.
async fn expire(s: &Store, node_id: i32) {
    s.client
        .execute(
            "UPDATE brokers SET lease_expires_at = now() - interval '1 millisecond' WHERE node_id = $1",
            &[&node_id],
        )
        .await
        .unwrap();
}

/// Broker 1 registered, leading every partition of a new topic "t": (its incarnation, the
/// topic's id, partition 0's leader epoch).
async fn led_by_one(s: &mut Store, partitions: i32) -> (Uuid, Uuid, i32) {
    let one = s.register(&registration(1), LEASE).await.unwrap();
    let topic = Uuid::new_v4();
    s.create_topic("t", topic, partitions).await.unwrap();
    s.rebalance().await.unwrap();
    let epoch = s.leaders().await.unwrap()[&(topic, 0)].epoch;
    (one, topic, epoch)
}

fn batch(topic_id: Uuid, partition: i32, base: i64, count: i64, epoch: i32) -> BatchRow {
    BatchRow {
        topic_id,
        partition,
        base_offset: base,
        last_offset: base + count - 1,
        byte_offset: 0,
        byte_length: 100,
        max_timestamp: 1,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        leader_epoch: epoch,
        attributes: Some(0),
        marker: None,
    }
}

#[tokio::test]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let Some(pg) = PgServer::start() else { return };
    let (mut a, mut b) = (Store::connect(&pg.url).await.unwrap(), Store::connect(&pg.url).await.unwrap());
    // Two brokers starting together: the advisory lock applies each migration once.
    let (va, vb) = tokio::join!(a.migrate(), b.migrate());
    let latest = super::MIGRATIONS.len() as i32;
    assert_eq!((va.unwrap(), vb.unwrap()), (latest, latest));
    let applied: i64 = a.client.query_one("SELECT count(*) FROM gregor_schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(applied, i64::from(latest));
    assert_eq!(a.migrate().await.unwrap(), latest, "nothing left to apply");
    // The first broker names the cluster; the others learn its id.
    let (ia, ib) = tokio::join!(a.cluster_id("first"), b.cluster_id("second"));
    let (ia, ib) = (ia.unwrap(), ib.unwrap());
    assert_eq!(ia, ib);
    assert!(ia == "first" || ia == "second");
    a.client.execute("INSERT INTO gregor_schema_migrations (version) VALUES (99)", &[]).await.unwrap();
    let refused = a.migrate().await;
    assert!(matches!(refused, Err(StoreError::SchemaTooNew { found: 99, known }) if known == latest), "{refused:?}");
}

/// A document is replaced only in the version it was read in, whether it exists yet or not:
/// of two brokers changing it from the same version, one gets its change kept and the other is
/// told to make it again on the newer document.
#[tokio::test]
async fn a_document_is_replaced_only_in_the_version_it_was_read_in() {
    let Some(pg) = PgServer::start() else { return };
    let (a, b) = (store(&pg).await, store(&pg).await);
    assert_eq!(a.document("acls").await.unwrap(), (0, String::new()), "never written");
    let (ra, rb) = tokio::join!(a.replace_document("acls", 0, "from a\n"), b.replace_document("acls", 0, "from b\n"));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.is_some() != rb.is_some(), "exactly one first write is kept: {ra:?} {rb:?}");
    let (version, text) = b.document("acls").await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(text, if ra.is_some() { "from a\n" } else { "from b\n" });
    assert_eq!(b.replace_document("acls", 0, "stale").await.unwrap(), None);
    assert_eq!(b.replace_document("acls", 1, "second").await.unwrap(), Some(2));
    assert_eq!(a.replace_document("acls", 1, "stale").await.unwrap(), None, "a was behind");
    assert_eq!(a.document("acls").await.unwrap(), (2, "second".to_string()));
    assert_eq!(a.replace_document("quotas", 0, "q").await.unwrap(), Some(1), "documents are apart");
    let versions = a.document_versions().await.unwrap();
    assert_eq!(versions, BTreeMap::from([("acls".to_string(), 2), ("quotas".to_string(), 1)]));
}

/// Brokers taking producer id blocks at the same time each get their own: no id is handed to
/// two brokers (idempotent producers on different brokers would share sequence numbers).
#[tokio::test]
async fn producer_id_blocks_never_overlap_between_brokers() {
    let Some(pg) = PgServer::start() else { return };
    let stores = [store(&pg).await, store(&pg).await, store(&pg).await];
    stores[0].cluster_id("c").await.unwrap();
    let mut starts = Vec::new();
    for _ in 0..50 {
        let (a, b, c) = tokio::join!(
            stores[0].allocate_producer_ids(1000),
            stores[1].allocate_producer_ids(1000),
            stores[2].allocate_producer_ids(10)
        );
        starts.extend([(a.unwrap(), 1000), (b.unwrap(), 1000), (c.unwrap(), 10)]);
    }
    starts.sort();
    assert_eq!(starts[0].0, 0, "the first block starts at 0");
    for pair in starts.windows(2) {
        assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "blocks are contiguous and disjoint: {pair:?}");
    }
}

/// Brokers starting together each create the internal topics, with the same name and id (the
/// id derives from the cluster id): one creation wins, the others learn the topic exists —
/// never a unique violation of the id, which stopped a starting broker.
#[tokio::test]
async fn brokers_creating_the_same_topic_together_all_succeed_or_find_it() {
    let Some(pg) = PgServer::start() else { return };
    let (mut a, mut b, mut c) = (store(&pg).await, store(&pg).await, store(&pg).await);
    for round in 0..200 {
        let name = format!("__internal_{round}");
        let id = Uuid::new_v4();
        let (ra, rb, rc) =
            tokio::join!(a.create_topic(&name, id, 1), b.create_topic(&name, id, 1), c.create_topic(&name, id, 1));
        let results = [ra, rb, rc];
        assert!(
            results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::TopicExists(_)))),
            "round {round}: {results:?}"
        );
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {results:?}");
    }
}

#[tokio::test]
async fn a_node_id_is_one_live_broker_and_a_lapsed_incarnation_is_fenced() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let first = s.register(&registration(1), LEASE).await.unwrap();
    s.heartbeat(1, first, LEASE).await.unwrap();
    let refused = s.register(&registration(1), LEASE).await;
    assert!(matches!(refused, Err(StoreError::NodeIdInUse(1))), "{refused:?}");
    assert_eq!(
        s.live_brokers().await.unwrap(),
        vec![LiveBroker { node_id: 1, rack: None, listeners: registration(1).listeners }]
    );

    // The first process stops heartbeating past its lease: a new one takes the node id, and
    // the old one's heartbeat finds itself fenced (it must stop serving).
    expire(&s, 1).await;
    assert!(s.live_brokers().await.unwrap().is_empty());
    let second = s.register(&registration(1), LEASE).await.unwrap();
    assert_ne!(first, second);
    assert!(matches!(s.heartbeat(1, first, LEASE).await, Err(StoreError::Fenced(_))));
    s.heartbeat(1, second, LEASE).await.unwrap();
    // Even with the old lease not taken over, a lapsed heartbeat is fenced.
    expire(&s, 1).await;
    assert!(matches!(s.heartbeat(1, second, LEASE).await, Err(StoreError::Fenced(_))));
}

#[tokio::test]
async fn leases_spread_evenly_move_with_brokers_and_bump_epochs() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    for id in 1..=3 {
        s.register(&registration(id), LEASE).await.unwrap();
    }
    let topic = Uuid::new_v4();
    s.create_topic("orders", topic, 12).await.unwrap();
    assert!(matches!(s.create_topic("orders", Uuid::new_v4(), 1).await, Err(StoreError::TopicExists(_))));
    let moves = s.rebalance().await.unwrap();
    assert_eq!(moves.len(), 12);
    assert!(moves.iter().all(|m| m.from.is_none() && m.epoch == 1));
    let load = |l: &BTreeMap<PartitionKey, Leader>, id: i32| l.values().filter(|x| x.node_id == Some(id)).count();
    let leaders = s.leaders().await.unwrap();
    assert_eq!((load(&leaders, 1), load(&leaders, 2), load(&leaders, 3)), (4, 4, 4));
    assert!(s.rebalance().await.unwrap().is_empty(), "a second plan moves nothing");

    // A fourth broker joins: three partitions move to it (one from each), in a new epoch.
    s.register(&registration(4), LEASE).await.unwrap();
    let moves = s.rebalance().await.unwrap();
    assert_eq!(moves.len(), 3);
    assert!(moves.iter().all(|m| m.to == 4 && m.epoch == 2));
    let leaders = s.leaders().await.unwrap();
    assert!((1..=4).all(|id| load(&leaders, id) == 3));

    // Broker 2 dies: its three partitions go to the others, one each.
    expire(&s, 2).await;
    let moves = s.rebalance().await.unwrap();
    assert_eq!(moves.len(), 3);
    assert!(moves.iter().all(|m| m.from == Some(2) && m.to != 2));
    let leaders = s.leaders().await.unwrap();
    assert_eq!(load(&leaders, 2), 0);
    assert!([1, 3, 4].iter().all(|id| load(&leaders, *id) == 4));
}

#[tokio::test]
async fn a_commit_is_fenced_by_the_lease_and_by_the_leader_epoch() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let (one, topic, epoch) = led_by_one(&mut s, 1).await;

    let commit = |key: &str, base: i64, epoch: i32| ObjectCommit {
        object_key: key.to_string(),
        size: 100,
        batches: vec![batch(topic, 0, base, 10, epoch)],
    };
    s.commit(1, one, &commit("o1", 0, epoch)).await.unwrap();
    assert_eq!(s.log_end(topic, 0).await.unwrap(), Some(10));
    // The log has no gaps and no overlaps.
    for base in [5, 11] {
        let r = s.commit(1, one, &commit(&format!("o-at-{base}"), base, epoch)).await;
        assert!(matches!(r, Err(StoreError::NotContiguous(_))), "{base}: {r:?}");
    }
    let stale_epoch = s.commit(1, one, &commit("o-stale", 10, epoch - 1)).await;
    assert!(matches!(stale_epoch, Err(StoreError::Fenced(_))), "{stale_epoch:?}");

    // Paused past its lease (SIGSTOP): refused even though nobody took the partition yet.
    expire(&s, 1).await;
    let paused = s.commit(1, one, &commit("o2", 10, epoch)).await;
    assert!(matches!(paused, Err(StoreError::Fenced(_))), "{paused:?}");

    // Broker 2 takes over in a new epoch and commits; broker 1's next commit stays refused.
    let two = s.register(&registration(2), LEASE).await.unwrap();
    let moves = s.rebalance().await.unwrap();
    assert_eq!(moves, vec![Move { partition: (topic, 0), from: Some(1), to: 2, epoch: epoch + 1 }]);
    s.commit(2, two, &commit("o3", 10, epoch + 1)).await.unwrap();
    assert!(matches!(s.commit(1, one, &commit("o4", 20, epoch)).await, Err(StoreError::Fenced(_))));

    // Only what was committed by a leader in its epoch is visible.
    let visible = s.batches(topic, 0, 0, 100).await.unwrap();
    let objects: Vec<&str> = visible.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(objects, ["o1", "o3"]);
    assert_eq!(s.log_end(topic, 0).await.unwrap(), Some(20));
    assert_eq!(s.batches(topic, 0, 15, 100).await.unwrap().len(), 1, "from an offset inside the second batch");
    let unreferenced: i64 = s
        .client
        .query_one("SELECT count(*) FROM objects WHERE object_key IN ('o-stale', 'o2', 'o4', 'o-at-5', 'o-at-11')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unreferenced, 0, "a refused commit leaves no row");
}

/// A batch row keeps what kind of batch it indexes (attributes; a marker's type and
/// coordinator epoch), and a new leader's copy starts at the last batch from which the batches
/// to the end hold the bytes it keeps.
#[tokio::test]
async fn batch_rows_keep_their_kind_and_a_tail_holds_the_bytes_kept() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let (one, topic, epoch) = led_by_one(&mut s, 1).await;
    assert_eq!(s.tail_start(topic, 0, 0, 100).await.unwrap(), None, "no batches");

    let mut batches: Vec<BatchRow> = (0..4).map(|i| batch(topic, 0, i * 10, 10, epoch)).collect();
    batches[1].attributes = Some(0x10);
    batches[1].producer_id = 7;
    batches[2].attributes = Some(0x30);
    batches[2].producer_id = 7;
    batches[2].marker = Some((ControlType::Abort, 5));
    batches[3].marker = Some((ControlType::Commit, 6));
    let commit = ObjectCommit { object_key: "o1".into(), size: 400, batches: batches.clone() };
    s.commit(1, one, &commit).await.unwrap();
    let read: Vec<BatchRow> = s.batches(topic, 0, 0, 10).await.unwrap().into_iter().map(|(b, _)| b).collect();
    assert_eq!(read, batches);

    // Each batch holds 100 bytes.
    for (keep, tail) in [(0, 30), (100, 30), (101, 20), (300, 10), (400, 0), (10_000, 0)] {
        assert_eq!(s.tail_start(topic, 0, 0, keep).await.unwrap(), Some((0, tail)), "keeping {keep} bytes");
    }
    assert_eq!(s.tail_start(topic, 0, 15, 10_000).await.unwrap(), Some((10, 10)), "from the log start's batch");

    // A row committed before schema version 8 does not say.
    s.client.execute("UPDATE batches SET attributes = NULL WHERE base_offset = 10", &[]).await.unwrap();
    let (old, _) = s.batches(topic, 0, 10, 1).await.unwrap().remove(0);
    assert_eq!((old.attributes, old.header()), (None, None));
    let h = read[2].header().unwrap();
    assert!(h.is_control() && h.is_transactional());
    assert_eq!((h.base_offset, h.last_offset(), h.producer_id), (20, 29, 7));

    // Schema version 9, applied to rows committed before version 8: those without a producer
    // are plain batches; producer 7's keep their NULLs, as its batches might be transactional.
    s.client.execute("UPDATE batches SET attributes = NULL", &[]).await.unwrap();
    s.client.execute("DELETE FROM gregor_schema_migrations WHERE version = 9", &[]).await.unwrap();
    s.migrate().await.unwrap();
    let kinds: Vec<(i64, Option<i16>)> =
        s.batches(topic, 0, 0, 10).await.unwrap().into_iter().map(|(b, _)| (b.base_offset, b.attributes)).collect();
    assert_eq!(kinds, [(0, Some(0)), (10, None), (20, None), (30, Some(0))]);
}

/// Retention worked out on the rows: by time, the first batch with a timestamp at or after the
/// cutoff; by size, the first batch the ones after it do not fill the bytes kept without; the
/// later of the two, never before the log start given nor past the log end.
#[tokio::test]
async fn retention_on_the_rows_keeps_by_time_and_by_size() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let (one, topic, epoch) = led_by_one(&mut s, 1).await;
    assert_eq!(s.retention_start(topic, 0, 0, Some(5), Some(0)).await.unwrap(), None, "no batches");
    // Five batches of ten records and 100 bytes, the one at 10i with timestamp i.
    let batches: Vec<BatchRow> =
        (0..5).map(|i| BatchRow { max_timestamp: i, ..batch(topic, 0, i * 10, 10, epoch) }).collect();
    s.commit(1, one, &ObjectCommit { object_key: "o1".into(), size: 500, batches }).await.unwrap();
    for (cutoff, keep, from, want) in [
        (None, None, 0, None),
        (Some(0), None, 0, None),
        (Some(2), None, 0, Some(20)),
        (Some(99), None, 0, Some(50)),
        (None, Some(500), 0, None),
        (None, Some(250), 0, Some(20)),
        (None, Some(300), 0, Some(20)),
        (None, Some(0), 0, Some(40)),
        (Some(1), Some(200), 0, Some(30)),
        (Some(3), Some(10_000), 0, Some(30)),
        (None, Some(250), 25, None),
        (None, Some(100), 25, Some(40)),
    ] {
        let got = s.retention_start(topic, 0, from, cutoff, keep).await;
        assert_eq!(got.unwrap(), want, "cutoff {cutoff:?}, keeping {keep:?} bytes, from {from}");
    }
}

/// A rewrite replaces whole committed batches of its leader's partition in its epoch, and
/// nothing else: a range cutting a batch, past the log end, a row outside the range, a stale
/// epoch, a lapsed lease and a deposed leader are each refused with nothing changed.
#[tokio::test]
async fn a_rewrite_replaces_a_range_of_whole_batches_for_its_leader_in_its_epoch_only() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let (one, topic, epoch) = led_by_one(&mut s, 1).await;
    // Three objects, each with a batch of ten; o2 also holds a batch of another topic.
    let other = Uuid::new_v4();
    s.create_topic("u", other, 1).await.unwrap();
    s.rebalance().await.unwrap();
    let other_epoch = s.leaders().await.unwrap()[&(other, 0)].epoch;
    for (key, base) in [("o1", 0), ("o2", 10), ("o3", 20)] {
        let mut batches = vec![batch(topic, 0, base, 10, epoch)];
        if key == "o2" {
            batches.push(batch(other, 0, 0, 5, other_epoch));
        }
        s.commit(1, one, &ObjectCommit { object_key: key.into(), size: 100, batches }).await.unwrap();
    }
    let rewrite = |key: &str, from: i64, to: i64, rows: &[(i64, i64)], epoch: i32| Rewrite {
        topic_id: topic,
        partition: 0,
        leader_epoch: epoch,
        from,
        to,
        object: ObjectCommit {
            object_key: key.into(),
            size: 50,
            batches: rows.iter().map(|&(base, count)| batch(topic, 0, base, count, epoch)).collect(),
        },
    };
    let layout = async |s: &Store| -> Vec<(i64, i64, String)> {
        let rows = s.batches(topic, 0, 0, 100).await.unwrap();
        rows.into_iter().map(|(b, k)| (b.base_offset, b.last_offset, k)).collect()
    };
    let before = layout(&s).await;
    for (why, r) in [
        ("cuts a batch", rewrite("x", 5, 20, &[(10, 10)], epoch)),
        ("cuts the last batch", rewrite("x", 0, 25, &[(0, 10)], epoch)),
        ("past the log end", rewrite("x", 20, 40, &[(20, 10)], epoch)),
        ("a row outside", rewrite("x", 0, 10, &[(0, 10), (10, 10)], epoch)),
        ("rows out of order", rewrite("x", 0, 20, &[(10, 10), (0, 10)], epoch)),
    ] {
        let refused = s.rewrite(1, one, &r).await;
        assert!(matches!(refused, Err(StoreError::NotContiguous(_))), "{why}: {refused:?}");
    }
    let stale = s.rewrite(1, one, &rewrite("x", 0, 20, &[(0, 10)], epoch - 1)).await;
    assert!(matches!(stale, Err(StoreError::Fenced(_))), "{stale:?}");
    assert_eq!(layout(&s).await, before, "nothing refused changed anything");
    assert_eq!(object_keys(&s).await, ["o1", "o2", "o3"]);

    // Compacted: of [0, 20) only the batch at 12..=15 is left; its object replaces o1, which
    // is let go of, and o2, which the other topic still uses; the merge went as far as 20.
    s.rewrite(1, one, &rewrite("m", 0, 20, &[(12, 4)], epoch)).await.unwrap();
    let expected = |last: &str| vec![(12, 15, "m".to_string()), (20, 29, last.to_string())];
    assert_eq!(layout(&s).await, expected("o3"));
    assert_eq!(object_keys(&s).await, ["m", "o2", "o3"]);
    assert_eq!(s.merged_to(topic, 0).await.unwrap(), 20);
    assert_eq!(s.log_bounds(topic, 0).await.unwrap(), Some((0, 30)), "the log's bounds stay");

    // Paused past its lease, then deposed: refused.
    expire(&s, 1).await;
    let paused = s.rewrite(1, one, &rewrite("y", 20, 30, &[(20, 10)], epoch)).await;
    assert!(matches!(paused, Err(StoreError::Fenced(_))), "{paused:?}");
    s.deregister(1, one).await.unwrap();
    let two = s.register(&registration(2), LEASE).await.unwrap();
    s.rebalance().await.unwrap();
    let one_again = s.register(&registration(1), LEASE).await.unwrap();
    let deposed = s.rewrite(1, one_again, &rewrite("y", 20, 30, &[(20, 10)], epoch)).await;
    assert!(matches!(deposed, Err(StoreError::Fenced(_))), "{deposed:?}");
    assert_eq!(layout(&s).await, expected("o3"));
    let now = s.leaders().await.unwrap()[&(topic, 0)];
    assert_eq!(now.node_id, Some(2));
    s.rewrite(2, two, &rewrite("z", 20, 30, &[(20, 10)], now.epoch)).await.unwrap();
    assert_eq!(layout(&s).await, expected("z"));
    assert_eq!(object_keys(&s).await, ["m", "o2", "z"]);
    assert_eq!(s.merged_to(topic, 0).await.unwrap(), 30);
}

#[tokio::test]
async fn share_state_is_written_by_its_partitions_leader_in_its_epoch_only_and_goes_with_its_topic() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let (one, topic, epoch) = led_by_one(&mut s, 2).await;
    let row = |partition: i32, group: &str, epoch: i32, state: Option<&[u8]>| ShareStateRow {
        topic_id: topic,
        partition,
        group_id: group.to_string(),
        leader_epoch: epoch,
        state: state.map(<[u8]>::to_vec),
    };
    let refused = s
        .write_share_states(1, one, &[row(0, "a", epoch, Some(b"a0")), row(1, "a", epoch, Some(b"a1"))])
        .await
        .unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    s.write_share_states(1, one, &[row(0, "b", epoch, Some(b"b0")), row(0, "a", epoch, Some(b"a0'"))]).await.unwrap();
    let mut on_0 = s.share_states(topic, 0).await.unwrap();
    on_0.sort();
    assert_eq!(on_0, [("a".to_string(), b"a0'".to_vec()), ("b".to_string(), b"b0".to_vec())]);

    // A stale epoch writes nothing and says which partition is no longer this broker's.
    let refused = s.write_share_states(1, one, &[row(0, "a", epoch - 1, Some(b"stale"))]).await.unwrap();
    assert_eq!(refused, [(topic, 0)]);
    let mut kept = s.share_states(topic, 0).await.unwrap();
    kept.sort();
    assert_eq!(kept, on_0, "a refused row is not written");
    // Broker 2 takes both partitions over: broker 1's writes are refused, broker 2's taken.
    let two = s.register(&registration(2), LEASE).await.unwrap();
    expire(&s, 1).await;
    let paused = s.write_share_states(1, one, &[row(0, "a", epoch, Some(b"paused"))]).await;
    assert!(matches!(paused, Err(StoreError::Fenced(_))), "{paused:?}");
    s.deregister(1, one).await.unwrap();
    s.rebalance().await.unwrap();
    let now = s.leaders().await.unwrap()[&(topic, 0)];
    assert_eq!(now.node_id, Some(2));
    let one_again = s.register(&registration(1), LEASE).await.unwrap();
    let deposed = s.write_share_states(1, one_again, &[row(0, "a", epoch, Some(b"deposed"))]).await.unwrap();
    assert_eq!(deposed, [(topic, 0)]);
    let mut kept = s.share_states(topic, 0).await.unwrap();
    kept.sort();
    assert_eq!(kept, on_0, "a deposed leader's row is not written");
    s.write_share_states(2, two, &[row(0, "a", now.epoch, None)]).await.unwrap();
    assert_eq!(s.share_states(topic, 0).await.unwrap(), [("b".to_string(), b"b0".to_vec())]);

    // The coordinator forgets a deleted group on every partition; a deleted topic's rows go
    // with its sweep.
    assert_eq!(s.group_share_states("b").await.unwrap(), [(topic, 0, b"b0".to_vec())]);
    assert_eq!(s.delete_group_share_states("b", None).await.unwrap(), 1);
    assert_eq!(s.group_share_states("a").await.unwrap().len(), 1);
    s.delete_topic(topic).await.unwrap();
    while s.sweep(100).await.unwrap() > 0 {}
    s.sweep(100).await.unwrap();
    assert!(s.group_share_states("a").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_log_start_moves_for_its_leader_only_and_lets_go_of_the_batches_and_objects_before_it() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let (one, topic, epoch) = led_by_one(&mut s, 2).await;
    let commit = |key: &str, batches: Vec<BatchRow>| ObjectCommit { object_key: key.to_string(), size: 100, batches };
    s.commit(1, one, &commit("o1", vec![batch(topic, 0, 0, 10, epoch), batch(topic, 1, 0, 10, epoch)])).await.unwrap();
    s.commit(1, one, &commit("o2", vec![batch(topic, 0, 10, 10, epoch)])).await.unwrap();
    s.commit(1, one, &commit("o3", vec![batch(topic, 0, 20, 10, epoch)])).await.unwrap();
    let start = |partition: i32, log_start: i64, leader_epoch: i32| LogStart {
        topic_id: topic,
        partition,
        leader_epoch,
        log_start,
    };

    // Inside the second batch: the first goes (in the sweep that follows); its object stays,
    // partition 1 still uses it.
    assert_eq!(s.advance_log_starts(1, one, &[start(0, 15, epoch)]).await.unwrap(), [start(0, 15, epoch)]);
    assert_eq!(s.log_bounds(topic, 0).await.unwrap(), Some((15, 30)));
    assert_eq!(s.sweep(100).await.unwrap(), 1);
    assert_eq!(s.sweep(100).await.unwrap(), 0, "swept");
    let kept: Vec<i64> = s.batches(topic, 0, 0, 10).await.unwrap().iter().map(|(b, _)| b.base_offset).collect();
    assert_eq!(kept, [10, 20], "the batch holding the new start stays");
    assert_eq!(object_keys(&s).await, ["o1", "o2", "o3"]);
    // Past the log end: to the end. Partition 1's last batch goes, and object o1 with it.
    assert_eq!(s.advance_log_starts(1, one, &[start(1, 99, epoch)]).await.unwrap(), [start(1, 10, epoch)]);
    s.sweep(100).await.unwrap();
    assert_eq!(s.batches(topic, 1, 0, 10).await.unwrap().len(), 0);
    assert_eq!(object_keys(&s).await, ["o2", "o3"]);
    // Never backwards; and not for a leader of another epoch.
    assert_eq!(s.advance_log_starts(1, one, &[start(0, 5, epoch)]).await.unwrap(), [start(0, 15, epoch)]);
    assert_eq!(s.advance_log_starts(1, one, &[start(0, 25, epoch - 1)]).await.unwrap(), []);
    assert_eq!(s.log_bounds(topic, 0).await.unwrap(), Some((15, 30)));
    // Nor for a broker past its lease.
    expire(&s, 1).await;
    let paused = s.advance_log_starts(1, one, &[start(0, 25, epoch)]).await;
    assert!(matches!(paused, Err(StoreError::Fenced(_))), "{paused:?}");
    assert_eq!(s.log_bounds(topic, 0).await.unwrap(), Some((15, 30)));
    assert_eq!(s.sweep(100).await.unwrap(), 0);
    assert_eq!(object_keys(&s).await, ["o2", "o3"]);
}

/// Deleting a topic is one short transaction whatever its size: its batch rows, then its
/// objects, go in sweeps of a bounded number of rows each. (Before, the deletion deleted
/// every row at once: tens of seconds for tens of millions of batches.)
#[tokio::test]
async fn a_deleted_topics_batch_rows_and_objects_go_in_sweeps_of_bounded_size() {
    let Some(pg) = PgServer::start() else { return };
    let mut s = store(&pg).await;
    let one = s.register(&registration(1), LEASE).await.unwrap();
    let (gone, kept) = (Uuid::new_v4(), Uuid::new_v4());
    s.create_topic("gone", gone, 1).await.unwrap();
    s.create_topic("kept", kept, 1).await.unwrap();
    s.rebalance().await.unwrap();
    let leaders = s.leaders().await.unwrap();
    let (epoch, kept_epoch) = (leaders[&(gone, 0)].epoch, leaders[&(kept, 0)].epoch);
    for i in 0..5 {
        let batches = (0..5).map(|j| batch(gone, 0, (i * 5 + j) * 10, 10, epoch)).collect();
        let o = ObjectCommit { object_key: format!("o{i}"), size: 100, batches };
        s.commit(1, one, &o).await.unwrap();
    }
    let shared = ObjectCommit {
        object_key: "shared".into(),
        size: 100,
        batches: vec![batch(gone, 0, 250, 10, epoch), batch(kept, 0, 0, 10, kept_epoch)],
    };
    s.commit(1, one, &shared).await.unwrap();

    assert!(s.delete_topic(gone).await.unwrap());
    assert_eq!(batch_rows(&s, gone).await, 26, "the deletion itself leaves the batch rows to the sweeps");
    let late = ObjectCommit { object_key: "late".into(), size: 100, batches: vec![batch(gone, 0, 260, 10, epoch)] };
    assert!(matches!(s.commit(1, one, &late).await, Err(StoreError::Fenced(_))), "no commit to a deleted topic");

    let mut swept = Vec::new();
    loop {
        match s.sweep(10).await.unwrap() {
            0 => break,
            n => swept.push(n),
        }
    }
    assert_eq!(swept, [10, 10, 6], "at most 10 rows per sweep");
    assert_eq!((batch_rows(&s, gone).await, batch_rows(&s, kept).await), (0, 1), "only the deleted topic's rows go");
    assert_eq!(object_keys(&s).await, ["shared"], "an object another topic still uses stays");
    let left: i64 = s.client.query_one("SELECT count(*) FROM deleted_topics", &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "a swept topic is forgotten");
}

async fn batch_rows(s: &Store, topic: Uuid) -> i64 {
    s.client.query_one("SELECT count(*) FROM batches WHERE topic_id = $1", &[&topic]).await.unwrap().get(0)
}

async fn object_keys(s: &Store) -> Vec<String> {
    let rows = s.client.query("SELECT object_key FROM objects ORDER BY object_key", &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}
