//! `gregor consume --group`: a member of a classic consumer group (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), as any Kafka consumer is. It offers the `range` assignor, which
//! Kafka's Java clients and librdkafka offer by default too, so it shares a group with them;
//! when it leads the group it assigns every member's topics range by range.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::*;

const SESSION_TIMEOUT_MS: i32 = 45_000;
const REBALANCE_TIMEOUT_MS: i32 = 60_000;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
const ASSIGNOR: &str = "range";

// Kafka's error codes the membership reacts to.
const REBALANCE_IN_PROGRESS: i16 = 27;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

pub struct Member {
    /// The coordinator's connection (`None`: the bootstrap connection).
    coordinator: Option<Connection>,
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    last_heartbeat: Instant,
}

/// What a heartbeat found.
pub enum Beat {
    Fine,
    /// The group rebalances (or dropped this member): commit, then [`Member::join`] again.
    Rejoin,
}

impl Member {
    pub async fn new(c: &mut Connection, common: &Common, group: &str, topic: &str) -> anyhow::Result<Self> {
        Ok(Self {
            coordinator: coordinator(c, common, group).await?,
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            last_heartbeat: Instant::now(),
        })
    }

    /// Joins (or rejoins) the group; returns the partitions of the topic assigned to it.
    pub async fn join(&mut self, bootstrap: &mut Connection) -> anyhow::Result<Vec<i32>> {
        loop {
            let subscription = encode_versioned(
                0,
                &ConsumerProtocolSubscription::default().with_topics(vec![str_bytes(&self.topic)]),
            )?;
            let req = JoinGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(str_bytes("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(str_bytes(ASSIGNOR))
                    .with_metadata(subscription)]);
            let wait = Duration::from_millis(REBALANCE_TIMEOUT_MS as u64 + 10_000);
            let joined = self.conn(bootstrap).call_within(9, &req, wait).await?;
            match joined.error_code {
                0 => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = joined.member_id.to_string();
                    continue;
                }
                UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                    self.member_id.clear();
                    continue;
                }
                REBALANCE_IN_PROGRESS => continue,
                code => check(code, None, &format!("joining group '{}'", self.group))?,
            }
            self.member_id = joined.member_id.to_string();
            self.generation = joined.generation_id;
            let assignments = if joined.leader == joined.member_id {
                let subscriptions = joined
                    .members
                    .iter()
                    .map(|m| Ok((m.member_id.to_string(), subscribed_topics(&m.metadata)?)))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut topics: Vec<&str> =
                    subscriptions.iter().flat_map(|(_, t)| t.iter().map(String::as_str)).collect();
                topics.sort_unstable();
                topics.dedup();
                let md = metadata(bootstrap, Some(topics)).await?;
                let counts: BTreeMap<String, i32> = md
                    .topics
                    .iter()
                    .filter(|t| t.error_code == 0)
                    .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.partitions.len() as i32)))
                    .collect();
                let plan = assign_ranges(&subscriptions, &counts);
                plan.into_iter()
                    .map(|(member, parts)| {
                        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
                            parts
                                .into_iter()
                                .map(|(t, p)| AssignedPartitions::default().with_topic(name(&t)).with_partitions(p))
                                .collect(),
                        );
                        Ok(SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(&member))
                            .with_assignment(encode_versioned(0, &assignment)?))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            } else {
                Vec::new()
            };
            let req = SyncGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_generation_id(self.generation)
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(Some(str_bytes("consumer")))
                .with_protocol_name(Some(str_bytes(ASSIGNOR)))
                .with_assignments(assignments);
            let wait = Duration::from_millis(REBALANCE_TIMEOUT_MS as u64 + 10_000);
            let synced = self.conn(bootstrap).call_within(5, &req, wait).await?;
            match synced.error_code {
                0 => {}
                REBALANCE_IN_PROGRESS => continue,
                UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                    self.member_id.clear();
                    continue;
                }
                code => check(code, None, &format!("syncing group '{}'", self.group))?,
            }
            self.last_heartbeat = Instant::now();
            let mut mine = Vec::new();
            if !synced.assignment.is_empty() {
                let mut bytes = synced.assignment.clone();
                let version = bytes.try_get_i16().context("an empty assignment")?;
                let a = ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3))?;
                for t in a.assigned_partitions.iter().filter(|t| t.topic.as_str() == self.topic) {
                    mine.extend(&t.partitions);
                }
            }
            mine.sort_unstable();
            return Ok(mine);
        }
    }

    /// Heartbeats when one is due.
    pub async fn heartbeat(&mut self, bootstrap: &mut Connection) -> anyhow::Result<Beat> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_EVERY {
            return Ok(Beat::Fine);
        }
        let req = HeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id));
        let resp = self.conn(bootstrap).call(4, &req).await?;
        self.last_heartbeat = Instant::now();
        match resp.error_code {
            0 => Ok(Beat::Fine),
            REBALANCE_IN_PROGRESS => Ok(Beat::Rejoin),
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION | FENCED_INSTANCE_ID => {
                self.member_id.clear();
                self.generation = -1;
                Ok(Beat::Rejoin)
            }
            code => check(code, None, &format!("heartbeat to group '{}'", self.group)).map(|_| Beat::Fine),
        }
    }

    /// The group's committed offsets of `partitions` (absent: nothing committed).
    pub async fn committed(
        &mut self,
        bootstrap: &mut Connection,
        partitions: &[i32],
    ) -> anyhow::Result<BTreeMap<i32, i64>> {
        let wanted = BTreeMap::from([(self.topic.clone(), partitions.to_vec())]);
        let (group, topic) = (self.group.clone(), self.topic.clone());
        let found = super::groups::committed(self.conn(bootstrap), &group, Some(&wanted)).await?;
        Ok(found.into_iter().filter(|((t, _), _)| *t == topic).map(|((_, p), o)| (p, o)).collect())
    }

    /// Commits the positions as this member. A member the group dropped meanwhile cannot
    /// commit; that is not an error here: its successor starts from the last commit.
    pub async fn commit(&mut self, bootstrap: &mut Connection, positions: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
        if positions.is_empty() || self.generation < 0 {
            return Ok(());
        }
        let offsets = positions.iter().map(|(p, o)| ((self.topic.clone(), *p), *o)).collect();
        let (group, member, generation) = (self.group.clone(), self.member_id.clone(), self.generation);
        match super::groups::commit(self.conn(bootstrap), &group, generation, &member, &offsets).await {
            Err(e)
                if ["REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID"]
                    .iter()
                    .any(|name| format!("{e:#}").contains(name)) =>
            {
                eprintln!("gregor: offsets not committed, the group is rebalancing: {e:#}");
                Ok(())
            }
            other => other,
        }
    }

    /// Leaves the group, so the others take its partitions at once.
    pub async fn leave(&mut self, bootstrap: &mut Connection) -> anyhow::Result<()> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let req = LeaveGroupRequest::default()
            .with_group_id(group_id(&self.group))
            .with_members(vec![MemberIdentity::default().with_member_id(str_bytes(&self.member_id))]);
        let resp = self.conn(bootstrap).call(5, &req).await?;
        check(resp.error_code, None, &format!("leaving group '{}'", self.group))
    }

    fn conn<'a>(&'a mut self, bootstrap: &'a mut Connection) -> &'a mut Connection {
        self.coordinator.as_mut().unwrap_or(bootstrap)
    }
}

/// A consumer-protocol message with its version in front, as the consumer protocol frames it.
fn encode_versioned<M: Encodable>(version: i16, message: &M) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// The topics a member's subscription names (newer versions read as the newest known: their
/// fields only ever grow at the end).
fn subscribed_topics(metadata: &Bytes) -> anyhow::Result<Vec<String>> {
    let mut bytes = metadata.clone();
    let version = bytes.try_get_i16().context("an empty subscription")?;
    let s = ConsumerProtocolSubscription::decode(&mut bytes, version.clamp(0, 3))
        .context("a member's subscription is malformed")?;
    Ok(s.topics.iter().map(|t| t.to_string()).collect())
}

/// Kafka's range assignment: for each topic, its subscribers in member-id order each take a
/// run of consecutive partitions, the first ones one more when they do not divide evenly.
/// Every member is in the plan, with nothing when it gets nothing.
#[allow(clippy::type_complexity)]
fn assign_ranges(
    subscriptions: &[(String, Vec<String>)],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut plan: BTreeMap<String, BTreeMap<String, Vec<i32>>> =
        subscriptions.iter().map(|(m, _)| (m.clone(), BTreeMap::new())).collect();
    for (topic, &count) in partitions {
        let mut members: Vec<&str> =
            subscriptions.iter().filter(|(_, t)| t.contains(topic)).map(|(m, _)| m.as_str()).collect();
        members.sort_unstable();
        if members.is_empty() {
            continue;
        }
        let (each, extra) = (count / members.len() as i32, count % members.len() as i32);
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let n = each + i32::from((i as i32) < extra);
            let range: Vec<i32> = (next..next + n).collect();
            next += n;
            plan.get_mut(*m).expect("every member is planned").insert(topic.clone(), range);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_as_kafkas_range_assignor_splits_them() {
        let subs = vec![
            ("m-b".to_string(), vec!["orders".to_string()]),
            ("m-a".to_string(), vec!["orders".to_string(), "returns".to_string()]),
            ("m-c".to_string(), vec!["orders".to_string()]),
        ];
        let counts = BTreeMap::from([("orders".to_string(), 7), ("returns".to_string(), 2)]);
        let plan = assign_ranges(&subs, &counts);
        assert_eq!(plan["m-a"]["orders"], [0, 1, 2]);
        assert_eq!(plan["m-b"]["orders"], [3, 4]);
        assert_eq!(plan["m-c"]["orders"], [5, 6]);
        assert_eq!(plan["m-a"]["returns"], [0, 1]);
        assert!(!plan["m-b"].contains_key("returns"));
    }

    #[test]
    fn subscriptions_of_every_version_are_read() {
        for version in 0..=3 {
            let s = ConsumerProtocolSubscription::default()
                .with_topics(vec![str_bytes("orders")])
                .with_user_data(Some(Bytes::from_static(b"x")));
            assert_eq!(subscribed_topics(&encode_versioned(version, &s).unwrap()).unwrap(), ["orders"]);
        }
    }
}
