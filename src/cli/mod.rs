//! `gregor topics|produce|consume|groups|cluster`: admin commands that speak the Kafka
//! protocol to any broker (gregor or Apache Kafka), as Kafka's shell tools do, without a JVM.
//! They use the protocol codec and the record-batch code of `log::batch`, and nothing of the
//! broker itself. Output is aligned text for people, or JSON with `--json`.

mod client;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use client::Connection;

/// Where the commands connect, and how they print.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// A broker of the cluster, HOST:PORT.
    #[arg(long, default_value = "localhost:9092", global = true)]
    pub bootstrap_server: String,
    /// Print JSON (one object, or one per line for records) instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum TopicsCmd {
    /// Topic names.
    List,
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (default: the broker's).
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, KEY=VALUE (repeat for more).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Partitions of a topic: leader, replicas, in-sync replicas, offsets.
    Describe { name: String },
    /// Delete a topic.
    Delete { name: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum GroupsCmd {
    /// Consumer groups, with their state.
    List,
    /// A group's members and its committed offsets with their lag.
    Describe { group: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCmd {
    /// Cluster id, controller and brokers.
    Describe,
}

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
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at the first record (default: at the end, records written from now on).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Start at this offset (with --partition).
    #[arg(long, requires = "partition")]
    pub offset: Option<i64>,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this long without a record, in ms (default: wait for ever).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Output format, as kcat's -f: %t topic, %p partition, %o offset, %k key, %s value,
    /// %T timestamp, \n and \t. Default: "%s\n".
    #[arg(long)]
    pub format: Option<String>,
}

/// Runs a command and maps its error to an exit status (the error is printed).
pub fn run(command: impl std::future::Future<Output = anyhow::Result<()>>) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gregor: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gregor: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Kafka's name for an error code (`TOPIC_ALREADY_EXISTS`).
pub fn error_name(code: i16) -> String {
    let Some(e) = kafka_protocol::error::ResponseError::try_from_code(code) else {
        return format!("error {code}");
    };
    let camel = format!("{e:?}");
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn check(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    match message.filter(|m| !m.is_empty()) {
        Some(m) => bail!("{what}: {}: {}", error_name(code), m.as_str()),
        None => bail!("{what}: {}", error_name(code)),
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Prints rows as aligned columns under a header.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

async fn metadata(c: &mut Connection, topics: Option<Vec<&str>>) -> anyhow::Result<MetadataResponse> {
    let topics =
        topics.map(|t| t.into_iter().map(|n| MetadataRequestTopic::default().with_name(Some(name(n)))).collect());
    c.call(12, &MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(false)).await
}

/// The brokers' addresses by node id.
fn brokers(md: &MetadataResponse) -> BTreeMap<i32, String> {
    md.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect()
}

pub async fn topics(common: &Common, cmd: &TopicsCmd) -> anyhow::Result<()> {
    let mut c = Connection::open(&common.bootstrap_server).await?;
    match cmd {
        TopicsCmd::List => {
            let md = metadata(&mut c, None).await?;
            let mut names: Vec<&str> = md.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.as_str())).collect();
            names.sort_unstable();
            if common.json {
                println!("{}", json!(names));
            } else {
                names.iter().for_each(|n| println!("{n}"));
            }
        }
        TopicsCmd::Create { name: topic, partitions, replication_factor, configs } => {
            let mut t = CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(*partitions)
                .with_replication_factor(*replication_factor);
            for kv in configs {
                let (k, v) = kv.split_once('=').with_context(|| format!("--config {kv}: expected KEY=VALUE"))?;
                t.configs.push(
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string()))),
                );
            }
            let resp = c.call(7, &CreateTopicsRequest::default().with_topics(vec![t]).with_timeout_ms(30_000)).await?;
            let r = &resp.topics[0];
            check(r.error_code, r.error_message.as_ref(), &format!("creating topic '{topic}'"))?;
            if common.json {
                println!("{}", json!({"topic": topic, "partitions": r.num_partitions, "created": true}));
            } else {
                println!("created topic '{topic}' with {} partition(s)", r.num_partitions);
            }
        }
        TopicsCmd::Describe { name: topic } => {
            let md = metadata(&mut c, Some(vec![topic])).await?;
            let t = md.topics.first().context("the broker answered without the topic")?;
            check(t.error_code, None, &format!("describing topic '{topic}'"))?;
            let ends = end_offsets(&mut c, topic, t.partitions.iter().map(|p| p.partition_index)).await?;
            let mut parts: Vec<_> = t.partitions.iter().collect();
            parts.sort_by_key(|p| p.partition_index);
            let ids = |v: &[BrokerId]| v.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(",");
            if common.json {
                let partitions: Vec<_> = parts
                    .iter()
                    .map(|p| {
                        json!({"partition": p.partition_index, "leader": p.leader_id.0,
                            "replicas": p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                            "isr": p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                            "end_offset": ends.get(&p.partition_index)})
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"topic": topic, "id": t.topic_id.to_string(), "internal": t.is_internal, "partitions": partitions})
                );
            } else {
                println!("topic {topic}  id {}  partitions {}", t.topic_id, parts.len());
                let rows: Vec<Vec<String>> = parts
                    .iter()
                    .map(|p| {
                        vec![
                            p.partition_index.to_string(),
                            p.leader_id.0.to_string(),
                            ids(&p.replica_nodes),
                            ids(&p.isr_nodes),
                            ends.get(&p.partition_index).map_or("-".into(), i64::to_string),
                        ]
                    })
                    .collect();
                table(&["PARTITION", "LEADER", "REPLICAS", "ISR", "END OFFSET"], &rows);
            }
        }
        TopicsCmd::Delete { name: topic } => {
            let req = DeleteTopicsRequest::default().with_topic_names(vec![name(topic)]).with_timeout_ms(30_000);
            let resp = c.call(5, &req).await?;
            let r = &resp.responses[0];
            check(r.error_code, r.error_message.as_ref(), &format!("deleting topic '{topic}'"))?;
            if common.json {
                println!("{}", json!({"topic": topic, "deleted": true}));
            } else {
                println!("deleted topic '{topic}'");
            }
        }
    }
    Ok(())
}

/// The log end offset (high watermark) of each partition.
async fn end_offsets(
    c: &mut Connection,
    topic: &str,
    partitions: impl Iterator<Item = i32>,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    offsets_at(c, topic, partitions, -1).await
}

/// ListOffsets for `timestamp` (-1 latest, -2 earliest).
async fn offsets_at(
    c: &mut Connection,
    topic: &str,
    partitions: impl Iterator<Item = i32>,
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let parts = partitions.map(|p| ListOffsetsPartition::default().with_partition_index(p).with_timestamp(timestamp));
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default().with_name(name(topic)).with_partitions(parts.collect())]);
    let resp = c.call(7, &req).await?;
    let mut out = BTreeMap::new();
    for p in resp.topics.iter().flat_map(|t| &t.partitions) {
        check(p.error_code, None, &format!("listing offsets of {topic}-{}", p.partition_index))?;
        out.insert(p.partition_index, p.offset);
    }
    Ok(out)
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

/// A record to produce: key (if any) and value.
type KeyedLine = (Option<Vec<u8>>, Vec<u8>);

pub async fn produce(common: &Common, args: &ProduceArgs) -> anyhow::Result<()> {
    let acks: i16 = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => bail!("--acks {other}: expected 0, 1 or all"),
    };
    let mut c = Connection::open(&common.bootstrap_server).await?;
    let md = metadata(&mut c, Some(vec![&args.topic])).await?;
    let t = md.topics.first().context("the broker answered without the topic")?;
    check(t.error_code, None, &format!("producing to '{}'", args.topic))?;
    let leaders: BTreeMap<i32, i32> = t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0)).collect();
    let count = leaders.len() as i32;
    if let Some(p) = args.partition.filter(|p| !leaders.contains_key(p)) {
        bail!("topic '{}' has no partition {p}", args.topic);
    }
    // Records per partition, in input order.
    let mut per_partition: BTreeMap<i32, Vec<KeyedLine>> = BTreeMap::new();
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
        per_partition.entry(partition).or_default().push((key, value));
    }
    let addresses = brokers(&md);
    let mut total = 0;
    for (partition, records) in &per_partition {
        // Every gregor node leads all partitions; for Kafka, send to the partition's leader.
        let leader = leaders[partition];
        let mut conn = match addresses.get(&leader) {
            Some(a) if *a != common.bootstrap_server => Some(Connection::open(a).await?),
            _ => None,
        };
        let conn = conn.as_mut().unwrap_or(&mut c);
        for chunk in records.chunks(1000) {
            let kvs: Vec<crate::log::batch::KeyValue<'_>> =
                chunk.iter().map(|(k, v)| (k.as_deref(), Some(v.as_slice()))).collect();
            let batch = crate::log::batch::build(&kvs, crate::clock::now_ms());
            let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(30_000).with_topic_data(vec![
                TopicProduceData::default().with_name(name(&args.topic)).with_partition_data(vec![
                    PartitionProduceData::default().with_index(*partition).with_records(Some(batch.into())),
                ]),
            ]);
            if acks == 0 {
                bail!("--acks 0 is not supported by this command (it waits for every answer)");
            }
            let resp = conn.call(9, &req).await?;
            for p in resp.responses.iter().flat_map(|t| &t.partition_responses) {
                check(p.error_code, p.error_message.as_ref(), &format!("producing to {}-{partition}", args.topic))?;
            }
            total += chunk.len();
        }
    }
    if common.json {
        println!("{}", json!({"topic": args.topic, "records": total}));
    } else {
        eprintln!("produced {total} record(s) to '{}'", args.topic);
    }
    Ok(())
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
    let start = if args.from_beginning { -2 } else { -1 };
    let mut positions = offsets_at(&mut c, &args.topic, partitions.iter().copied(), start).await?;
    if let (Some(p), Some(o)) = (args.partition, args.offset) {
        positions.insert(p, o);
    }
    let format = args.format.clone().unwrap_or_else(|| "%s\\n".into()).replace("\\n", "\n").replace("\\t", "\t");
    let mut out = std::io::stdout().lock();
    let mut seen = 0usize;
    let mut last = std::time::Instant::now();
    loop {
        let parts = positions
            .iter()
            .map(|(p, o)| {
                FetchPartition::default().with_partition(*p).with_fetch_offset(*o).with_partition_max_bytes(1 << 20)
            })
            .collect();
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(8 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(name(&args.topic)).with_partitions(parts)]);
        let resp = c.call(12, &req).await?;
        check(resp.error_code, None, "fetching")?;
        let mut got = 0;
        for p in resp.responses.iter().flat_map(|t| &t.partitions) {
            check(p.error_code, None, &format!("fetching {}-{}", args.topic, p.partition_index))?;
            let Some(mut rest) = p.records.as_deref() else { continue };
            while let Some((_, len)) = crate::log::batch::peek_len(rest) {
                let Some(batch) = rest.get(..len) else { break };
                rest = &rest[len..];
                let Some(h) = crate::log::batch::BatchHeader::parse(batch) else { break };
                let position = positions.get_mut(&p.partition_index).expect("asked for");
                // A batch may begin before the position asked for: skip what is before it.
                let from = *position;
                *position = (*position).max(h.last_offset() + 1);
                if h.is_control() {
                    continue;
                }
                let printed = crate::log::batch::with_records(batch, |records| -> anyhow::Result<usize> {
                    let mut n = 0;
                    for r in records.iter().filter(|r| r.offset >= from) {
                        if args.count.is_some_and(|c| seen + n >= c) {
                            break;
                        }
                        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                        if common.json {
                            let line = json!({"topic": args.topic, "partition": p.partition_index, "offset": r.offset,
                                "timestamp": r.timestamp, "key": text(r.key), "value": text(r.value)});
                            writeln!(out, "{line}")?;
                        } else {
                            let s = format
                                .replace("%t", &args.topic)
                                .replace("%p", &p.partition_index.to_string())
                                .replace("%o", &r.offset.to_string())
                                .replace("%T", &r.timestamp.to_string())
                                .replace("%k", &text(r.key).unwrap_or_default())
                                .replace("%s", &text(r.value).unwrap_or_default());
                            write!(out, "{s}")?;
                        }
                        n += 1;
                    }
                    Ok(n)
                })
                .map_err(|e| anyhow::anyhow!("reading a batch of {}-{}: {e}", args.topic, p.partition_index))??;
                seen += printed;
                got += printed;
            }
        }
        out.flush()?;
        if args.count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
        if got > 0 {
            last = std::time::Instant::now();
        } else if args.timeout_ms.is_some_and(|t| last.elapsed().as_millis() as u64 >= t) {
            return Ok(());
        }
    }
}

pub async fn groups(common: &Common, cmd: &GroupsCmd) -> anyhow::Result<()> {
    let mut c = Connection::open(&common.bootstrap_server).await?;
    match cmd {
        GroupsCmd::List => {
            let resp = c.call(4, &ListGroupsRequest::default()).await?;
            check(resp.error_code, None, "listing groups")?;
            let mut groups: Vec<(String, String)> =
                resp.groups.iter().map(|g| (g.group_id.0.to_string(), g.group_state.to_string())).collect();
            groups.sort();
            if common.json {
                let list: Vec<_> = groups.iter().map(|(g, s)| json!({"group": g, "state": s})).collect();
                println!("{}", json!(list));
            } else {
                table(&["GROUP", "STATE"], &groups.iter().map(|(g, s)| vec![g.clone(), s.clone()]).collect::<Vec<_>>());
            }
        }
        GroupsCmd::Describe { group } => {
            let find = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(vec![StrBytes::from_string(group.clone())]);
            let found = c.call(4, &find).await?;
            let coordinator = found.coordinators.first().context("no coordinator in the answer")?;
            check(coordinator.error_code, coordinator.error_message.as_ref(), "finding the group's coordinator")?;
            let address = format!("{}:{}", coordinator.host.as_str(), coordinator.port);
            let mut coord =
                if address == common.bootstrap_server { None } else { Connection::open(&address).await.ok() };
            let g = {
                let conn = coord.as_mut().unwrap_or(&mut c);
                let req =
                    DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_string(group.clone()))]);
                conn.call(5, &req).await?.groups.into_iter().next().context("no group in the answer")?
            };
            check(g.error_code, None, &format!("describing group '{group}'"))?;
            let offsets = {
                let conn = coord.as_mut().unwrap_or(&mut c);
                let req = OffsetFetchRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                    .with_topics(None::<Vec<OffsetFetchRequestTopic>>);
                let resp = conn.call(7, &req).await?;
                check(resp.error_code, None, &format!("fetching the offsets of '{group}'"))?;
                resp.topics
            };
            let mut rows = Vec::new();
            let mut lag_json = Vec::new();
            for t in &offsets {
                let topic = t.name.0.as_str();
                let ends = end_offsets(&mut c, topic, t.partitions.iter().map(|p| p.partition_index)).await?;
                for p in &t.partitions {
                    if p.committed_offset < 0 {
                        continue;
                    }
                    let end = ends.get(&p.partition_index).copied().unwrap_or(-1);
                    let lag = (end - p.committed_offset).max(0);
                    rows.push(vec![
                        topic.to_string(),
                        p.partition_index.to_string(),
                        p.committed_offset.to_string(),
                        end.to_string(),
                        lag.to_string(),
                    ]);
                    lag_json.push(json!({"topic": topic, "partition": p.partition_index,
                        "committed": p.committed_offset, "end": end, "lag": lag}));
                }
            }
            let members: Vec<Vec<String>> = g
                .members
                .iter()
                .map(|m| vec![m.member_id.to_string(), m.client_id.to_string(), m.client_host.to_string()])
                .collect();
            if common.json {
                let m: Vec<_> =
                    members.iter().map(|m| json!({"member": m[0], "client_id": m[1], "host": m[2]})).collect();
                println!(
                    "{}",
                    json!({"group": group, "state": g.group_state.as_str(), "protocol": g.protocol_data.as_str(),
                        "members": m, "offsets": lag_json})
                );
            } else {
                println!("group {group}  state {}  members {}", g.group_state.as_str(), members.len());
                if !members.is_empty() {
                    table(&["MEMBER", "CLIENT ID", "HOST"], &members);
                    println!();
                }
                table(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"], &rows);
            }
        }
    }
    Ok(())
}

pub async fn cluster(common: &Common, _cmd: &ClusterCmd) -> anyhow::Result<()> {
    let mut c = Connection::open(&common.bootstrap_server).await?;
    let md = metadata(&mut c, Some(vec![])).await?;
    let cluster_id = md.cluster_id.as_ref().map(|s| s.to_string()).unwrap_or_default();
    let b = brokers(&md);
    if common.json {
        let list: Vec<_> = b.iter().map(|(id, a)| json!({"id": id, "address": a})).collect();
        println!("{}", json!({"cluster_id": cluster_id, "controller": md.controller_id.0, "brokers": list}));
    } else {
        println!("cluster {cluster_id}  controller {}", md.controller_id.0);
        table(&["BROKER", "ADDRESS"], &b.iter().map(|(id, a)| vec![id.to_string(), a.clone()]).collect::<Vec<_>>());
    }
    Ok(())
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
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
    }
}
