//! `gregor topics`: list, create, describe, alter (partitions), delete.

use anyhow::Context;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::*;

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
    /// Add partitions to a topic (their number only grows, as in Kafka). Topic configs are
    /// changed with `gregor configs alter --topic`.
    Alter {
        name: String,
        /// The new number of partitions.
        #[arg(long)]
        partitions: i32,
    },
    /// Delete a topic.
    Delete { name: String },
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
                let (k, v) = key_value(kv, "--config")?;
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
        TopicsCmd::Alter { name: topic, partitions } => {
            let req = CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(name(topic))
                    .with_count(*partitions)
                    .with_assignments(None)])
                .with_timeout_ms(30_000);
            let resp = c.call(3, &req).await?;
            let r = resp.results.first().context("the broker answered without the topic")?;
            check(r.error_code, r.error_message.as_ref(), &format!("adding partitions to '{topic}'"))?;
            if common.json {
                println!("{}", json!({"topic": topic, "partitions": partitions}));
            } else {
                println!("topic '{topic}' now has {partitions} partition(s)");
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
