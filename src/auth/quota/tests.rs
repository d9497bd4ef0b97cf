use super::*;

fn store() -> (tempfile::TempDir, QuotaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = QuotaStore::open(crate::auth::kept::FileKeeper::new(dir.path())).unwrap();
    (dir, store)
}

fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> Entity {
    Entity { user: user.map(|n| n.map(str::to_string)), client_id: client.map(|n| n.map(str::to_string)) }
}

fn set(store: &QuotaStore, e: Entity, key: &str, value: f64) {
    let r = store.alter(vec![Ok((e, vec![Op { key: key.into(), value: Some(value) }]))], false);
    assert_eq!(r, vec![Ok(())]);
}

#[test]
fn entities_are_validated_as_kafka_does() {
    let bad = |parts: Vec<(&str, Option<&str>)>| Entity::from_parts(parts).unwrap_err().to_string();
    assert_eq!(bad(vec![]), "Invalid empty client quota entity");
    assert_eq!(
        bad(vec![(USER, Some("a")), (USER, Some("b"))]),
        "Invalid client quota entity, duplicate entity entry user"
    );
    assert_eq!(bad(vec![(USER, Some(""))]), "Empty user not supported");
    assert_eq!(bad(vec![("group", Some("g"))]), "Unhandled client quota entity type: group");
    assert!(bad(vec![(IP, Some("1.2.3.4"))]).contains("not supported by gregor yet"));
    let e = Entity::from_parts(vec![(CLIENT_ID, None), (USER, Some("alice"))]).unwrap();
    assert_eq!(e, entity(Some(Some("alice")), Some(None)));
    assert_eq!(e.parts(), vec![(USER, Some("alice")), (CLIENT_ID, None)]);
}

#[test]
fn values_are_validated_and_bad_entries_change_nothing() {
    let (_dir, store) = store();
    let e = entity(Some(Some("alice")), None);
    let op = |k: &str, v: f64| Op { key: k.into(), value: Some(v) };
    let results = store.alter(
        vec![
            Ok((e.clone(), vec![op(PRODUCER_BYTE_RATE, 1024.0), op(CONSUMER_BYTE_RATE, 10.5)])),
            Ok((entity(None, Some(Some("c"))), vec![op(REQUEST_PERCENTAGE, 0.0)])),
            Ok((entity(None, Some(Some("d"))), vec![op("acks", 1.0)])),
            Ok((entity(None, Some(Some("e"))), vec![op(REQUEST_PERCENTAGE, 12.5), op(REQUEST_PERCENTAGE, 13.0)])),
        ],
        false,
    );
    let msgs: Vec<String> = results.iter().map(|r| r.as_ref().unwrap_err().to_string()).collect();
    assert_eq!(msgs[0], "consumer_byte_rate cannot be a fractional value.");
    assert_eq!(msgs[1], "Quota request_percentage must be greater than 0");
    assert_eq!(msgs[2], "Invalid configuration key acks");
    assert!(msgs[3].starts_with("Duplicate quota key request_percentage"), "{}", msgs[3]);
    assert!(!store.any(), "a refused entry must change nothing");
}

#[test]
fn validate_only_and_duplicates_change_nothing() {
    let (_dir, store) = store();
    let e = entity(Some(Some("alice")), None);
    let ops = || vec![Op { key: PRODUCER_BYTE_RATE.into(), value: Some(100.0) }];
    assert_eq!(store.alter(vec![Ok((e.clone(), ops()))], true), vec![Ok(())]);
    assert!(!store.any());
    let r = store.alter(vec![Ok((e.clone(), ops())), Ok((e.clone(), ops()))], false);
    assert!(r.iter().all(|r| r.is_err()), "{r:?}");
    assert!(!store.any());
}

#[test]
fn quotas_persist_and_removal_drops_the_entity() {
    let dir = tempfile::tempdir().unwrap();
    let e = entity(Some(None), Some(Some("app")));
    {
        let store = QuotaStore::open(crate::auth::kept::FileKeeper::new(dir.path())).unwrap();
        set(&store, e.clone(), PRODUCER_BYTE_RATE, 2048.0);
        set(&store, e.clone(), REQUEST_PERCENTAGE, 50.0);
    }
    let store = QuotaStore::open(crate::auth::kept::FileKeeper::new(dir.path())).unwrap();
    let all = store.describe(&[], false).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, e);
    assert_eq!(all[0].1, vec![(PRODUCER_BYTE_RATE.to_string(), 2048.0), (REQUEST_PERCENTAGE.to_string(), 50.0)]);
    let remove = |k: &str| Op { key: k.into(), value: None };
    store.alter(vec![Ok((e.clone(), vec![remove(PRODUCER_BYTE_RATE), remove(REQUEST_PERCENTAGE)]))], false);
    assert!(!store.any());
    assert!(
        !QuotaStore::open(crate::auth::kept::FileKeeper::new(dir.path())).unwrap().any(),
        "the removal is persisted"
    );
}

#[test]
fn describe_filters_as_kafka_does() {
    let (_dir, store) = store();
    set(&store, entity(Some(Some("alice")), None), PRODUCER_BYTE_RATE, 1.0);
    set(&store, entity(Some(Some("alice")), Some(Some("app"))), PRODUCER_BYTE_RATE, 2.0);
    set(&store, entity(Some(None), None), PRODUCER_BYTE_RATE, 3.0);
    set(&store, entity(None, Some(None)), PRODUCER_BYTE_RATE, 4.0);
    let c = |t: &str, m: i8, n: Option<&str>| Component {
        entity_type: t.into(),
        match_type: m,
        name: n.map(str::to_string),
    };
    let names = |components: &[Component], strict: bool| -> Vec<String> {
        store.describe(components, strict).unwrap().iter().map(|(e, _)| e.to_string()).collect()
    };
    assert_eq!(names(&[c(USER, 0, Some("alice"))], false), ["user=alice", "user=alice,client-id=app"]);
    assert_eq!(names(&[c(USER, 0, Some("alice"))], true), ["user=alice"]);
    assert_eq!(names(&[c(USER, 1, None)], false), ["user=<default>"]);
    assert_eq!(names(&[c(USER, 2, None)], true), ["user=<default>", "user=alice"]);
    assert_eq!(names(&[c(CLIENT_ID, 2, None)], false), ["client-id=<default>", "user=alice,client-id=app"]);
    assert_eq!(names(&[], false).len(), 4);
    assert!(names(&[], true).is_empty());
    let err = |components: &[Component]| store.describe(components, false).unwrap_err();
    assert!(matches!(err(&[c(USER, 0, None)]), QuotaError::Invalid(_)));
    assert!(matches!(err(&[c(USER, 1, Some("x"))]), QuotaError::Invalid(_)));
    assert!(matches!(err(&[c(USER, 2, None), c(USER, 2, None)]), QuotaError::Invalid(_)));
    assert!(matches!(err(&[c(IP, 2, None), c(USER, 2, None)]), QuotaError::Invalid(_)));
    assert!(matches!(err(&[c("group", 2, None)]), QuotaError::Unsupported(_)));
}

#[test]
fn the_most_specific_entity_wins_in_kafkas_order() {
    let (_dir, store) = store();
    let bound = |u: &str, c: &str| store.resolve(Kind::Produce, u, c).map(|(_, b)| b);
    assert_eq!(bound("alice", "app"), None);
    set(&store, entity(None, Some(None)), PRODUCER_BYTE_RATE, 8.0);
    assert_eq!(bound("alice", "app"), Some(8.0));
    set(&store, entity(None, Some(Some("app"))), PRODUCER_BYTE_RATE, 7.0);
    assert_eq!(bound("alice", "app"), Some(7.0));
    set(&store, entity(Some(None), None), PRODUCER_BYTE_RATE, 6.0);
    assert_eq!(bound("alice", "app"), Some(6.0));
    set(&store, entity(Some(None), Some(None)), PRODUCER_BYTE_RATE, 5.0);
    assert_eq!(bound("alice", "app"), Some(5.0));
    set(&store, entity(Some(None), Some(Some("app"))), PRODUCER_BYTE_RATE, 4.0);
    assert_eq!(bound("alice", "app"), Some(4.0));
    set(&store, entity(Some(Some("alice")), None), PRODUCER_BYTE_RATE, 3.0);
    assert_eq!(bound("alice", "app"), Some(3.0));
    set(&store, entity(Some(Some("alice")), Some(None)), PRODUCER_BYTE_RATE, 2.0);
    assert_eq!(bound("alice", "app"), Some(2.0));
    set(&store, entity(Some(Some("alice")), Some(Some("app"))), PRODUCER_BYTE_RATE, 1.0);
    assert_eq!(bound("alice", "app"), Some(1.0));
    // Another user falls back to the default user's levels; the fetch quota is unset.
    assert_eq!(bound("bob", "app"), Some(4.0));
    assert_eq!(store.resolve(Kind::Fetch, "alice", "app"), None);
}

#[test]
fn clients_of_one_user_quota_share_one_rate() {
    let (_dir, store) = store();
    set(&store, entity(Some(Some("alice")), None), PRODUCER_BYTE_RATE, 100.0);
    let a = store.resolve(Kind::Produce, "alice", "one").unwrap().0;
    let b = store.resolve(Kind::Produce, "alice", "two").unwrap().0;
    assert_eq!(a, b);
}

#[test]
fn a_burst_is_spread_over_the_window_and_costs_the_excess() {
    let (_dir, store) = store();
    set(&store, entity(Some(Some("alice")), None), PRODUCER_BYTE_RATE, 100.0);
    let t0 = 1_000_000;
    // 1000 bytes over a 10 s minimum window is exactly 100 B/s: no wait.
    assert_eq!(store.record(Kind::Produce, "alice", "", 1000.0, t0), 0);
    // 500 more: 150 B/s over 10 s, so (150 - 100) / 100 * 10 s = 5 s.
    assert_eq!(store.record(Kind::Produce, "alice", "", 500.0, t0), 5000);
    // Taking the 500 back brings the rate within the quota again.
    store.unrecord(Kind::Produce, "alice", "", 500.0, t0);
    assert_eq!(store.record(Kind::Produce, "alice", "", 0.0, t0), 0);
    // Whole windows later the samples are gone.
    assert_eq!(store.record(Kind::Produce, "alice", "", 1000.0, t0 + 20_000), 0);
    assert_eq!(store.max_in_window(Kind::Produce, "alice", ""), Some(1000.0));
    assert_eq!(store.max_in_window(Kind::Fetch, "alice", ""), None);
}

#[test]
fn the_rate_window_grows_past_its_minimum_with_time() {
    let mut r = Rate::new(0);
    for s in 0..15 {
        r.record(100.0, s * SAMPLE_MS);
    }
    // 11 samples of 100 over the window from the oldest kept sample (4 s) to 14.5 s.
    let (rate, window) = r.measure(14_500);
    assert_eq!(window, 10_500);
    assert!((rate - 1100.0 / 10.5).abs() < 1e-9, "{rate}");
}

#[test]
fn request_time_waits_are_capped_at_one_sample() {
    let (_dir, store) = store();
    set(&store, entity(None, Some(Some("busy"))), REQUEST_PERCENTAGE, 1.0);
    assert_eq!(store.record(Kind::Request, "ANONYMOUS", "busy", 500.0, 0), SAMPLE_MS as i32);
}

#[test]
fn a_changed_quota_applies_to_the_rate_already_measured() {
    let (_dir, store) = store();
    set(&store, entity(Some(Some("alice")), None), PRODUCER_BYTE_RATE, 1000.0);
    assert_eq!(store.record(Kind::Produce, "alice", "", 5000.0, 0), 0);
    set(&store, entity(Some(Some("alice")), None), PRODUCER_BYTE_RATE, 100.0);
    assert_eq!(store.record(Kind::Produce, "alice", "", 0.0, 0), 40_000);
}

#[test]
fn sensors_are_bounded_whatever_client_ids_are_sent() {
    let (_dir, store) = store();
    set(&store, entity(None, Some(None)), PRODUCER_BYTE_RATE, 1e9);
    for i in 0..(MAX_SENSORS + 10) {
        store.record(Kind::Produce, "ANONYMOUS", &format!("c{i}"), 1.0, 0);
    }
    assert!(store.sensors.lock().len() <= MAX_SENSORS);
}

/// An infinite quota is refused: JSON has no infinity, so keeping one made the quotas
/// unreadable, and the broker then could not start.
#[test]
fn an_infinite_quota_is_refused_and_the_quotas_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = QuotaStore::open(crate::auth::kept::FileKeeper::new(dir.path())).unwrap();
    let e = entity(Some(Some("alice")), None);
    let r = store.alter(vec![Ok((e, vec![Op { key: REQUEST_PERCENTAGE.into(), value: Some(f64::INFINITY) }]))], false);
    assert_eq!(r, vec![Err(QuotaError::Invalid("Quota request_percentage must be a finite number".into()))]);
    QuotaStore::open(crate::auth::kept::FileKeeper::new(dir.path())).expect("the quotas are readable");
}
