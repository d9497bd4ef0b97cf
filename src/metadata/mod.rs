//! Topics, their partitions and configs, and this broker's identity.
//!
//! Topic metadata is persisted under `<log.dir>/__topics/<topic id>.properties` (see
//! `log::format`), written to a temporary file, fsynced and renamed, so a crash leaves either the
//! old or the new version, never a torn one. The file is named by the topic's id, not its name:
//! a legal 249-character name plus `.properties` is longer than a file name may be. Files of
//! earlier releases, named `<topic>.properties`, are read the same way (the name is inside) and
//! removed the next time their topic is written or deleted.

pub mod topic_config;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use tracing::warn;
use uuid::Uuid;

use crate::log::format::{FORMAT_VERSION, META_FILE, TOPICS_DIR};

#[derive(Debug, Clone, PartialEq)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: i32,
    /// Overrides only; defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

/// Where clients reach this broker, and which cluster it belongs to.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub cluster_id: String,
}

#[derive(Debug)]
pub struct TopicStore {
    dir: PathBuf,
    topics: RwLock<BTreeMap<Arc<str>, Arc<TopicMeta>>>,
    by_id: RwLock<HashMap<Uuid, Arc<TopicMeta>>>,
}

impl TopicStore {
    pub fn load(root: &Path) -> io::Result<Self> {
        let dir = root.join(TOPICS_DIR);
        fs::create_dir_all(&dir)?;
        let mut topics = BTreeMap::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "properties") {
                continue;
            }
            let text = fs::read_to_string(&path)?;
            match parse_topic(&text) {
                Some(meta) => {
                    topics.insert(meta.name.clone(), Arc::new(meta));
                }
                None => warn!(file = %path.display(), "ignoring unreadable topic metadata file"),
            }
        }
        let by_id = topics.values().map(|t| (t.id, t.clone())).collect();
        Ok(Self { dir, topics: RwLock::new(topics), by_id: RwLock::new(by_id) })
    }

    pub fn get(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.topics.read().get(name).cloned()
    }

    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<TopicMeta>> {
        self.by_id.read().get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<TopicMeta>> {
        self.topics.read().values().cloned().collect()
    }

    /// Persists and publishes a topic (new or changed).
    pub fn put(&self, meta: TopicMeta) -> io::Result<Arc<TopicMeta>> {
        let path = self.dir.join(format!("{}.properties", meta.id));
        write_atomically(&self.dir, &path, render_topic(&meta).as_bytes())?;
        self.remove_legacy_file(&meta.name)?;
        let meta = Arc::new(meta);
        self.topics.write().insert(meta.name.clone(), meta.clone());
        self.by_id.write().insert(meta.id, meta.clone());
        Ok(meta)
    }

    pub fn remove(&self, name: &str) -> io::Result<Option<Arc<TopicMeta>>> {
        if let Some(t) = self.get(name) {
            remove_if_present(&self.dir.join(format!("{}.properties", t.id)))?;
        }
        self.remove_legacy_file(name)?;
        fs::File::open(&self.dir)?.sync_all()?;
        let removed = self.topics.write().remove(name);
        if let Some(t) = &removed {
            self.by_id.write().remove(&t.id);
        }
        Ok(removed)
    }
}

impl TopicStore {
    /// Removes a `<topic>.properties` file written by an earlier release, if there is one.
    fn remove_legacy_file(&self, name: &str) -> io::Result<()> {
        // Names too long for a file name never had one.
        if name.len() + ".properties".len() > 255 {
            return Ok(());
        }
        remove_if_present(&self.dir.join(format!("{name}.properties")))
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn render_topic(meta: &TopicMeta) -> String {
    let mut s =
        format!("version={FORMAT_VERSION}\nname={}\ntopic.id={}\npartitions={}\n", meta.name, meta.id, meta.partitions);
    for (k, v) in &meta.configs {
        s.push_str(&format!("config.{k}={}\n", v.replace('\n', " ")));
    }
    s
}

fn parse_topic(text: &str) -> Option<TopicMeta> {
    let mut name = None;
    let mut id = None;
    let mut partitions = None;
    let mut configs = BTreeMap::new();
    for line in text.lines() {
        let (k, v) = line.split_once('=')?;
        match k {
            "name" => name = Some(Arc::from(v)),
            "topic.id" => id = Uuid::parse_str(v).ok(),
            "partitions" => partitions = v.parse().ok(),
            "version" => {}
            _ => {
                if let Some(key) = k.strip_prefix("config.") {
                    configs.insert(key.to_string(), v.to_string());
                }
            }
        }
    }
    Some(TopicMeta { name: name?, id: id?, partitions: partitions?, configs })
}

pub(crate) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// Reads `meta.properties`, creating it with a fresh cluster id on first start.
pub fn load_or_init_cluster_id(root: &Path, configured: Option<&str>, node_id: i32) -> io::Result<String> {
    let path = root.join(META_FILE);
    if let Ok(text) = fs::read_to_string(&path) {
        if let Some(id) = text.lines().find_map(|l| l.strip_prefix("cluster.id=")) {
            if let Some(c) = configured {
                if c != id {
                    return Err(io::Error::other(format!(
                        "data directory {} belongs to cluster {id}, but cluster.id is set to {c}",
                        root.display()
                    )));
                }
            }
            return Ok(id.to_string());
        }
    }
    let id = configured.map_or_else(new_cluster_id, str::to_string);
    let text = format!("version={FORMAT_VERSION}\ncluster.id={id}\nnode.id={node_id}\n");
    write_atomically(root, &path, text.as_bytes())?;
    Ok(id)
}

/// A fresh cluster id: as Kafka's, 16 random bytes in URL-safe base64 without padding.
pub fn new_cluster_id() -> String {
    base64_url(Uuid::new_v4().as_bytes())
}

/// The cluster id a data directory already belongs to, if any.
pub fn existing_cluster_id(root: &Path) -> Option<String> {
    let text = fs::read_to_string(root.join(META_FILE)).ok()?;
    text.lines().find_map(|l| l.strip_prefix("cluster.id=")).map(str::to_string)
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Kafka's topic name rules: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("Topic name cannot be \"{name}\""));
    }
    if name.len() > 249 {
        return Err(format!("Topic name is longer than 249 characters: {} characters", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("Topic name \"{name}\" is illegal: it contains '{c}'; only ASCII alphanumerics, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::load(dir.path()).unwrap();
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        let meta = TopicMeta { name: Arc::from("orders.v1"), id: Uuid::new_v4(), partitions: 3, configs };
        store.put(meta.clone()).unwrap();
        let reloaded = TopicStore::load(dir.path()).unwrap();
        assert_eq!(*reloaded.get("orders.v1").unwrap(), meta);
        assert_eq!(reloaded.get_by_id(&meta.id).unwrap().name.as_ref(), "orders.v1");
        reloaded.remove("orders.v1").unwrap();
        assert!(TopicStore::load(dir.path()).unwrap().get("orders.v1").is_none());
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("a.b_c-1").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn cluster_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_init_cluster_id(dir.path(), None, 1).unwrap();
        assert_eq!(a.len(), 22);
        assert_eq!(load_or_init_cluster_id(dir.path(), None, 1).unwrap(), a);
        assert!(load_or_init_cluster_id(dir.path(), Some("other"), 1).is_err());
    }
}
