//! `gregor configs describe|alter`: topic and broker configs, as `kafka-configs` shows and
//! changes them (DescribeConfigs v4, IncrementalAlterConfigs v1).

use anyhow::{bail, Context};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::*;
use serde_json::json;

use super::*;

/// Which configs a command is about.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Entity {
    /// A topic's configs.
    #[arg(long)]
    topic: Option<String>,
    /// A broker's configs, by node id.
    #[arg(long)]
    broker: Option<i32>,
    /// The cluster-wide defaults of every broker.
    #[arg(long)]
    broker_defaults: bool,
}

impl Entity {
    /// Kafka's resource type (2 topic, 4 broker) and name ("" for the broker defaults).
    fn resource(&self) -> (i8, String) {
        match (&self.topic, self.broker) {
            (Some(t), _) => (2, t.clone()),
            (None, Some(b)) => (4, b.to_string()),
            (None, None) => (4, String::new()),
        }
    }

    fn describe(&self) -> String {
        match (&self.topic, self.broker) {
            (Some(t), _) => format!("topic '{t}'"),
            (None, Some(b)) => format!("broker {b}"),
            (None, None) => "the broker defaults".into(),
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum ConfigsCmd {
    /// The configs set on a topic or broker (with --all, every config and where it comes from).
    Describe {
        #[command(flatten)]
        entity: Entity,
        /// Show every config, defaults included.
        #[arg(long)]
        all: bool,
    },
    /// Set or remove configs; the others keep their values.
    Alter {
        #[command(flatten)]
        entity: Entity,
        /// Set KEY to VALUE (repeat for more).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove KEY, so its default applies again (repeat for more).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

/// Kafka's name for a config source.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

pub async fn configs(common: &Common, cmd: &ConfigsCmd) -> anyhow::Result<()> {
    let mut c = Connection::open(&common.bootstrap_server).await?;
    match cmd {
        ConfigsCmd::Describe { entity, all } => {
            let (resource_type, resource_name) = entity.resource();
            let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(&resource_name))
                .with_configuration_keys(None)]);
            let resp = c.call(4, &req).await?;
            let r = resp.results.first().context("the broker answered without the resource")?;
            check(r.error_code, r.error_message.as_ref(), &format!("describing the configs of {}", entity.describe()))?;
            let mut rows: Vec<Vec<String>> = Vec::new();
            let mut list = Vec::new();
            for cfg in &r.configs {
                // Without --all, what is set for this resource: Kafka's "dynamic configs" view,
                // plus static broker settings when a broker is asked for.
                let shown = *all || matches!(cfg.config_source, 1 | 2 | 3 | 4 | 8);
                if !shown {
                    continue;
                }
                let value = match (&cfg.value, cfg.is_sensitive) {
                    (_, true) => "(sensitive)".to_string(),
                    (Some(v), false) => v.to_string(),
                    (None, false) => "(null)".to_string(),
                };
                list.push(json!({"name": cfg.name.as_str(), "value": if cfg.is_sensitive { None } else { cfg.value.as_ref().map(|v| v.as_str()) },
                    "source": source_name(cfg.config_source), "read_only": cfg.read_only, "sensitive": cfg.is_sensitive}));
                rows.push(vec![cfg.name.to_string(), value, source_name(cfg.config_source).to_string()]);
            }
            rows.sort();
            if common.json {
                println!("{}", json!({"resource": entity.describe(), "configs": list}));
            } else if rows.is_empty() {
                println!("no configs are set on {} (--all shows the defaults)", entity.describe());
            } else {
                table(&["NAME", "VALUE", "SOURCE"], &rows);
            }
        }
        ConfigsCmd::Alter { entity, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
            }
            let (resource_type, resource_name) = entity.resource();
            let mut changes = Vec::new();
            for kv in set {
                let (k, v) = key_value(kv, "--set")?;
                changes.push(
                    AlterableConfig::default()
                        .with_name(str_bytes(k))
                        .with_config_operation(0)
                        .with_value(Some(str_bytes(v))),
                );
            }
            for k in delete {
                changes.push(AlterableConfig::default().with_name(str_bytes(k)).with_config_operation(1));
            }
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(&resource_name))
                .with_configs(changes)]);
            let resp = c.call(1, &req).await?;
            let r = resp.responses.first().context("the broker answered without the resource")?;
            check(r.error_code, r.error_message.as_ref(), &format!("altering the configs of {}", entity.describe()))?;
            if common.json {
                println!("{}", json!({"resource": entity.describe(), "set": set, "deleted": delete}));
            } else {
                println!("altered the configs of {}", entity.describe());
            }
        }
    }
    Ok(())
}
