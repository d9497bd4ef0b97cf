//! `gregor groups`: list, describe (with lag), reset-offsets, delete. Offsets are read and
//! written at the group's coordinator, as Kafka's `kafka-consumer-groups` does.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use serde_json::json;

use super::*;

#[derive(clap::Subcommand, Debug)]
pub enum GroupsCmd {
    /// Consumer groups, with their state.
    List,
    /// A group's members and its committed offsets with their lag.
    Describe { group: String },
    /// Move a group's committed offsets. The group must have no members (stop its consumers
    /// first). Without --execute, only shows what would be committed.
    ResetOffsets(ResetArgs),
    /// Delete groups that have no members, with their committed offsets.
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ResetArgs {
    group: String,
    /// TOPIC, or TOPIC:P,Q,... for some of its partitions (repeat for more).
    #[arg(long = "topic", required_unless_present = "all_topics")]
    topics: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long, conflicts_with = "topics")]
    all_topics: bool,
    #[command(flatten)]
    to: ResetTo,
    /// Commit the new offsets (without it nothing changes).
    #[arg(long, conflicts_with = "dry_run")]
    execute: bool,
    /// Only show the new offsets (the default).
    #[arg(long)]
    dry_run: bool,
}

/// Where offsets are reset to; exactly one.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// The first offset still in the log.
    #[arg(long)]
    to_earliest: bool,
    /// The end of the log.
    #[arg(long)]
    to_latest: bool,
    /// This offset (kept within the log's first and end offsets, as Kafka does).
    #[arg(long)]
    to_offset: Option<i64>,
    /// The first record at or after this time: YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM] (UTC when no
    /// zone is given) or milliseconds since the epoch. Past the last record: the end.
    #[arg(long)]
    to_datetime: Option<String>,
    /// The committed offset moved by N (negative: back); the end when nothing is committed.
    #[arg(long, allow_hyphen_values = true)]
    shift_by: Option<i64>,
}

/// The committed offset of each partition of `group` (all of them, or those of `topics`).
pub(super) async fn committed(
    conn: &mut Connection,
    group: &str,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let topics = topics.map(|t| {
        t.iter()
            .map(|(name, parts)| {
                OffsetFetchRequestTopic::default().with_name(super::name(name)).with_partition_indexes(parts.clone())
            })
            .collect::<Vec<_>>()
    });
    let req = OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(topics);
    let resp = conn.call(7, &req).await?;
    check(resp.error_code, None, &format!("fetching the offsets of '{group}'"))?;
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            check(p.error_code, None, &format!("fetching the offset of {}-{}", t.name.as_str(), p.partition_index))?;
            if p.committed_offset >= 0 {
                out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// Commits `offsets` for `group`, as member `member` of `generation` (-1 and "" for a group
/// without members).
pub(super) async fn commit(
    conn: &mut Connection,
    group: &str,
    generation: i32,
    member: &str,
    offsets: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<()> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        topics.entry(topic).or_default().push(
            OffsetCommitRequestPartition::default().with_partition_index(*partition).with_committed_offset(*offset),
        );
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str_bytes(member))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, p)| OffsetCommitRequestTopic::default().with_name(super::name(t)).with_partitions(p))
                .collect(),
        );
    let resp = conn.call(8, &req).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            check(p.error_code, None, &format!("committing the offset of {}-{}", t.name.as_str(), p.partition_index))?;
        }
    }
    Ok(())
}

async fn describe_group(
    conn: &mut Connection,
    group: &str,
) -> anyhow::Result<describe_groups_response::DescribedGroup> {
    let req = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let g = conn.call(5, &req).await?.groups.into_iter().next().context("no group in the answer")?;
    check(g.error_code, g.error_message.as_ref(), &format!("describing group '{group}'"))?;
    Ok(g)
}

/// The partitions `--topic` options name: all of a topic's, or those listed after a colon.
async fn named_partitions(c: &mut Connection, topics: &[String]) -> anyhow::Result<BTreeMap<String, Vec<i32>>> {
    let mut out = BTreeMap::new();
    for spec in topics {
        let (topic, list) = match spec.split_once(':') {
            Some((t, l)) => (t, Some(l)),
            None => (spec.as_str(), None),
        };
        let partitions = match list {
            Some(l) => l
                .split(',')
                .map(|p| p.trim().parse::<i32>().with_context(|| format!("--topic {spec}: '{p}' is not a partition")))
                .collect::<anyhow::Result<Vec<_>>>()?,
            None => {
                let md = metadata(c, Some(vec![topic])).await?;
                let t = md.topics.first().context("the broker answered without the topic")?;
                check(t.error_code, None, &format!("topic '{topic}'"))?;
                t.partitions.iter().map(|p| p.partition_index).collect()
            }
        };
        out.insert(topic.to_string(), partitions);
    }
    Ok(out)
}

async fn reset_offsets(common: &Common, c: &mut Connection, args: &ResetArgs) -> anyhow::Result<()> {
    let group = &args.group;
    let mut coord = coordinator(c, common, group).await?;
    let conn = coord.as_mut().unwrap_or(c);
    let g = describe_group(conn, group).await?;
    if !matches!(g.group_state.as_str(), "Empty" | "Dead") {
        bail!(
            "group '{group}' is {} with {} member(s): offsets can be reset only when it has none (stop its consumers first)",
            g.group_state.as_str(),
            g.members.len()
        );
    }
    let current = committed(conn, group, None).await?;
    let targets: BTreeMap<String, Vec<i32>> = if args.all_topics {
        let mut t: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, p) in current.keys() {
            t.entry(topic.clone()).or_default().push(*p);
        }
        t
    } else {
        let mut bootstrap = Connection::open(&common.bootstrap_server).await?;
        named_partitions(&mut bootstrap, &args.topics).await?
    };
    if targets.is_empty() {
        bail!("group '{group}' has no committed offsets to reset");
    }
    let to = &args.to;
    let timestamp = to.to_datetime.as_deref().map(parse_time).transpose()?;
    let mut planned = BTreeMap::new();
    for (topic, partitions) in &targets {
        let earliest = offsets_at(conn, topic, partitions.iter().copied(), -2).await?;
        let latest = offsets_at(conn, topic, partitions.iter().copied(), -1).await?;
        let at_time = match timestamp {
            Some(ts) => Some(offsets_at(conn, topic, partitions.iter().copied(), ts).await?),
            None => None,
        };
        for &p in partitions {
            let (first, end) = (earliest.get(&p).copied().unwrap_or(0), latest.get(&p).copied().unwrap_or(0));
            let offset = if to.to_earliest {
                first
            } else if to.to_latest {
                end
            } else if let Some(o) = to.to_offset {
                o
            } else if let Some(found) = &at_time {
                // No record at or after the time: the end, as Kafka's tool does.
                found.get(&p).copied().filter(|o| *o >= 0).unwrap_or(end)
            } else {
                let n = to.shift_by.unwrap_or(0);
                current.get(&(topic.clone(), p)).copied().unwrap_or(end).saturating_add(n)
            };
            planned.insert((topic.clone(), p), offset.clamp(first, end.max(first)));
        }
    }
    if args.execute {
        commit(conn, group, -1, "", &planned).await?;
    } else if !args.dry_run {
        eprintln!("(dry run: nothing was committed; add --execute to commit these offsets)");
    }
    if common.json {
        let list: Vec<_> = planned
            .iter()
            .map(|((t, p), o)| json!({"topic": t, "partition": p, "previous": current.get(&(t.clone(), *p)), "offset": o}))
            .collect();
        println!("{}", json!({"group": group, "executed": args.execute, "offsets": list}));
    } else {
        let rows: Vec<Vec<String>> = planned
            .iter()
            .map(|((t, p), o)| {
                let before = current.get(&(t.clone(), *p)).map_or("-".to_string(), i64::to_string);
                vec![group.clone(), t.clone(), p.to_string(), before, o.to_string()]
            })
            .collect();
        table(&["GROUP", "TOPIC", "PARTITION", "PREVIOUS", "NEW OFFSET"], &rows);
    }
    Ok(())
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
            let mut coord = coordinator(&mut c, common, group).await?;
            let g = describe_group(coord.as_mut().unwrap_or(&mut c), group).await?;
            let offsets = committed(coord.as_mut().unwrap_or(&mut c), group, None).await?;
            let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
            for ((t, p), o) in &offsets {
                by_topic.entry(t).or_default().push((*p, *o));
            }
            let mut rows = Vec::new();
            let mut lag_json = Vec::new();
            for (topic, parts) in &by_topic {
                let ends = end_offsets(&mut c, topic, parts.iter().map(|(p, _)| *p)).await?;
                for &(p, committed) in parts {
                    let end = ends.get(&p).copied().unwrap_or(-1);
                    let lag = (end - committed).max(0);
                    rows.push(vec![
                        topic.to_string(),
                        p.to_string(),
                        committed.to_string(),
                        end.to_string(),
                        lag.to_string(),
                    ]);
                    lag_json
                        .push(json!({"topic": topic, "partition": p, "committed": committed, "end": end, "lag": lag}));
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
        GroupsCmd::ResetOffsets(args) => reset_offsets(common, &mut c, args).await?,
        GroupsCmd::Delete { groups } => {
            // Every group at its own coordinator; the answers in the order asked.
            let mut failed = Vec::new();
            for group in groups {
                let mut coord = coordinator(&mut c, common, group).await?;
                let conn = coord.as_mut().unwrap_or(&mut c);
                let resp =
                    conn.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)])).await?;
                let r = resp.results.first().context("the broker answered without the group")?;
                match check(r.error_code, None, &format!("deleting group '{group}'")) {
                    Ok(()) if common.json => println!("{}", json!({"group": group, "deleted": true})),
                    Ok(()) => println!("deleted group '{group}'"),
                    Err(e) => {
                        eprintln!("gregor: {e:#}");
                        failed.push(group.as_str());
                    }
                }
            }
            if !failed.is_empty() {
                bail!("{} group(s) not deleted: {}", failed.len(), failed.join(", "));
            }
        }
    }
    Ok(())
}
