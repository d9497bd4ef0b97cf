//! Shared mode's coordinator load: the PostgreSQL traffic of many brokers, replayed against one
//! PostgreSQL, to know the coordination store's ceiling before anyone needs it. Run by
//! `scripts/bench-coordinator`, which starts a private PostgreSQL.
//!
//! Each simulated broker registers, leads its share of the partitions, and in a loop commits
//! one object holding one batch for each partition it leads (the shape of a flush under
//! load), heartbeats once a second, and every few seconds one broker "dies" (its lease is
//! ended) and comes back, so leadership moves and epochs go up as in a failover. `--connections`
//! workers share the brokers, each serving its own (a broker's commits are serial, as they
//! would be in its flush loop).
//!
//! Beside the commits, on `--background-connections` other connections, each broker does what
//! a real one does besides committing, at the rates given:
//! - reads of the batch index for consumers reading what only the store holds
//!   (`--reads-per-broker` a second, 500 rows at most each, as a stored read asks);
//! - share-partition state writes (`--share-writes-per-broker` a second, fenced like commits);
//! - a retention pass every `--retention-interval-s` over the partitions it leads (the retention
//!   query per partition, one fenced move of the log starts, then a sweep of the rows let go of),
//!   keeping `--retain-rows` batches of each;
//! - a merge pass every `--merge-interval-s`: per partition, what was committed since its last
//!   merge is written again as one object, replacing its rows in one fenced transaction.
//!
//! And each partition a failover moves is rebuilt by its new leader from the rows (on one more
//! connection): its bounds, the start of the tail it copies (`--tail-rows` batches), and the
//! rows before the tail, read in pages of 1,000 as the producer state replay reads them.
//!
//! Reports each kind's rate and latency. The intervals default to the broker's own defaults
//! (five minutes for retention checks and merges); shorter ones show the headroom.
//!
//!   cargo run --release --example coordinator_load -- --url 'host=... port=... user=...' \
//!       [--brokers 100] [--partitions-per-broker 10] [--connections 16] [--seconds 10] \
//!       [--background-connections 8] [--reads-per-broker 2] [--share-writes-per-broker 2] \
//!       [--retention-interval-s 300] [--merge-interval-s 300] [--retain-rows 1000] [--tail-rows 64]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor::cluster::store::{
    BatchRow, Leader, LogStart, ObjectCommit, Registration, Rewrite, ShareStateRow, Store, StoreError,
};
use tokio::sync::{mpsc, Mutex};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(10);
/// The bytes each simulated batch holds.
const BATCH_BYTES: i64 = 16_384;
/// Rows a stored read asks for (the broker's own `READ_ROWS`).
const READ_ROWS: i64 = 500;
/// Rows a rebuild reads at a time (the broker's own `REBUILD_ROWS`).
const REBUILD_ROWS: i64 = 1000;
/// Rows a sweep deletes at most (the broker's own `SWEEP_ROWS`).
const SWEEP_ROWS: i64 = 10_000;
/// Connections the brokers' heartbeats share.
const HEARTBEAT_CONNECTIONS: usize = 4;

struct Args {
    url: String,
    brokers: i32,
    partitions_per_broker: i32,
    connections: usize,
    seconds: u64,
    background_connections: usize,
    reads_per_broker: f64,
    share_writes_per_broker: f64,
    retention_interval_s: f64,
    merge_interval_s: f64,
    retain_rows: i64,
    tail_rows: i64,
    history_rows: i64,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        brokers: 100,
        partitions_per_broker: 10,
        connections: 16,
        seconds: 10,
        background_connections: 8,
        reads_per_broker: 2.0,
        share_writes_per_broker: 2.0,
        retention_interval_s: 300.0,
        merge_interval_s: 300.0,
        retain_rows: 1000,
        tail_rows: 64,
        history_rows: 500,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = |what: &str| -> f64 { value.parse().unwrap_or_else(|_| panic!("{what} takes a number")) };
        match flag.as_str() {
            "--url" => a.url = value.clone(),
            "--brokers" => a.brokers = number("--brokers") as i32,
            "--partitions-per-broker" => a.partitions_per_broker = number("--partitions-per-broker") as i32,
            "--connections" => a.connections = number("--connections") as usize,
            "--seconds" => a.seconds = number("--seconds") as u64,
            "--background-connections" => a.background_connections = number("--background-connections") as usize,
            "--reads-per-broker" => a.reads_per_broker = number("--reads-per-broker"),
            "--share-writes-per-broker" => a.share_writes_per_broker = number("--share-writes-per-broker"),
            "--retention-interval-s" => a.retention_interval_s = number("--retention-interval-s"),
            "--merge-interval-s" => a.merge_interval_s = number("--merge-interval-s"),
            "--retain-rows" => a.retain_rows = number("--retain-rows") as i64,
            "--tail-rows" => a.tail_rows = number("--tail-rows") as i64,
            "--history-rows" => a.history_rows = number("--history-rows") as i64,
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.url.is_empty(), "--url is required");
    a
}

/// A simulated broker: its incarnation, and per partition the epoch it leads it in and the
/// next offset (loaded from the committed log end when it takes a partition over). The
/// incarnation is apart from the offsets, which its commit worker holds while it commits, so
/// that heartbeats do not wait on commits.
struct Broker {
    node_id: i32,
    incarnation: std::sync::Mutex<Uuid>,
    next_offset: Mutex<BTreeMap<(Uuid, i32), (i32, i64)>>,
}

impl Broker {
    fn incarnation(&self) -> Uuid {
        *self.incarnation.lock().unwrap()
    }
}

/// What was done, by kind: how many, how long each took, and a count beside (rows, or
/// refusals).
#[derive(Default)]
struct Kind {
    done: AtomicU64,
    rows: AtomicU64,
    fenced: AtomicU64,
    latencies: std::sync::Mutex<Vec<Duration>>,
}

impl Kind {
    fn took(&self, started: Instant, rows: u64) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.latencies.lock().unwrap().push(started.elapsed());
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut l = self.latencies.lock().unwrap().clone();
        l.sort();
        let at = ((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1));
        l.get(at).copied().unwrap_or_default().as_secs_f64() * 1000.0
    }
}

#[derive(Default)]
struct Counters {
    commits: Kind,
    heartbeats: AtomicU64,
    moves: AtomicU64,
    reads: Kind,
    share_writes: Kind,
    retention: Kind,
    sweeps: Kind,
    merges: Kind,
    rebuilds: Kind,
}

type Leaders = Arc<Mutex<BTreeMap<(Uuid, i32), Leader>>>;

fn registration(node_id: i32) -> Registration {
    Registration {
        node_id,
        rack: None,
        listeners: [("PLAINTEXT".to_string(), format!("10.0.0.{node_id}:9092"))].into(),
    }
}

/// The partitions `node_id` leads, with its epoch in each.
async fn led_by(leaders: &Leaders, node_id: i32) -> Vec<((Uuid, i32), i32)> {
    leaders.lock().await.iter().filter(|(_, l)| l.node_id == Some(node_id)).map(|(k, l)| (*k, l.epoch)).collect()
}

/// A fenced refusal is counted; any other error ends the run.
fn fenced<T>(r: Result<T, StoreError>, kind: &Kind) -> Result<Option<T>, StoreError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::Fenced(_)) | Err(StoreError::NotContiguous(_)) => {
            kind.fenced.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let a = Arc::new(args());
    let mut admin = Store::connect(&a.url).await?;
    admin.migrate().await?;
    let mut brokers = Vec::new();
    for id in 1..=a.brokers {
        let incarnation = admin.register(&registration(id), LEASE).await?;
        let incarnation = std::sync::Mutex::new(incarnation);
        brokers.push(Arc::new(Broker { node_id: id, incarnation, next_offset: Mutex::default() }));
    }
    let topic = Uuid::new_v4();
    admin.create_topic(&format!("load-{topic}"), topic, a.brokers * a.partitions_per_broker).await?;
    admin.rebalance().await?;
    let leaders: Leaders = Arc::new(Mutex::new(admin.leaders().await?));
    // The partitions' history, committed before the clock starts: what stored reads, retention,
    // merges and rebuilds find in the index.
    if a.history_rows > 0 {
        for (n, b) in brokers.iter().enumerate() {
            if n % 10 == 0 {
                // Each commit takes a while: the leases must outlast them all.
                for b in &brokers {
                    admin.heartbeat(b.node_id, b.incarnation(), LEASE).await?;
                }
            }
            let led = led_by(&leaders, b.node_id).await;
            let batches: Vec<BatchRow> = led
                .iter()
                .flat_map(|&(key, epoch)| (0..a.history_rows).map(move |i| (key, i * 100, epoch)))
                .enumerate()
                .map(|(i, (key, base, epoch))| row(key, base, i as i64, epoch))
                .collect();
            let size = batches.len() as i64 * BATCH_BYTES;
            let commit = ObjectCommit { object_key: format!("history/{}", b.node_id), size, batches };
            admin.commit(b.node_id, b.incarnation(), &commit).await?;
        }
        for b in &brokers {
            admin.heartbeat(b.node_id, b.incarnation(), LEASE).await?;
        }
    }
    let counters = Arc::new(Counters::default());
    let planned = Duration::from_secs(a.seconds);
    let end = Instant::now() + planned;
    let (moved_tx, moved_rx) = mpsc::unbounded_channel();

    // Heartbeats: every broker once a second, on connections of their own (a broker's
    // heartbeat does not wait for its commits, nor for another broker's heartbeat).
    let mut heartbeats = Vec::new();
    for h in 0..HEARTBEAT_CONNECTIONS {
        let (brokers, counters, url) = (brokers.clone(), counters.clone(), a.url.clone());
        heartbeats.push(tokio::spawn(async move {
            let s = Store::connect(&url).await?;
            while Instant::now() < end {
                let second = Instant::now();
                for b in brokers.iter().skip(h).step_by(HEARTBEAT_CONNECTIONS) {
                    if s.heartbeat(b.node_id, b.incarnation(), LEASE).await.is_ok() {
                        counters.heartbeats.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(second.elapsed())).await;
            }
            Ok::<_, StoreError>(())
        }));
    }

    // A failover every 3 s, on its own connection.
    let chores = {
        let (brokers, counters, leaders, url) = (brokers.clone(), counters.clone(), leaders.clone(), a.url.clone());
        tokio::spawn(async move {
            let mut s = Store::connect(&url).await?;
            let mut tick = 0u64;
            while Instant::now() < end {
                let second = Instant::now();
                tick += 1;
                if tick.is_multiple_of(3) {
                    // Broker k dies and restarts: its partitions move away and some come back.
                    let victim = &brokers[(tick as usize / 3) % brokers.len()];
                    let v = victim;
                    s.deregister(v.node_id, v.incarnation()).await?;
                    let mut moves = s.rebalance().await?;
                    *v.incarnation.lock().unwrap() = s.register(&registration(v.node_id), LEASE).await?;
                    moves.extend(s.rebalance().await?);
                    counters.moves.fetch_add(moves.len() as u64, Ordering::Relaxed);
                    *leaders.lock().await = s.leaders().await?;
                    for m in moves {
                        let _ = moved_tx.send(m.partition);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1).saturating_sub(second.elapsed())).await;
            }
            Ok::<_, StoreError>(())
        })
    };

    // Each moved partition rebuilt by its new leader, from the rows.
    let rebuilds = {
        let (counters, a) = (counters.clone(), a.clone());
        tokio::spawn(async move {
            let s = Store::connect(&a.url).await?;
            let mut moved_rx = moved_rx;
            while let Ok(Some(key)) = tokio::time::timeout_at(end.into(), moved_rx.recv()).await {
                let started = Instant::now();
                let Some((log_start, _)) = s.log_bounds(key.0, key.1).await? else { continue };
                let mut replayed = 0;
                if let Some((first, tail)) = s.tail_start(key.0, key.1, log_start, a.tail_rows * BATCH_BYTES).await? {
                    let mut at = first;
                    while at < tail {
                        let page = s.batches(key.0, key.1, at, REBUILD_ROWS).await?;
                        let Some((last, _)) = page.last() else { break };
                        at = last.last_offset + 1;
                        replayed += page.iter().filter(|(b, _)| b.base_offset < tail).count() as u64;
                    }
                }
                counters.rebuilds.took(started, replayed);
            }
            Ok::<_, StoreError>(())
        })
    };

    let mut workers = Vec::new();
    let connections = a.connections.max(1);
    for w in 0..connections {
        let (brokers, counters, leaders, url) = (brokers.clone(), counters.clone(), leaders.clone(), a.url.clone());
        workers.push(tokio::spawn(async move {
            let mut s = Store::connect(&url).await?;
            // Worker w serves brokers w, w + C, w + 2C, ... in turn.
            let mine: Vec<_> = brokers.iter().skip(w).step_by(connections).cloned().collect();
            let mut i = 0;
            while Instant::now() < end && !mine.is_empty() {
                let broker = &mine[i % mine.len()];
                let mut next_offset = broker.next_offset.lock().await;
                i += 1;
                let led = led_by(&leaders, broker.node_id).await;
                if led.is_empty() {
                    continue;
                }
                for (key, epoch) in &led {
                    if next_offset.get(key).is_none_or(|(e, _)| e != epoch) {
                        let end = s.log_end(key.0, key.1).await?.unwrap_or(0);
                        next_offset.insert(*key, (*epoch, end));
                    }
                }
                let mut rows = Vec::with_capacity(led.len());
                for (key, epoch) in &led {
                    let (_, next) = next_offset.get_mut(key).expect("loaded above");
                    rows.push(row(*key, *next, rows.len() as i64, *epoch));
                    *next += 100;
                }
                let commit = ObjectCommit {
                    object_key: format!("objects/{}/{}", broker.node_id, Uuid::new_v4()),
                    size: rows.len() as i64 * BATCH_BYTES,
                    batches: rows,
                };
                let started = Instant::now();
                match s.commit(broker.node_id, broker.incarnation(), &commit).await {
                    Ok(()) => counters.commits.took(started, commit.batches.len() as u64),
                    Err(StoreError::Fenced(_)) => {
                        // Moved away (or this incarnation ended): forget, reload on takeover.
                        counters.commits.fenced.fetch_add(1, Ordering::Relaxed);
                        next_offset.clear();
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, StoreError>(())
        }));
    }

    let mut background = Vec::new();
    let background_connections = a.background_connections.max(1);
    for w in 0..background_connections {
        let (brokers, counters, leaders, a) = (brokers.clone(), counters.clone(), leaders.clone(), a.clone());
        background.push(tokio::spawn(async move {
            let mut s = Store::connect(&a.url).await?;
            let mine: Vec<_> = brokers.iter().skip(w).step_by(background_connections).cloned().collect();
            // (when, which broker, which chore), soonest first; each chore's first turn is
            // spread over its interval so that brokers do not all start together.
            let intervals =
                [1.0 / a.reads_per_broker, 1.0 / a.share_writes_per_broker, a.retention_interval_s, a.merge_interval_s];
            let mut due = BinaryHeap::new();
            let now = Instant::now();
            for (i, b) in mine.iter().enumerate() {
                let node_id = b.node_id;
                for (chore, &every) in intervals.iter().enumerate() {
                    if every.is_finite() && every > 0.0 {
                        let phase = every * (((node_id as usize * 7919 + chore * 104_729) % 1000) as f64 / 1000.0);
                        due.push(Reverse((now + Duration::from_secs_f64(phase), i, chore)));
                    }
                }
            }
            let mut read_offset = 0i64;
            while let Some(Reverse((at, i, chore))) = due.pop() {
                if at >= end || Instant::now() >= end {
                    // Chores that fell behind are not made up for after the end.
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                due.push(Reverse((at + Duration::from_secs_f64(intervals[chore]), i, chore)));
                let (node_id, incarnation) = (mine[i].node_id, mine[i].incarnation());
                let led = led_by(&leaders, node_id).await;
                if led.is_empty() {
                    continue;
                }
                read_offset += 1;
                let (key, epoch) = led[read_offset as usize % led.len()];
                let started = Instant::now();
                match chore {
                    0 => {
                        // A consumer somewhere in what only the store holds.
                        let from = (read_offset * 7_919) % (a.history_rows * 100).max(1);
                        let rows = s.batches(key.0, key.1, from, READ_ROWS).await?;
                        counters.reads.took(started, rows.len() as u64);
                    }
                    1 => {
                        let state = ShareStateRow {
                            topic_id: key.0,
                            partition: key.1,
                            group_id: format!("share-{}", key.1 % 10),
                            leader_epoch: epoch,
                            state: Some(vec![7; 200]),
                        };
                        let w = s.write_share_states(node_id, incarnation, &[state]).await;
                        if let Some(lost) = fenced(w, &counters.share_writes)? {
                            counters.share_writes.took(started, 1 - lost.len() as u64);
                        }
                    }
                    2 => retention(&mut s, &counters, node_id, incarnation, &led, a.retain_rows).await?,
                    _ => merge(&mut s, &counters, node_id, incarnation, &led).await?,
                }
            }
            Ok::<_, StoreError>(())
        }));
    }

    let started = Instant::now();
    let mut finished = Vec::new();
    for (name, tasks) in [
        ("commits", workers),
        ("background", background),
        ("chores", vec![chores]),
        ("heartbeats", heartbeats),
        ("rebuilds", vec![rebuilds]),
    ] {
        for t in tasks {
            t.await.expect("a task panicked")?;
        }
        finished.push(format!("{name} +{:.1}", started.elapsed().saturating_sub(planned).as_secs_f64()));
    }
    eprintln!("{}", finished.join(", "));
    // Commits and chores stop at the end; the last ones under way finish after it.
    let secs = planned.as_secs_f64();
    let overran = started.elapsed().saturating_sub(planned).as_secs_f64();
    let c = &counters;
    println!(
        "brokers {} partitions {} (history {} rows each) connections {} + {} background seconds {:.0} (+{:.1} to finish)",
        a.brokers,
        a.brokers * a.partitions_per_broker,
        a.history_rows,
        a.connections,
        a.background_connections,
        secs,
        overran
    );
    println!(
        "commits/s {:.0}  index rows/s {:.0}  heartbeats/s {:.0}  fenced commits {}  lease moves {}",
        c.commits.done.load(Ordering::Relaxed) as f64 / secs,
        c.commits.rows.load(Ordering::Relaxed) as f64 / secs,
        c.heartbeats.load(Ordering::Relaxed) as f64 / secs,
        c.commits.fenced.load(Ordering::Relaxed),
        c.moves.load(Ordering::Relaxed)
    );
    println!("commit latency p50 {:.1} ms  p99 {:.1} ms", c.commits.percentile(0.50), c.commits.percentile(0.99));
    println!("{:<14} {:>8} {:>10} {:>9} {:>9} {:>8}", "background", "per s", "rows", "p50 ms", "p99 ms", "fenced");
    for (name, k) in [
        ("stored reads", &c.reads),
        ("share writes", &c.share_writes),
        ("retention", &c.retention),
        ("sweeps", &c.sweeps),
        ("merges", &c.merges),
        ("rebuilds", &c.rebuilds),
    ] {
        println!(
            "{:<14} {:>8.1} {:>10} {:>9.1} {:>9.1} {:>8}",
            name,
            k.done.load(Ordering::Relaxed) as f64 / secs,
            k.rows.load(Ordering::Relaxed),
            k.percentile(0.50),
            k.percentile(0.99),
            k.fenced.load(Ordering::Relaxed)
        );
    }
    Ok(())
}

/// The row of a 100-record batch at `base` in a commit's object, the `index`-th batch in it.
fn row(key: (Uuid, i32), base: i64, index: i64, epoch: i32) -> BatchRow {
    BatchRow {
        topic_id: key.0,
        partition: key.1,
        base_offset: base,
        last_offset: base + 99,
        byte_offset: index * BATCH_BYTES,
        byte_length: BATCH_BYTES as i32,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        leader_epoch: epoch,
        attributes: Some(0),
        marker: None,
    }
}

/// A retention pass of one broker: where each partition's log would start keeping
/// `retain_rows` batches, one fenced move of the starts, then a sweep of the rows let go of.
async fn retention(
    s: &mut Store,
    counters: &Counters,
    node_id: i32,
    incarnation: Uuid,
    led: &[((Uuid, i32), i32)],
    retain_rows: i64,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut wanted = Vec::new();
    for &((topic_id, partition), epoch) in led {
        let Some((log_start, _)) = s.log_bounds(topic_id, partition).await? else { continue };
        if let Some(start) =
            s.retention_start(topic_id, partition, log_start, None, Some(retain_rows * BATCH_BYTES)).await?
        {
            wanted.push(LogStart { topic_id, partition, leader_epoch: epoch, log_start: start });
        }
    }
    let moved = if wanted.is_empty() {
        Vec::new()
    } else {
        fenced(s.advance_log_starts(node_id, incarnation, &wanted).await, &counters.retention)?.unwrap_or_default()
    };
    counters.retention.took(started, moved.len() as u64);
    if !moved.is_empty() {
        let started = Instant::now();
        let swept = s.sweep(SWEEP_ROWS).await?;
        counters.sweeps.took(started, swept);
    }
    Ok(())
}

/// A merge pass of one broker: per partition, the batches committed since its last merge
/// written again as one object, replacing their rows.
async fn merge(
    s: &mut Store,
    counters: &Counters,
    node_id: i32,
    incarnation: Uuid,
    led: &[((Uuid, i32), i32)],
) -> Result<(), StoreError> {
    for &((topic_id, partition), epoch) in led {
        let started = Instant::now();
        let from = s.merged_to(topic_id, partition).await?;
        let rows: Vec<BatchRow> = s
            .batches(topic_id, partition, from, REBUILD_ROWS)
            .await?
            .into_iter()
            .map(|(b, _)| b)
            .filter(|b| b.base_offset >= from)
            .collect();
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else { continue };
        let (from, to) = (first.base_offset, last.last_offset + 1);
        let batches: Vec<BatchRow> = rows
            .iter()
            .enumerate()
            .map(|(i, b)| BatchRow { byte_offset: i as i64 * BATCH_BYTES, ..b.clone() })
            .collect();
        let object = ObjectCommit {
            object_key: format!("merged/{node_id}/{}", Uuid::new_v4()),
            size: batches.len() as i64 * BATCH_BYTES,
            batches,
        };
        let n = object.batches.len() as u64;
        let rewrite = Rewrite { topic_id, partition, leader_epoch: epoch, from, to, object };
        if fenced(s.rewrite(node_id, incarnation, &rewrite).await, &counters.merges)?.is_some() {
            counters.merges.took(started, n);
        }
    }
    Ok(())
}
