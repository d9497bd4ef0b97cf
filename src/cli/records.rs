//! `gregor produce` (lines from standard input as records) and `gregor consume` (records to
//! standard output, alone or as a member of a consumer group).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use serde_json::json;

use super::member::{Beat, Member};
use super::*;
use crate::log::batch;

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    pub topic: String,
    /// Split each line at the first SEP into key and value (without it a line is the value).
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Write every record to this partition (default: by key, as Kafka's clients hash it;
    /// lines without a key in turn).
    #[arg(long)]
    pub partition: Option<i32>,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// A header for every record, KEY=VALUE (repeat for more).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long, conflicts_with = "group")]
    pub partition: Option<i32>,
    /// Start at the first record (default: at the end, records written from now on). With
    /// --group: where partitions without a committed offset start.
    #[arg(long, conflicts_with_all = ["offset", "from_time"])]
    pub from_beginning: bool,
    /// Start at this offset (with --partition).
    #[arg(long, requires = "partition", conflicts_with = "from_time")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time: YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM]
    /// (UTC without a zone) or milliseconds since the epoch.
    #[arg(long, conflicts_with = "group")]
    pub from_time: Option<String>,
    /// Consume as a member of this consumer group: partitions shared with its other members,
    /// starting from its committed offsets, committing what was printed.
    #[arg(long)]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this long without a record, in ms (default: wait for ever).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Output format, as kcat's -f: %t topic, %p partition, %o offset, %k key, %s value,
    /// %T timestamp, %h headers (k=v,...), \n and \t. Default: "%s\n".
    #[arg(long)]
    pub format: Option<String>,
}

/// Records buffered for one partition before they go out as one batch.
const BATCH_RECORDS: usize = 1000;
const BATCH_BYTES: usize = 512 << 10;

/// A record to produce: key (if any) and value.
type KeyedLine = (Option<Vec<u8>>, Vec<u8>);

/// Kafka's compression attribute for a codec name.
fn codec(name: &str) -> anyhow::Result<i16> {
    Ok(match name {
        "none" => 0,
        "gzip" => 1,
        "snappy" => 2,
        "lz4" => 3,
        "zstd" => 4,
        other => bail!("--compression {other}: expected none, gzip, snappy, lz4 or zstd"),
    })
}

/// Where produce sends each partition's batches: a connection per leader.
struct Producer<'a> {
    args: &'a ProduceArgs,
    acks: i16,
    codec: i16,
    headers: Vec<(String, String)>,
    leaders: BTreeMap<i32, i32>,
    addresses: BTreeMap<i32, String>,
    connections: BTreeMap<i32, Connection>,
    sent: usize,
}

impl Producer<'_> {
    async fn send(&mut self, partition: i32, records: &[KeyedLine]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let headers: Vec<batch::Header<'_>> =
            self.headers.iter().map(|(k, v)| (k.as_bytes(), Some(v.as_bytes()))).collect();
        let with_headers: Vec<_> =
            records.iter().map(|(k, v)| ((k.as_deref(), Some(v.as_slice())), headers.clone())).collect();
        let records_batch = batch::build_with_headers(&with_headers, crate::clock::now_ms(), self.codec)
            .context("compressing a batch")?;
        let req = ProduceRequest::default().with_acks(self.acks).with_timeout_ms(30_000).with_topic_data(vec![
            TopicProduceData::default().with_name(name(&self.args.topic)).with_partition_data(vec![
                PartitionProduceData::default().with_index(partition).with_records(Some(records_batch.into())),
            ]),
        ]);
        let leader = *self
            .leaders
            .get(&partition)
            .with_context(|| format!("the broker listed no partition {partition} of '{}'", self.args.topic))?;
        if !self.connections.contains_key(&leader) {
            let address = self.addresses.get(&leader).with_context(|| format!("no address for broker {leader}"))?;
            self.connections.insert(leader, Connection::open(address).await?);
        }
        let conn = self.connections.get_mut(&leader).expect("just opened");
        if self.acks == 0 {
            conn.send_only(9, &req).await?;
        } else {
            let resp = conn.call(9, &req).await?;
            for p in resp.responses.iter().flat_map(|t| &t.partition_responses) {
                let what = format!("producing to {}-{partition}", self.args.topic);
                check(p.error_code, p.error_message.as_ref(), &what)?;
            }
        }
        self.sent += records.len();
        Ok(())
    }
}

pub async fn produce(common: &Common, args: &ProduceArgs) -> anyhow::Result<()> {
    let acks: i16 = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => bail!("--acks {other}: expected 0, 1 or all"),
    };
    let codec = codec(&args.compression)?;
    let headers = args
        .headers
        .iter()
        .map(|h| key_value(h, "--header").map(|(k, v)| (k.to_string(), v.to_string())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut c = Connection::open(&common.bootstrap_server).await?;
    // A topic the broker creates on first use has no leader for a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let md = loop {
        let md = metadata_creating(&mut c, Some(vec![&args.topic]), true).await?;
        let t = md.topics.first().context("the broker answered without the topic")?;
        let leaderless = t.error_code == 5 || (t.error_code == 0 && t.partitions.is_empty());
        if !leaderless || Instant::now() >= deadline {
            break md;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let t = md.topics.first().context("the broker answered without the topic")?;
    check(t.error_code, None, &format!("producing to '{}'", args.topic))?;
    let leaders: BTreeMap<i32, i32> = t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0)).collect();
    if leaders.is_empty() {
        bail!("topic '{}' has no partitions with a leader yet; try again", args.topic);
    }
    let count = leaders.len() as i32;
    if let Some(p) = args.partition.filter(|p| !leaders.contains_key(p)) {
        bail!("topic '{}' has no partition {p}", args.topic);
    }
    let mut producer = Producer {
        args,
        acks,
        codec,
        headers,
        leaders,
        addresses: brokers(&md),
        connections: BTreeMap::new(),
        sent: 0,
    };
    // Lines are read as they come and go out in batches per partition, so input of any size
    // streams through in bounded memory; progress shows on a terminal.
    let progress = std::io::stderr().is_terminal() && !common.json;
    let mut last_progress = Instant::now();
    let mut pending: BTreeMap<i32, (Vec<KeyedLine>, usize)> = BTreeMap::new();
    let mut next = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading standard input")?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.as_bytes().to_vec()), v.as_bytes().to_vec()),
                None => (None, line.into_bytes()),
            },
            None => (None, line.into_bytes()),
        };
        let partition = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for(k, count),
            (None, None) => {
                next = (next + 1) % count;
                next
            }
        };
        let (records, bytes) = pending.entry(partition).or_default();
        *bytes += value.len() + key.as_ref().map_or(0, Vec::len);
        records.push((key, value));
        if records.len() >= BATCH_RECORDS || *bytes >= BATCH_BYTES {
            let full = std::mem::take(records);
            *bytes = 0;
            producer.send(partition, &full).await?;
            if progress && last_progress.elapsed() >= Duration::from_secs(1) {
                eprint!("\rproduced {} record(s)", producer.sent);
                last_progress = Instant::now();
            }
        }
    }
    for (partition, (records, _)) in std::mem::take(&mut pending) {
        producer.send(partition, &records).await?;
    }
    if common.json {
        println!("{}", json!({"topic": args.topic, "records": producer.sent}));
    } else {
        eprintln!("{}produced {} record(s) to '{}'", if progress { "\r" } else { "" }, producer.sent, args.topic);
    }
    Ok(())
}

/// Kafka's default partitioner: murmur2 of the key, made positive, modulo the partitions.
fn partition_for(key: &[u8], partitions: i32) -> i32 {
    const M: u32 = 0x5bd1e995;
    let mut h: u32 = 0x9747b28c ^ key.len() as u32;
    let chunks = key.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions as u32) as i32
}

/// Text for bytes that may not be UTF-8.
fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Prints records and keeps each partition's position; `printed` counts toward `--count`.
struct Printer<'a> {
    common: &'a Common,
    args: &'a ConsumeArgs,
    format: String,
    printed: usize,
}

impl Printer<'_> {
    fn done(&self) -> bool {
        self.args.count.is_some_and(|c| self.printed >= c)
    }

    /// Prints the records of a fetched partition from `*position` on and moves the position
    /// past what was printed (past whole batches unless --count stops in the middle of one).
    fn print(
        &mut self,
        out: &mut impl Write,
        partition: i32,
        mut rest: &[u8],
        position: &mut i64,
    ) -> anyhow::Result<usize> {
        let mut n = 0;
        let topic = self.args.topic.as_str();
        while let Some((_, len)) = batch::peek_len(rest) {
            if self.done() {
                break;
            }
            let Some(b) = rest.get(..len) else { break };
            rest = &rest[len..];
            let Some(h) = batch::BatchHeader::parse(b) else { break };
            // A batch may begin before the position asked for: skip what is before it.
            let from = *position;
            if h.is_control() {
                *position = (*position).max(h.last_offset() + 1);
                continue;
            }
            let mut last_printed = None;
            batch::with_records(b, |records| -> anyhow::Result<()> {
                for r in records.iter().filter(|r| r.offset >= from) {
                    if self.done() {
                        break;
                    }
                    let headers = r.header_pairs().unwrap_or_default();
                    if self.common.json {
                        let hs: Vec<_> = headers
                            .iter()
                            .map(|(k, v)| json!({"key": String::from_utf8_lossy(k), "value": text(*v)}))
                            .collect();
                        let line = json!({"topic": topic, "partition": partition, "offset": r.offset,
                            "timestamp": r.timestamp, "key": text(r.key), "value": text(r.value), "headers": hs});
                        writeln!(out, "{line}")?;
                    } else {
                        let hs: Vec<String> = headers
                            .iter()
                            .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), text(*v).unwrap_or_default()))
                            .collect();
                        let s = self
                            .format
                            .replace("%t", topic)
                            .replace("%p", &partition.to_string())
                            .replace("%o", &r.offset.to_string())
                            .replace("%T", &r.timestamp.to_string())
                            .replace("%h", &hs.join(","))
                            .replace("%k", &text(r.key).unwrap_or_default())
                            .replace("%s", &text(r.value).unwrap_or_default());
                        write!(out, "{s}")?;
                    }
                    self.printed += 1;
                    n += 1;
                    last_printed = Some(r.offset);
                }
                Ok(())
            })
            .map_err(|e| anyhow::anyhow!("reading a batch of {topic}-{partition}: {e}"))??;
            *position = match (self.done(), last_printed) {
                (true, Some(o)) => o + 1,
                _ => (*position).max(h.last_offset() + 1),
            };
        }
        Ok(n)
    }
}

pub async fn consume(common: &Common, args: &ConsumeArgs) -> anyhow::Result<()> {
    let mut c = Connection::open(&common.bootstrap_server).await?;
    let md = metadata(&mut c, Some(vec![&args.topic])).await?;
    let t = md.topics.first().context("the broker answered without the topic")?;
    check(t.error_code, None, &format!("consuming '{}'", args.topic))?;
    let mut partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    partitions.sort_unstable();
    if let Some(p) = args.partition {
        if !partitions.contains(&p) {
            bail!("topic '{}' has no partition {p}", args.topic);
        }
        partitions = vec![p];
    }
    let reset = if args.from_beginning { -2 } else { -1 };
    let mut member = match &args.group {
        Some(g) => Some(Member::new(&mut c, common, g, &args.topic).await?),
        None => None,
    };
    let mut positions = match &mut member {
        Some(m) => {
            let assigned = m.join(&mut c).await?;
            group_positions(&mut c, m, &args.topic, &assigned, reset).await?
        }
        None => {
            let from = match &args.from_time {
                Some(t) => parse_time(t)?,
                None => reset,
            };
            let mut p = offsets_at(&mut c, &args.topic, partitions.iter().copied(), from).await?;
            if from >= 0 {
                // Partitions without a record that late start at their end.
                let ends = end_offsets(&mut c, &args.topic, partitions.iter().copied()).await?;
                for (partition, o) in p.iter_mut().filter(|(_, o)| **o < 0) {
                    *o = ends.get(partition).copied().unwrap_or(0);
                }
            }
            if let (Some(p0), Some(o)) = (args.partition, args.offset) {
                p.insert(p0, o);
            }
            p
        }
    };
    let mut committed = positions.clone();
    let format = args.format.clone().unwrap_or_else(|| "%s\\n".into()).replace("\\n", "\n").replace("\\t", "\t");
    let mut printer = Printer { common, args, format, printed: 0 };
    let mut out = std::io::stdout().lock();
    let mut last = Instant::now();
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let result: anyhow::Result<()> = async {
        loop {
            if let Some(m) = &mut member {
                if let Beat::Rejoin = m.heartbeat(&mut c).await? {
                    m.commit(&mut c, &changed(&positions, &committed)).await?;
                    let assigned = m.join(&mut c).await?;
                    positions = group_positions(&mut c, m, &args.topic, &assigned, reset).await?;
                    committed = positions.clone();
                }
            }
            let got = if positions.is_empty() {
                // Nothing assigned (more members than partitions): keep the membership alive.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => 0,
                    _ = &mut interrupted => return Ok(()),
                }
            } else {
                let parts = positions
                    .iter()
                    .map(|(p, o)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect();
                let req = FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(500)
                    .with_min_bytes(1)
                    .with_max_bytes(8 << 20)
                    .with_session_epoch(-1)
                    .with_topics(vec![FetchTopic::default().with_topic(name(&args.topic)).with_partitions(parts)]);
                let resp = tokio::select! {
                    r = c.call(12, &req) => r?,
                    _ = &mut interrupted => return Ok(()),
                };
                check(resp.error_code, None, "fetching")?;
                let mut got = 0;
                for p in resp.responses.iter().flat_map(|t| &t.partitions) {
                    check(p.error_code, None, &format!("fetching {}-{}", args.topic, p.partition_index))?;
                    let Some(records) = p.records.as_deref() else { continue };
                    let Some(position) = positions.get_mut(&p.partition_index) else { continue };
                    got += printer.print(&mut out, p.partition_index, records, position)?;
                }
                out.flush()?;
                got
            };
            if let Some(m) = &mut member {
                let moved = changed(&positions, &committed);
                if !moved.is_empty() {
                    m.commit(&mut c, &moved).await?;
                    committed.extend(moved);
                }
            }
            if printer.done() {
                return Ok(());
            }
            if got > 0 {
                last = Instant::now();
            } else if args.timeout_ms.is_some_and(|t| last.elapsed().as_millis() as u64 >= t) {
                return Ok(());
            }
        }
    }
    .await;
    if let Some(m) = &mut member {
        // Whatever stopped the loop, what was printed is committed and the group told.
        let moved = changed(&positions, &committed);
        let committed = m.commit(&mut c, &moved).await;
        let left = m.leave(&mut c).await;
        result?;
        committed?;
        return left;
    }
    result
}

/// The positions that differ from the committed ones.
fn changed(positions: &BTreeMap<i32, i64>, committed: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    positions.iter().filter(|(p, o)| committed.get(p) != Some(o)).map(|(p, o)| (*p, *o)).collect()
}

/// Where a member starts on its assigned partitions: the committed offset, else `reset`
/// (-2 earliest, -1 latest).
async fn group_positions(
    c: &mut Connection,
    member: &mut Member,
    topic: &str,
    assigned: &[i32],
    reset: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    if assigned.is_empty() {
        return Ok(BTreeMap::new());
    }
    let committed = member.committed(c, assigned).await?;
    let fallback = offsets_at(c, topic, assigned.iter().copied(), reset).await?;
    Ok(assigned.iter().map(|p| (*p, committed.get(p).or(fallback.get(p)).copied().unwrap_or(0))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_where_kafkas_clients_put_them() {
        // Kafka's murmur2 of these keys (its UtilsTest), made positive as its partitioner does.
        for (key, hash) in [
            (&b"21"[..], -973932308i32),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ] {
            assert_eq!(partition_for(key, i32::MAX), (hash & 0x7fff_ffff) % i32::MAX, "{key:?}");
        }
        assert_eq!(super::super::error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(super::super::error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
    }
}
