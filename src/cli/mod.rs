//! `gregor topics|produce|consume|groups|cluster`: admin commands that speak the Kafka
//! protocol to any broker (gregor or Apache Kafka), as Kafka's shell tools do, without a JVM.
//! They use the protocol codec and the record-batch code of `log::batch`, and nothing of the
//! broker itself. Output is aligned text for people, or JSON with `--json`.

mod configs;
mod groups;
mod member;
mod records;
mod topics;

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::client::Connection;

pub use configs::{configs, ConfigsCmd};
pub use groups::{groups, GroupsCmd};
pub use records::{consume, produce, ConsumeArgs, ProduceArgs};
pub use topics::{topics, TopicsCmd};

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
pub enum ClusterCmd {
    /// Cluster id, controller and brokers.
    Describe,
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

fn group_id(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// `KEY=VALUE` of an option called `what`.
fn key_value<'a>(kv: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    kv.split_once('=').with_context(|| format!("{what} {kv}: expected KEY=VALUE"))
}

/// A connection to the coordinator of `group` (FindCoordinator through `c`); `None` when that
/// is the broker `c` already talks to.
async fn coordinator(c: &mut Connection, common: &Common, group: &str) -> anyhow::Result<Option<Connection>> {
    let find = FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![str_bytes(group)]);
    let found = c.call(4, &find).await?;
    let coordinator = found.coordinators.first().context("no coordinator in the answer")?;
    check(
        coordinator.error_code,
        coordinator.error_message.as_ref(),
        &format!("finding the coordinator of '{group}'"),
    )?;
    let address = format!("{}:{}", coordinator.host.as_str(), coordinator.port);
    Ok(if address == common.bootstrap_server { None } else { Some(Connection::open(&address).await?) })
}

/// A time given as milliseconds since the epoch, or as `YYYY-MM-DDTHH:MM:SS[.mmm]` with an
/// optional zone (`Z`, `+HH:MM`, `-HHMM`; UTC without one). In milliseconds since the epoch.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().with_context(|| format!("'{s}' is not a time"));
    }
    let bad = || anyhow::anyhow!("'{s}' is not a time: expected YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM] or epoch ms");
    let (date, rest) = s.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d[..] else { return Err(bad()) };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    // The zone, if any, follows the seconds.
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, millis) = match clock.split_once('.') {
        Some((hms, frac)) if !frac.is_empty() && frac.len() <= 9 => {
            let padded = format!("{frac:0<3}");
            (hms, num(&padded[..3])?)
        }
        Some(_) => return Err(bad()),
        None => (clock, 0),
    };
    let t: Vec<&str> = hms.split(':').collect();
    let (h, mi, sec) = match t[..] {
        [h, m] => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let offset_minutes = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return Err(bad());
            }
            sign * (num(&digits[..2])? * 60 + num(&digits[2..])?)
        }
    };
    // Days from 1970-01-01 to the date in the proleptic Gregorian calendar.
    let (y, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + h * 3600 + mi * 60 + sec - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
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
    metadata_creating(c, topics, false).await
}

/// Metadata, letting the broker create missing topics when it auto-creates them (as a
/// producer's request does).
async fn metadata_creating(
    c: &mut Connection,
    topics: Option<Vec<&str>>,
    create: bool,
) -> anyhow::Result<MetadataResponse> {
    let topics =
        topics.map(|t| t.into_iter().map(|n| MetadataRequestTopic::default().with_name(Some(name(n)))).collect());
    c.call(12, &MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(create)).await
}

/// The brokers' addresses by node id.
fn brokers(md: &MetadataResponse) -> BTreeMap<i32, String> {
    md.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect()
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
    fn times_read_as_kafkas_tools_write_them() {
        assert_eq!(parse_time("1700000000123").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(parse_time("2026-12-04T10:30:00.5Z").unwrap(), 1_796_380_200_500);
        assert_eq!(parse_time("2026-12-04T12:30:00+02:00").unwrap(), 1_796_380_200_000);
        assert_eq!(parse_time("2026-12-04T05:30:00-0500").unwrap(), 1_796_380_200_000);
        assert_eq!(parse_time("2024-02-29T00:00:00.000").unwrap(), 1_709_164_800_000);
        for bad in ["yesterday", "2026-13-01T00:00:00", "2026-12-04", "2026-12-04T10:61:00", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
