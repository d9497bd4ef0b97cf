//! Shared mode's coordinator load: the PostgreSQL traffic of many brokers, replayed against one
//! PostgreSQL, to know the coordination store's ceiling before anyone needs it. Run by
//! `scripts/bench-coordinator`, which starts a private PostgreSQL.
//!
//! Each simulated broker registers, leads its share of the partitions, and in a loop commits
//! one object holding one batch for each partition it leads (the shape of a flush under
//! load), heartbeats once a second, and every few seconds one broker "dies" (its lease is
//! ended) and comes back, so leadership moves and epochs go up as in a failover. `--connections`
//! workers share the brokers, each serving its own (a broker's commits are serial, as they
//! would be in its flush loop). Reports commits/s, index rows/s, heartbeats/s, lease moves, and commit latency.
//!
//!   cargo run --release --example coordinator_load -- --url 'host=... port=... user=...' \
//!       [--brokers 100] [--partitions-per-broker 10] [--connections 16] [--seconds 10]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor::cluster::store::{BatchRow, Leader, ObjectCommit, Registration, Store, StoreError};
use tokio::sync::Mutex;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(10);

struct Args {
    url: String,
    brokers: i32,
    partitions_per_broker: i32,
    connections: usize,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args { url: String::new(), brokers: 100, partitions_per_broker: 10, connections: 16, seconds: 10 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value,
            "--brokers" => a.brokers = value.parse().expect("--brokers N"),
            "--partitions-per-broker" => a.partitions_per_broker = value.parse().expect("--partitions-per-broker N"),
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.url.is_empty(), "--url is required");
    a
}

/// A simulated broker: its incarnation, and per partition the epoch it leads it in and the
/// next offset (loaded from the committed log end when it takes a partition over).
struct Broker {
    node_id: i32,
    incarnation: Uuid,
    next_offset: BTreeMap<(Uuid, i32), (i32, i64)>,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    rows: AtomicU64,
    fenced: AtomicU64,
    heartbeats: AtomicU64,
    moves: AtomicU64,
}

fn registration(node_id: i32) -> Registration {
    Registration {
        node_id,
        rack: None,
        listeners: [("PLAINTEXT".to_string(), format!("10.0.0.{node_id}:9092"))].into(),
    }
}

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let a = args();
    let mut admin = Store::connect(&a.url).await?;
    admin.migrate().await?;
    let mut brokers = Vec::new();
    for id in 1..=a.brokers {
        let incarnation = admin.register(&registration(id), LEASE).await?;
        brokers.push(Arc::new(Mutex::new(Broker { node_id: id, incarnation, next_offset: BTreeMap::new() })));
    }
    let topic = Uuid::new_v4();
    admin.create_topic(&format!("load-{topic}"), topic, a.brokers * a.partitions_per_broker).await?;
    admin.rebalance().await?;
    let leaders: Arc<Mutex<BTreeMap<(Uuid, i32), Leader>>> = Arc::new(Mutex::new(admin.leaders().await?));
    let counters = Arc::new(Counters::default());
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let end = Instant::now() + Duration::from_secs(a.seconds);

    // Heartbeats (every broker once a second) and a failover every 3 s, on their own connection.
    let chores = {
        let (brokers, counters, leaders, url) = (brokers.clone(), counters.clone(), leaders.clone(), a.url.clone());
        tokio::spawn(async move {
            let mut s = Store::connect(&url).await?;
            let mut tick = 0u64;
            while Instant::now() < end {
                let second = Instant::now();
                for b in &brokers {
                    let b = b.lock().await;
                    if s.heartbeat(b.node_id, b.incarnation, LEASE).await.is_ok() {
                        counters.heartbeats.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tick += 1;
                if tick.is_multiple_of(3) {
                    // Broker k dies and restarts: its partitions move away and some come back.
                    let victim = &brokers[(tick as usize / 3) % brokers.len()];
                    let mut v = victim.lock().await;
                    s.deregister(v.node_id, v.incarnation).await?;
                    counters.moves.fetch_add(s.rebalance().await?.len() as u64, Ordering::Relaxed);
                    v.incarnation = s.register(&registration(v.node_id), LEASE).await?;
                    counters.moves.fetch_add(s.rebalance().await?.len() as u64, Ordering::Relaxed);
                    *leaders.lock().await = s.leaders().await?;
                }
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(second.elapsed())).await;
            }
            Ok::<_, StoreError>(())
        })
    };

    let mut workers = Vec::new();
    let connections = a.connections.max(1);
    for w in 0..connections {
        let (brokers, counters, leaders, latencies, url) =
            (brokers.clone(), counters.clone(), leaders.clone(), latencies.clone(), a.url.clone());
        workers.push(tokio::spawn(async move {
            let mut s = Store::connect(&url).await?;
            // Worker w serves brokers w, w + C, w + 2C, ... in turn.
            let mine: Vec<_> = brokers.iter().skip(w).step_by(connections).cloned().collect();
            let mut i = 0;
            while Instant::now() < end && !mine.is_empty() {
                let mut b = mine[i % mine.len()].lock().await;
                i += 1;
                let led: Vec<((Uuid, i32), i32)> = leaders
                    .lock()
                    .await
                    .iter()
                    .filter(|(_, l)| l.node_id == Some(b.node_id))
                    .map(|(k, l)| (*k, l.epoch))
                    .collect();
                if led.is_empty() {
                    continue;
                }
                for (key, epoch) in &led {
                    if b.next_offset.get(key).is_none_or(|(e, _)| e != epoch) {
                        let end = s.log_end(key.0, key.1).await?.unwrap_or(0);
                        b.next_offset.insert(*key, (*epoch, end));
                    }
                }
                let mut rows = Vec::with_capacity(led.len());
                for (key, epoch) in &led {
                    let (_, next) = b.next_offset.get_mut(key).expect("loaded above");
                    rows.push(BatchRow {
                        topic_id: key.0,
                        partition: key.1,
                        base_offset: *next,
                        last_offset: *next + 99,
                        byte_offset: rows.len() as i64 * 16_384,
                        byte_length: 16_384,
                        max_timestamp: 0,
                        producer_id: -1,
                        producer_epoch: -1,
                        base_sequence: -1,
                        leader_epoch: *epoch,
                        attributes: Some(0),
                        marker: None,
                    });
                    *next += 100;
                }
                let commit = ObjectCommit {
                    object_key: format!("objects/{}/{}", b.node_id, Uuid::new_v4()),
                    size: rows.len() as i64 * 16_384,
                    batches: rows,
                };
                let started = Instant::now();
                match s.commit(b.node_id, b.incarnation, &commit).await {
                    Ok(()) => {
                        latencies.lock().unwrap().push(started.elapsed());
                        counters.commits.fetch_add(1, Ordering::Relaxed);
                        counters.rows.fetch_add(commit.batches.len() as u64, Ordering::Relaxed);
                    }
                    Err(StoreError::Fenced(_)) => {
                        // Moved away (or this incarnation ended): forget, reload on takeover.
                        counters.fenced.fetch_add(1, Ordering::Relaxed);
                        b.next_offset.clear();
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, StoreError>(())
        }));
    }
    let started = Instant::now();
    for w in workers {
        w.await.expect("worker panicked")?;
    }
    chores.await.expect("chores panicked")?;
    let secs = started.elapsed().as_secs_f64();
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct =
        |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or_default();
    let c = &counters;
    println!(
        "brokers {} partitions {} connections {} seconds {:.1}",
        a.brokers,
        a.brokers * a.partitions_per_broker,
        a.connections,
        secs
    );
    println!(
        "commits/s {:.0}  index rows/s {:.0}  heartbeats/s {:.0}  fenced commits {}  lease moves {}",
        c.commits.load(Ordering::Relaxed) as f64 / secs,
        c.rows.load(Ordering::Relaxed) as f64 / secs,
        c.heartbeats.load(Ordering::Relaxed) as f64 / secs,
        c.fenced.load(Ordering::Relaxed),
        c.moves.load(Ordering::Relaxed)
    );
    println!(
        "commit latency p50 {:.1} ms  p99 {:.1} ms",
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}
