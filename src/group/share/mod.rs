//! Share groups (KIP-932, queues): members heartbeat with ShareGroupHeartbeat and are given
//! partitions that several members may share; ShareFetch hands each member records the others
//! do not hold, under an acquisition lock, and the member accepts, releases or rejects them.
//! Modelled on Kafka 4.1's `GroupMetadataManager.shareGroupHeartbeat`, `SimpleAssignor`,
//! `ShareSessionCache` and `SharePartition` (in [`partition`]).
//!
//! Membership: the member chooses its id (a UUID), joins with epoch 0 and a subscription, and
//! leaves with epoch -1. Every join, leave, expiry or subscription change bumps the group epoch;
//! the assignment is recomputed for it and each member takes its part on its next heartbeat
//! (no revocation step: sharing is the point). A member's heartbeat must carry its current
//! epoch (FENCED_MEMBER_EPOCH otherwise).
//!
//! Share sessions: one per (group, member). Epoch 0 opens it with partitions to fetch,
//! each later request carries the next epoch and may add or forget partitions, -1 closes it.
//! Closing the session or missing the session timeout releases what the member holds; so does
//! leaving the group, once the member's session closed or [`DEPARTURE_GRACE`] passed.
//!
//! Kept across restarts ([`store`]): each share-partition's start offset and the state and
//! delivery count of its records in flight, in `__share_group_state`, written after every
//! ShareFetch and ShareAcknowledge that changed them (before the answer) and within 100 ms of a
//! release or a lock running out; group configs in `share-group-configs.json`. After a restart
//! the groups are back (Empty), records that were acquired are available again with the
//! deliveries they had, and nothing acknowledged is delivered again. Members and share
//! sessions are not kept: members rejoin with epoch 0, as they do when their session is lost.
//! The writes are not fsynced (as for topic data by default): a power loss, unlike a crash of
//! the broker, may deliver records again.
//!
//! Shared mode: the group's coordinator keeps its members, and each partition's leader its
//! share-partitions (as in Kafka). The leader loads them from the cluster's store when it
//! first serves the partition in its leader epoch ([`ShareCoordinator::load`]) and writes them
//! there ([`ClusterStates`]), fenced by that epoch, instead of to `__share_group_state`: a
//! deposed leader's writes are refused and it lets go of the partition.

pub mod partition;
pub mod settings;
pub mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

pub use partition::{AckError, Acquired, BatchSpan, Limits, SharePartition};
pub use store::SHARE_STATE_TOPIC;

use crate::log::{LogManager, PartitionConfig, PartitionLog, TopicPartition};
use store::{ShareKey, Snapshot};

use super::consumer::HeartbeatError;

/// A member leaves with this epoch; a share session closes with it.
pub const LEAVE_EPOCH: i32 = -1;

/// How long the share session of a member that left the group stays open for its last
/// acknowledgements. Kafka 4.1 closes it at once; librdkafka 2.16 sends its leaving heartbeat
/// and its final ShareAcknowledge at the same time, so the acknowledgements of a consumer's
/// last poll would be lost and its records delivered again.
pub const DEPARTURE_GRACE: Duration = Duration::from_secs(5);

/// Settings of share groups (Kafka's `group.share.*`), the defaults of each group's
/// `share.*` group configs.
#[derive(Debug, Clone)]
pub struct ShareConfig {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub record_lock_duration: Duration,
    pub delivery_count_limit: i16,
    pub partition_max_record_locks: i64,
    pub max_size: usize,
    pub max_sessions: usize,
    /// Rewrite `__share_group_state` to its live records at start once it is larger than this.
    pub checkpoint_bytes: u64,
}

impl Default for ShareConfig {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(5),
            record_lock_duration: Duration::from_secs(30),
            delivery_count_limit: 5,
            partition_max_record_locks: 2000,
            max_size: 200,
            max_sessions: 2000,
            checkpoint_bytes: crate::group::CHECKPOINT_BYTES,
        }
    }
}

/// Where a share-partition starts when a group first fetches it (`share.auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    #[default]
    Latest,
    Earliest,
    /// `by_duration:<ISO-8601 duration>`: the first record written at most this long ago (the
    /// end of the partition when there is none).
    ByDuration(Duration),
}

/// A group's own settings (group configs), each falling back to the broker's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSettings {
    pub auto_offset_reset: Option<OffsetReset>,
    pub record_lock_duration_ms: Option<u64>,
    pub session_timeout_ms: Option<u64>,
    pub heartbeat_interval_ms: Option<u64>,
    pub delivery_count_limit: Option<i16>,
    /// `share.isolation.level`: `Some(true)` for read_committed.
    pub read_committed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidEpoch(String),
    #[error("{0}")]
    LimitReached(String),
    #[error("{0}")]
    InvalidRequest(String),
}

/// Why a share group was not deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    #[error("{0}")]
    NotEmpty(String),
    /// Shared mode: the store did not take the deletion.
    #[error("{0}")]
    NotKept(String),
}

#[derive(Debug, Clone)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: BTreeSet<String>,
    pub assignment: BTreeMap<String, BTreeSet<i32>>,
    session_deadline: Instant,
}

/// A ShareGroupHeartbeat as the group sees it.
#[derive(Debug, Clone, Default)]
pub struct ShareHeartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    /// `None`: unchanged since the last heartbeat.
    pub subscribed_topic_names: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShareHeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Topic name -> partitions, when the member must learn its assignment.
    pub assignment: Option<BTreeMap<String, BTreeSet<i32>>>,
}

#[derive(Debug, Clone)]
pub struct ShareGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ShareMember>,
    /// Partition counts of the subscribed topics the assignment was computed with.
    topics: BTreeMap<String, i32>,
    partitions: HashMap<(Uuid, i32), SharePartition>,
}

impl ShareGroup {
    fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            topics: BTreeMap::new(),
            partitions: HashMap::new(),
        }
    }

    /// Kafka's share group states: Empty or Stable.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// The share-partition start offsets (DescribeShareGroupOffsets).
    pub fn start_offsets(&self) -> Vec<((Uuid, i32), i64)> {
        let mut v: Vec<_> = self.partitions.iter().map(|(k, p)| (*k, p.start_offset())).collect();
        v.sort();
        v
    }

    fn subscribed(&self) -> BTreeSet<String> {
        self.members.values().flat_map(|m| m.subscribed.iter().cloned()).collect()
    }

    /// Kafka's SimpleAssignor for a homogeneous view, per topic: with at least as many members
    /// as partitions each partition goes to several members (member i takes partition
    /// i mod n); with fewer, the partitions are dealt out round-robin.
    fn assign(&mut self) {
        let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<i32>>> = BTreeMap::new();
        for (topic, &count) in &self.topics {
            let members: Vec<&String> =
                self.members.values().filter(|m| m.subscribed.contains(topic)).map(|m| &m.member_id).collect();
            if members.is_empty() || count <= 0 {
                continue;
            }
            let n = members.len() as i32;
            if n >= count {
                for (i, m) in members.iter().enumerate() {
                    out.entry((*m).clone()).or_default().entry(topic.clone()).or_default().insert(i as i32 % count);
                }
            } else {
                for p in 0..count {
                    let m = members[(p % n) as usize];
                    out.entry(m.clone()).or_default().entry(topic.clone()).or_default().insert(p);
                }
            }
        }
        for m in self.members.values_mut() {
            m.assignment = out.remove(&m.member_id).unwrap_or_default();
        }
        self.assignment_epoch = self.group_epoch;
    }

    /// Releases what `member_id` holds; the share-partitions that changed are added to `dirty`.
    fn release_member(&mut self, member_id: &str, limits: &Limits, dirty: &mut HashSet<ShareKey>) -> usize {
        let mut released = 0;
        for (tp, p) in &mut self.partitions {
            let n = p.release_member(member_id, limits);
            if n > 0 {
                dirty.insert((self.group_id.clone(), tp.0, tp.1));
                released += n;
            }
        }
        released
    }
}

#[derive(Debug, Clone)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    partitions: BTreeSet<(Uuid, i32)>,
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<String, ShareGroup>,
    sessions: HashMap<(String, String), Session>,
    settings: BTreeMap<String, GroupSettings>,
    /// Members that left the group and whose share session is still open, until when.
    departed: HashMap<(String, String), Instant>,
    /// Share-partitions changed since they were last written (or removed: a tombstone is due).
    dirty: HashSet<ShareKey>,
    /// Per share-partition written: its last snapshot epoch and when it was first written.
    written: HashMap<ShareKey, (i32, i64)>,
    /// Shared mode: the partitions whose share-partitions were loaded from the cluster's store,
    /// each with the leader epoch this broker leads it in (see [`ShareCoordinator::load`]).
    loaded: HashMap<(Uuid, i32), i32>,
}

/// Where share-partition state is written.
#[derive(Debug)]
enum Keeping {
    /// Nowhere (unit tests).
    Nowhere,
    /// This broker's `__share_group_state` log (one node).
    Log(Arc<PartitionLog>),
    /// The cluster's store, by each partition's leader (shared mode).
    Cluster(Arc<dyn ClusterStates>),
}

/// Shared mode: the cluster's store of share-partition state. A partition's leader writes the
/// state of its share-partitions there, fenced by the leader epoch it loaded them in, and the
/// next leader of the partition reads them back from there.
pub trait ClusterStates: Send + Sync + std::fmt::Debug {
    /// Writes these share-partitions' state in one change. Returns the partitions whose rows
    /// were refused: this broker no longer leads them in the epoch given.
    fn write(&self, rows: Vec<StateWrite>) -> io::Result<Vec<(Uuid, i32)>>;
    /// Forgets every share-partition of a group being deleted, whoever leads its partitions.
    fn forget_group(&self, group_id: &str) -> io::Result<()>;
}

/// Shared mode: how a share group's coordinator changes the share-partitions another broker
/// leads (AlterShareGroupOffsets, DeleteShareGroupOffsets, DeleteGroups): it asks that broker,
/// which holds them, to start them afresh ([`ShareCoordinator::reset`]) and write them.
pub trait RemoteShares: Send + Sync + std::fmt::Debug {
    /// Asks broker `node` to reset the group's share-partitions in `parts` (`Some`: at that
    /// start offset; `None`: forgotten). Returns each partition's outcome (`Err`: the error
    /// code and message that broker answered), or why it could not be asked.
    fn reset(
        &self,
        node: i32,
        group_id: &str,
        parts: Vec<((Uuid, i32), Option<i64>)>,
    ) -> futures_util::future::BoxFuture<'static, Result<Outcomes, String>>;
}

/// One share-partition's outcome at its leader: `Err((error code, message))`.
pub type PartitionOutcome = Result<(), (i16, String)>;

/// What a broker answered to [`RemoteShares::reset`]: each partition's outcome.
pub type Outcomes = Vec<((Uuid, i32), PartitionOutcome)>;

/// One share-partition's state as its leader writes it (`state: None`: forget it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateWrite {
    pub key: ShareKey,
    pub leader_epoch: i32,
    /// The value of a ShareSnapshot record ([`store::encode_value`]).
    pub state: Option<Vec<u8>>,
}

/// Every share group of this broker, behind one lock (never held across an await).
#[derive(Debug)]
pub struct ShareCoordinator {
    cfg: ShareConfig,
    /// Where group configs are kept (none in unit tests).
    root: Option<PathBuf>,
    /// Shared mode: the group configs as the cluster keeps them (`root` keeps them otherwise).
    cluster_configs: Option<crate::auth::kept::Records<settings::Kept>>,
    /// Where share-partition state is kept.
    keeping: Keeping,
    /// Held from taking the changed state to writing it, so that snapshots of one
    /// share-partition are written in the order they were taken (the last one counts).
    writing: Mutex<()>,
    state: Mutex<State>,
    /// Woken when records become available without an append (released, a lock ran out).
    released: Arc<Notify>,
}

/// What a share fetch may read from a share-partition: from where, and whether anything is
/// there to acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPlan {
    pub read_from: i64,
    pub available: bool,
}

impl ShareCoordinator {
    /// A coordinator that keeps nothing on disk.
    pub fn new(cfg: ShareConfig) -> Self {
        Self {
            cfg,
            root: None,
            cluster_configs: None,
            keeping: Keeping::Nowhere,
            writing: Mutex::new(()),
            state: Mutex::new(State::default()),
            released: Arc::new(Notify::new()),
        }
    }

    /// Shared mode's coordinator: group configs are the cluster's, kept by `keeper` (a
    /// broker's own `share-group-configs.json` is not read); share-partition state is loaded
    /// from and written to the cluster's store, one partition at a time, by the broker leading
    /// the partition (nothing is loaded at start). `__share_group_state` is opened but not
    /// written: the cluster lists it, as Kafka's does, and leads it like any partition.
    pub fn open_shared(
        keeper: Arc<dyn crate::auth::kept::Keeper>,
        logs: &LogManager,
        cfg: ShareConfig,
        states: Arc<dyn ClusterStates>,
        now_ms: i64,
    ) -> io::Result<Self> {
        let config = PartitionConfig { compact: true, ..PartitionConfig::internal() };
        logs.open(TopicPartition::new(SHARE_STATE_TOPIC, 0), config, now_ms)?;
        let configs = crate::auth::kept::Records::<settings::Kept>::open(keeper, settings::DOCUMENT)?;
        let state = State { settings: configs.get().0.clone(), ..State::default() };
        Ok(Self {
            cfg,
            root: None,
            cluster_configs: Some(configs),
            keeping: Keeping::Cluster(states),
            writing: Mutex::new(()),
            state: Mutex::new(state),
            released: Arc::new(Notify::new()),
        })
    }

    /// Shared mode: whether this broker, leading partition `tp` in `epoch`, must load its
    /// share-partitions from the cluster's store before it serves them.
    pub fn needs_load(&self, tp: (Uuid, i32), epoch: i32) -> bool {
        matches!(self.keeping, Keeping::Cluster(_)) && self.state.lock().loaded.get(&tp) != Some(&epoch)
    }

    /// Shared mode: takes partition `tp`'s share-partitions as the cluster's store holds them
    /// (`rows`: group, ShareSnapshot value), this broker leading it in `epoch`. What this
    /// broker held of them before is dropped: another leader may have changed them since.
    /// When the partition was loaded in this epoch already (by a request that raced this
    /// one), nothing changes: what was done since must not be undone.
    pub fn load(&self, tp: (Uuid, i32), epoch: i32, rows: Vec<(String, Vec<u8>)>) {
        let mut st = self.state.lock();
        if st.loaded.get(&tp) == Some(&epoch) {
            return;
        }
        forget_partition(&mut st, tp);
        for (group, value) in rows {
            let Some(snap) = store::decode_value(&value) else {
                tracing::warn!(group = %group, partition = tp.1, "the store holds share-group state gregor cannot read; starting that share-partition afresh");
                continue;
            };
            let sp = SharePartition::restore(snap.start_offset, &snap.batches, self.cfg.partition_max_record_locks);
            st.written.insert((group.clone(), tp.0, tp.1), (snap.snapshot_epoch, snap.create_timestamp));
            st.groups.entry(group.clone()).or_insert_with(|| ShareGroup::new(&group)).partitions.insert(tp, sp);
        }
        st.loaded.insert(tp, epoch);
    }

    /// The broker's coordinator: group configs are loaded from, and kept in, `root`; share-
    /// partition state is replayed from `__share_group_state` and written to it.
    pub fn open(root: PathBuf, logs: &LogManager, cfg: ShareConfig, now_ms: i64) -> io::Result<Self> {
        let settings = settings::load(&root)?;
        // Compacted in the background like any compacted topic: replay keeps the latest record
        // per key and lets a tombstone delete, which is what compaction preserves.
        let config = PartitionConfig { compact: true, ..PartitionConfig::internal() };
        let log = logs.open(TopicPartition::new(SHARE_STATE_TOPIC, 0), config, now_ms)?;
        let (snapshots, kept) = store::replay(&log)?;
        let mut state = State { settings, ..State::default() };
        for ((group, topic, partition), snap) in &snapshots {
            let g = state.groups.entry(group.clone()).or_insert_with(|| ShareGroup::new(group));
            let sp = SharePartition::restore(snap.start_offset, &snap.batches, cfg.partition_max_record_locks);
            g.partitions.insert((*topic, *partition), sp);
            state.written.insert((group.clone(), *topic, *partition), (snap.snapshot_epoch, snap.create_timestamp));
        }
        if log.size_bytes() >= cfg.checkpoint_bytes {
            store::rewrite(&log, &snapshots, kept, now_ms)?;
        }
        Ok(Self {
            cfg,
            root: Some(root),
            cluster_configs: None,
            keeping: Keeping::Log(log),
            writing: Mutex::new(()),
            state: Mutex::new(state),
            released: Arc::new(Notify::new()),
        })
    }

    /// Writes the share-partitions changed since the last write, in one append to
    /// `__share_group_state` (shared mode: one change in the cluster's store). On failure they
    /// stay due and the next call tries again.
    pub fn persist(&self) -> io::Result<()> {
        if matches!(self.keeping, Keeping::Nowhere) {
            return Ok(());
        }
        let _order = self.writing.lock();
        let now_ms = crate::clock::now_ms();
        let writes = self.take_dirty(now_ms);
        if writes.is_empty() {
            return Ok(());
        }
        // Due again if the write fails.
        let keys: Vec<ShareKey> = writes.iter().map(|w| w.key.clone()).collect();
        let result = match &self.keeping {
            Keeping::Nowhere => Ok(()),
            Keeping::Log(log) => {
                let records: Vec<(ShareKey, Option<Vec<u8>>)> = writes.into_iter().map(|w| (w.key, w.state)).collect();
                store::append(log, &records, now_ms)
            }
            Keeping::Cluster(states) => states.write(writes).map(|refused| {
                if !refused.is_empty() {
                    // Led elsewhere now: the next leader loaded, or will load, what the store
                    // holds; this broker loads it again if the partition comes back.
                    let mut st = self.state.lock();
                    for tp in refused {
                        tracing::info!(
                            partition = tp.1,
                            "no longer leading a partition: its share-group state is the next leader's"
                        );
                        forget_partition(&mut st, tp);
                    }
                }
            }),
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, "cannot write share-partition state; retrying with the next change");
            self.state.lock().dirty.extend(keys);
        }
        result
    }

    /// The share-partitions changed since the last write, as snapshots to write (tombstones for
    /// those removed), their snapshot epochs moved on. Shared mode: only those of partitions
    /// loaded from the store, in the epoch loaded (the others are not this broker's to write).
    fn take_dirty(&self, now_ms: i64) -> Vec<StateWrite> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let shared = matches!(self.keeping, Keeping::Cluster(_));
        let mut out = Vec::with_capacity(st.dirty.len());
        for key in std::mem::take(&mut st.dirty) {
            let leader_epoch = match st.loaded.get(&(key.1, key.2)) {
                Some(&e) => e,
                None if shared => continue,
                None => 0,
            };
            let sp = st.groups.get(&key.0).and_then(|g| g.partitions.get(&(key.1, key.2)));
            match sp {
                None => {
                    st.written.remove(&key);
                    out.push(StateWrite { key, leader_epoch, state: None });
                }
                Some(sp) => {
                    let (epoch, created) = st.written.get(&key).copied().unwrap_or((-1, now_ms));
                    let snapshot_epoch = epoch.wrapping_add(1).max(0);
                    st.written.insert(key.clone(), (snapshot_epoch, created));
                    let snap = Snapshot {
                        snapshot_epoch,
                        start_offset: sp.start_offset(),
                        create_timestamp: created,
                        write_timestamp: now_ms,
                        batches: sp.state_batches(),
                    };
                    out.push(StateWrite { key, leader_epoch, state: Some(store::encode_value(&snap)) });
                }
            }
        }
        out
    }

    pub fn config(&self) -> &ShareConfig {
        &self.cfg
    }

    /// Woken whenever records are released (see [`Notify::notified`]).
    pub fn released(&self) -> &Arc<Notify> {
        &self.released
    }

    fn limits(&self, settings: Option<&GroupSettings>) -> Limits {
        Limits {
            lock_duration: settings
                .and_then(|s| s.record_lock_duration_ms)
                .map_or(self.cfg.record_lock_duration, Duration::from_millis),
            delivery_count_limit: settings
                .and_then(|s| s.delivery_count_limit)
                .unwrap_or(self.cfg.delivery_count_limit),
            max_in_flight: self.cfg.partition_max_record_locks,
        }
    }

    /// The acquisition lock duration of a group, as ShareFetch reports it.
    pub fn lock_duration(&self, group_id: &str) -> Duration {
        let st = self.state.lock();
        self.limits(st.settings.get(group_id)).lock_duration
    }

    pub fn settings(&self, group_id: &str) -> GroupSettings {
        self.state.lock().settings.get(group_id).cloned().unwrap_or_default()
    }

    /// Shared mode: the version of the group configs document this broker holds (0 otherwise).
    pub fn configs_version(&self) -> i64 {
        self.cluster_configs.as_ref().map_or(0, |r| r.version())
    }

    /// Shared mode: takes up the group configs other brokers changed, when the document is no
    /// longer in `version`. Blocking: call it off the runtime.
    pub fn follow_configs(&self, version: i64) -> io::Result<()> {
        let Some(records) = &self.cluster_configs else { return Ok(()) };
        records.follow(version)?;
        self.state.lock().settings = records.get().0.clone();
        Ok(())
    }

    /// Shared mode: makes `change` to the group configs the cluster keeps, then holds them.
    /// Blocking: call it off the runtime. `None` on one node.
    fn change_cluster_configs(&self, change: impl FnMut(&mut settings::Kept)) -> Option<io::Result<()>> {
        let records = self.cluster_configs.as_ref()?;
        let ((), kept) = records.change(change);
        self.state.lock().settings = records.get().0.clone();
        Some(kept)
    }

    /// Replaces a group's configs (kept on disk, or in shared mode in the cluster's store,
    /// before they apply). Blocking in shared mode: call it off the runtime.
    pub fn set_settings(&self, group_id: &str, settings: GroupSettings) -> io::Result<()> {
        let shared = self.change_cluster_configs(|all| {
            if settings == GroupSettings::default() {
                all.0.remove(group_id);
            } else {
                all.0.insert(group_id.to_string(), settings.clone());
            }
        });
        if let Some(kept) = shared {
            return kept;
        }
        let mut st = self.state.lock();
        let mut next = st.settings.clone();
        if settings == GroupSettings::default() {
            next.remove(group_id);
        } else {
            next.insert(group_id.to_string(), settings);
        }
        if let Some(root) = &self.root {
            settings::save(root, &next)?;
        }
        st.settings = next;
        Ok(())
    }

    pub fn is_share_group(&self, group_id: &str) -> bool {
        self.state.lock().groups.contains_key(group_id)
    }

    pub fn list(&self) -> Vec<(String, &'static str)> {
        let st = self.state.lock();
        let mut v: Vec<_> = st.groups.values().map(|g| (g.group_id.clone(), g.state_name())).collect();
        v.sort();
        v
    }

    pub fn describe(&self, group_id: &str) -> Option<ShareGroup> {
        self.state.lock().groups.get(group_id).cloned()
    }

    /// Deletes an empty share group with its share-partitions (DeleteGroups).
    pub fn delete(&self, group_id: &str) -> Result<bool, DeleteError> {
        if !deletable(&self.state.lock(), group_id)? {
            return Ok(false);
        }
        if let Keeping::Cluster(states) = &self.keeping {
            // Its share-partitions on every partition, first: a group of this id created later
            // must not find them.
            states.forget_group(group_id).map_err(|e| {
                DeleteError::NotKept(format!("The share group {group_id} stays: its state could not be deleted: {e}"))
            })?;
        }
        let mut st = self.state.lock();
        // Checked again: a member may have joined meanwhile.
        if !deletable(&st, group_id)? {
            return Ok(false);
        }
        if let Some(g) = st.groups.remove(group_id) {
            st.dirty.extend(g.partitions.keys().map(|(t, p)| (group_id.to_string(), *t, *p)));
        }
        if !st.settings.contains_key(group_id) {
            return Ok(true);
        }
        // The group is gone either way; its configs come back only if forgetting them fails.
        let forgot = if self.cluster_configs.is_some() {
            drop(st);
            self.change_cluster_configs(|all| {
                all.0.remove(group_id);
            })
        } else {
            st.settings.remove(group_id);
            self.root.as_ref().map(|root| settings::save(root, &st.settings))
        };
        if let Some(Err(e)) = forgot {
            tracing::warn!(group = group_id, error = %e, "could not forget a deleted share group's configs");
        }
        Ok(true)
    }

    /// Shared mode: deletes a group this broker does not hold (its coordinator moved here
    /// since it last had members) but whose share-partitions the store holds. `Ok(false)` on
    /// one node, or when the group is held here (see [`Self::delete`]).
    pub fn forget_stored(&self, group_id: &str) -> Result<bool, DeleteError> {
        let Keeping::Cluster(states) = &self.keeping else { return Ok(false) };
        if self.state.lock().groups.contains_key(group_id) {
            return Ok(false);
        }
        states.forget_group(group_id).map_err(|e| {
            DeleteError::NotKept(format!("The share group {group_id} stays: its state could not be deleted: {e}"))
        })?;
        Ok(true)
    }

    /// Creates the group if needed (AlterShareGroupOffsets does), refusing while it has
    /// members: its coordinator asks this before it changes the share-partitions at their
    /// leaders.
    pub fn open_empty(&self, group_id: &str) -> Result<(), String> {
        let mut st = self.state.lock();
        let g = st.groups.entry(group_id.to_string()).or_insert_with(|| ShareGroup::new(group_id));
        match g.members.is_empty() {
            true => Ok(()),
            false => Err(format!("The share group {group_id} has members: stop them before changing its offsets.")),
        }
    }

    /// Starts share-partitions of a group afresh: at an offset (`Some`: AlterShareGroupOffsets,
    /// Kafka's InitializeShareGroupState), or forgotten (`None`: DeleteShareGroupOffsets,
    /// DeleteShareGroupState), so that the next fetch starts them from
    /// `share.auto.offset.reset`. What was in flight in them is dropped. Setting an offset
    /// creates the group if needed; forgetting creates nothing. Refused while the group has
    /// members here, as Kafka's. The change is written by the next [`Self::persist`].
    pub fn reset(&self, group_id: &str, parts: &[((Uuid, i32), Option<i64>)]) -> Result<(), String> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if st.groups.get(group_id).is_some_and(|g| !g.members.is_empty()) {
            return Err(format!("The share group {group_id} has members: stop them before changing its offsets."));
        }
        for &(tp, start) in parts {
            // What this broker holds of a partition it leads is what is kept of it (in shared
            // mode it loaded the store's rows first): one it holds nothing of has nothing to
            // forget.
            let changed = match start {
                Some(start) => {
                    let g = st.groups.entry(group_id.to_string()).or_insert_with(|| ShareGroup::new(group_id));
                    g.partitions.insert(tp, SharePartition::new(start));
                    true
                }
                None => st.groups.get_mut(group_id).is_some_and(|g| g.partitions.remove(&tp).is_some()),
            };
            if changed {
                st.dirty.insert((group_id.to_string(), tp.0, tp.1));
            }
        }
        Ok(())
    }

    fn release_locked(&self, st: &mut State, group_id: &str, member_id: &str) {
        let limits = self.limits(st.settings.get(group_id));
        if let Some(g) = st.groups.get_mut(group_id) {
            if g.release_member(member_id, &limits, &mut st.dirty) > 0 {
                self.released.notify_waiters();
            }
        }
    }

    /// Closes the sessions of departed members whose grace ran out, releasing what they hold.
    fn sweep_departed(&self, st: &mut State, now: Instant) {
        if st.departed.is_empty() {
            return;
        }
        let due: Vec<(String, String)> =
            st.departed.iter().filter(|(_, d)| **d <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            st.departed.remove(&key);
            st.sessions.remove(&key);
            self.release_locked(st, &key.0, &key.1);
        }
    }

    /// Removes members whose session timed out, releasing what they hold.
    fn expire_members(&self, st: &mut State, group_id: &str, now: Instant) {
        let limits = self.limits(st.settings.get(group_id));
        let Some(g) = st.groups.get_mut(group_id) else { return };
        let gone: Vec<String> =
            g.members.values().filter(|m| m.session_deadline <= now).map(|m| m.member_id.clone()).collect();
        if gone.is_empty() {
            return;
        }
        let mut released = 0;
        for m in &gone {
            tracing::info!(group = group_id, member = %m, "share group member's session timed out");
            g.members.remove(m);
            released += g.release_member(m, &limits, &mut st.dirty);
            st.sessions.remove(&(group_id.to_string(), m.clone()));
        }
        g.group_epoch += 1;
        if released > 0 {
            self.released.notify_waiters();
        }
    }

    /// One ShareGroupHeartbeat. `topic` gives the partition count of an existing topic.
    pub fn heartbeat(
        &self,
        group_id: &str,
        hb: ShareHeartbeat,
        topic: &dyn Fn(&str) -> Option<i32>,
        now: Instant,
    ) -> Result<ShareHeartbeatResult, HeartbeatError> {
        let invalid = |m: &str| Err(HeartbeatError::InvalidRequest(m.to_string()));
        if group_id.trim().is_empty() {
            return invalid("GroupId can't be empty.");
        }
        if hb.member_id.trim().is_empty() {
            return invalid("MemberId can't be empty.");
        }
        if hb.member_epoch < LEAVE_EPOCH {
            return invalid("MemberEpoch is invalid.");
        }
        if hb.member_epoch == 0 && hb.subscribed_topic_names.as_ref().is_none_or(|t| t.is_empty()) {
            return invalid("SubscribedTopicNames must be set in first request.");
        }
        let mut st = self.state.lock();
        let settings = st.settings.get(group_id).cloned();
        let session_timeout = settings
            .as_ref()
            .and_then(|s| s.session_timeout_ms)
            .map_or(self.cfg.session_timeout, Duration::from_millis);
        let interval = settings
            .as_ref()
            .and_then(|s| s.heartbeat_interval_ms)
            .map_or(self.cfg.heartbeat_interval, Duration::from_millis);
        self.expire_members(&mut st, group_id, now);
        self.sweep_departed(&mut st, now);
        let unknown = || {
            HeartbeatError::UnknownMemberId(format!(
                "Member {} is not a member of share group {group_id}.",
                hb.member_id
            ))
        };
        if hb.member_epoch == LEAVE_EPOCH {
            if let Some(g) = st.groups.get_mut(group_id) {
                if g.members.remove(&hb.member_id).is_some() {
                    g.group_epoch += 1;
                }
            }
            // What it holds is released when its session closes, or after the grace.
            let key = (group_id.to_string(), hb.member_id.clone());
            if st.sessions.contains_key(&key) {
                st.departed.insert(key, now + DEPARTURE_GRACE);
            } else {
                self.release_locked(&mut st, group_id, &hb.member_id);
            }
            return Ok(ShareHeartbeatResult {
                member_id: hb.member_id,
                member_epoch: LEAVE_EPOCH,
                heartbeat_interval_ms: 0,
                assignment: None,
            });
        }
        let g = if hb.member_epoch == 0 {
            st.groups.entry(group_id.to_string()).or_insert_with(|| ShareGroup::new(group_id))
        } else {
            st.groups.get_mut(group_id).ok_or_else(unknown)?
        };
        let joining = !g.members.contains_key(&hb.member_id);
        if joining {
            if hb.member_epoch != 0 {
                return Err(unknown());
            }
            if g.members.len() >= self.cfg.max_size {
                return Err(HeartbeatError::GroupMaxSizeReached(format!(
                    "The share group {group_id} has reached its maximum size of {} members.",
                    self.cfg.max_size
                )));
            }
            g.members.insert(
                hb.member_id.clone(),
                ShareMember {
                    member_id: hb.member_id.clone(),
                    member_epoch: 0,
                    rack_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    subscribed: BTreeSet::new(),
                    assignment: BTreeMap::new(),
                    session_deadline: now,
                },
            );
            g.group_epoch += 1;
        } else {
            let current = g.members[&hb.member_id].member_epoch;
            // Epoch 0 from a known member: it lost track and joins again with the same id.
            if hb.member_epoch != 0 && hb.member_epoch != current {
                return Err(HeartbeatError::FencedMemberEpoch(format!(
                    "The share group member has epoch {} but the request carries {}; rejoin with epoch 0.",
                    current, hb.member_epoch
                )));
            }
        }
        let m = g.members.get_mut(&hb.member_id).expect("present");
        m.session_deadline = now + session_timeout;
        m.rack_id = hb.rack_id.or(m.rack_id.take());
        m.client_id = hb.client_id;
        m.client_host = hb.client_host;
        let mut changed = false;
        if let Some(names) = hb.subscribed_topic_names {
            let names: BTreeSet<String> = names.into_iter().collect();
            if names != m.subscribed {
                m.subscribed = names;
                changed = true;
            }
        }
        if changed && !joining {
            g.group_epoch += 1;
        }
        // Topics created, deleted or grown since the assignment was computed.
        let topics: BTreeMap<String, i32> =
            g.subscribed().into_iter().filter_map(|t| topic(&t).map(|count| (t, count))).collect();
        if topics != g.topics {
            g.topics = topics;
            if !joining && !changed {
                g.group_epoch += 1;
            }
        }
        if g.assignment_epoch != g.group_epoch {
            g.assign();
        }
        let m = g.members.get_mut(&hb.member_id).expect("present");
        let tell = hb.member_epoch == 0 || m.member_epoch != g.assignment_epoch;
        m.member_epoch = g.assignment_epoch;
        Ok(ShareHeartbeatResult {
            member_id: hb.member_id,
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: i32::try_from(interval.as_millis()).unwrap_or(i32::MAX),
            assignment: tell.then(|| m.assignment.clone()),
        })
    }

    /// Opens, moves on or closes the share session of a ShareFetch or ShareAcknowledge
    /// (`fetching`: ShareFetch, which may open one) and returns the partitions it fetches.
    pub fn session(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
        fetching: bool,
        add: &[(Uuid, i32)],
        forget: &[(Uuid, i32)],
    ) -> Result<Vec<(Uuid, i32)>, SessionError> {
        let mut st = self.state.lock();
        self.sweep_departed(&mut st, Instant::now());
        let key = (group_id.to_string(), member_id.to_string());
        if epoch == 0 {
            if !fetching {
                return Err(SessionError::InvalidEpoch(
                    "A ShareAcknowledge cannot open a share session: send a ShareFetch with epoch 0 first.".into(),
                ));
            }
            if !st.sessions.contains_key(&key) && st.sessions.len() >= self.cfg.max_sessions {
                return Err(SessionError::LimitReached(format!(
                    "The broker already has {} share sessions, its limit.",
                    self.cfg.max_sessions
                )));
            }
            let partitions: BTreeSet<_> = add.iter().copied().collect();
            let out = partitions.iter().copied().collect();
            st.sessions.insert(key, Session { next_epoch: 1, partitions });
            return Ok(out);
        }
        let Some(session) = st.sessions.get_mut(&key) else {
            return Err(SessionError::NotFound(format!(
                "There is no share session for member {member_id} of group {group_id}: open one with epoch 0."
            )));
        };
        if epoch == LEAVE_EPOCH {
            let out = session.partitions.iter().copied().collect();
            st.sessions.remove(&key);
            st.departed.remove(&key);
            return Ok(out);
        }
        if epoch != session.next_epoch {
            return Err(SessionError::InvalidEpoch(format!(
                "The share session expects epoch {}, the request carries {epoch}.",
                session.next_epoch
            )));
        }
        session.next_epoch = if session.next_epoch == i32::MAX { 1 } else { session.next_epoch + 1 };
        session.partitions.extend(add.iter().copied());
        for f in forget {
            session.partitions.remove(f);
        }
        Ok(session.partitions.iter().copied().collect())
    }

    /// Releases what a member holds once its share session is closed.
    pub fn release_member(&self, group_id: &str, member_id: &str) {
        let mut st = self.state.lock();
        self.release_locked(&mut st, group_id, member_id);
    }

    /// [`plan_with`](Self::plan_with) for a log without timestamps to look up (`by_duration`
    /// then starts at the end): the tests' shorthand.
    #[cfg(test)]
    pub fn plan(&self, group_id: &str, tp: (Uuid, i32), log_start: i64, end: i64, now: Instant) -> Option<ReadPlan> {
        self.plan_with(group_id, tp, log_start, end, &|_| None, now)
    }

    /// Whether the group reads committed records only (`share.isolation.level`).
    pub fn read_committed(&self, group_id: &str) -> bool {
        self.state.lock().settings.get(group_id).and_then(|s| s.read_committed).unwrap_or(false)
    }

    /// Prepares a share-partition for a fetch: creates it where the group's
    /// `share.auto.offset.reset` says (`log_start`, `end`, or for `by_duration` what `since`
    /// finds: the first offset written at most that long ago), drops records the log no longer
    /// has, releases expired locks, and says where to read. `end` is where the group may read
    /// to: the high watermark, or the last stable offset for read_committed. `None`: the group
    /// does not exist.
    pub fn plan_with(
        &self,
        group_id: &str,
        tp: (Uuid, i32),
        log_start: i64,
        end: i64,
        since: &dyn Fn(Duration) -> Option<i64>,
        now: Instant,
    ) -> Option<ReadPlan> {
        let mut st = self.state.lock();
        self.sweep_departed(&mut st, now);
        let settings = st.settings.get(group_id).cloned();
        let limits = self.limits(settings.as_ref());
        let st = &mut *st;
        if matches!(self.keeping, Keeping::Cluster(_)) {
            // The partition's leader holds its share-partitions, whichever broker coordinates
            // the group; it starts none before it has loaded what the store holds.
            if !st.loaded.contains_key(&tp) {
                return None;
            }
            st.groups.entry(group_id.to_string()).or_insert_with(|| ShareGroup::new(group_id));
        }
        let g = st.groups.get_mut(group_id)?;
        let key = (group_id.to_string(), tp.0, tp.1);
        let sp = g.partitions.entry(tp).or_insert_with(|| {
            // Where it starts is kept at once: after a restart `latest` would be somewhere else.
            st.dirty.insert(key.clone());
            SharePartition::new(match settings.and_then(|s| s.auto_offset_reset).unwrap_or_default() {
                OffsetReset::Latest => end,
                OffsetReset::Earliest => log_start,
                OffsetReset::ByDuration(d) => since(d).map_or(end, |o| o.clamp(log_start, end)),
            })
        });
        let start = sp.start_offset();
        sp.truncate_to(log_start);
        let expired = sp.expire(now, &limits);
        if expired > 0 {
            self.released.notify_waiters();
        }
        if expired > 0 || sp.start_offset() != start {
            st.dirty.insert(key);
        }
        Some(ReadPlan { read_from: sp.read_from(), available: sp.has_available(end, &limits) })
    }

    /// The earliest acquisition lock deadline among the share-partitions, to wake a waiting
    /// fetch when a lock runs out.
    pub fn next_deadline(&self, group_id: &str, tps: &[(Uuid, i32)]) -> Option<Instant> {
        let st = self.state.lock();
        let g = st.groups.get(group_id)?;
        tps.iter().filter_map(|tp| g.partitions.get(tp)?.next_deadline()).min()
    }

    /// Acquires records of one share-partition for a member (see [`SharePartition::acquire`]).
    pub fn acquire(
        &self,
        group_id: &str,
        member_id: &str,
        tp: (Uuid, i32),
        batches: &[BatchSpan],
        max_records: usize,
        now: Instant,
    ) -> Vec<Acquired> {
        let mut st = self.state.lock();
        let st = &mut *st;
        let limits = self.limits(st.settings.get(group_id));
        let Some(sp) = st.groups.get_mut(group_id).and_then(|g| g.partitions.get_mut(&tp)) else {
            return Vec::new();
        };
        let (next, start) = (sp.next_offset(), sp.start_offset());
        let acquired = sp.acquire(member_id, batches, max_records, now, &limits);
        // Delivery counts went up (or control batches were passed over): kept, so that a
        // record which crashes its consumers cannot be delivered without end across restarts.
        if !acquired.is_empty() || sp.next_offset() != next || sp.start_offset() != start {
            st.dirty.insert((group_id.to_string(), tp.0, tp.1));
        }
        acquired
    }

    /// Applies a member's acknowledgement batches for one share-partition, in order; the
    /// first refused batch is the partition's error (the batches before it stay applied).
    pub fn acknowledge(
        &self,
        group_id: &str,
        member_id: &str,
        tp: (Uuid, i32),
        batches: &[(i64, i64, Vec<i8>)],
    ) -> Result<(), AckError> {
        let mut st = self.state.lock();
        let st = &mut *st;
        let limits = self.limits(st.settings.get(group_id));
        let Some(sp) = st.groups.get_mut(group_id).and_then(|g| g.partitions.get_mut(&tp)) else {
            return Err(AckError::InvalidRecordState(format!(
                "Share group {group_id} has delivered nothing from this partition to acknowledge."
            )));
        };
        let mut released = false;
        let mut result = Ok(());
        for (first, last, types) in batches {
            if let Err(e) = sp.acknowledge(member_id, *first, *last, types, &limits) {
                result = Err(e);
                break;
            }
            st.dirty.insert((group_id.to_string(), tp.0, tp.1));
            released |= types.contains(&partition::ACK_RELEASE);
        }
        if released {
            self.released.notify_waiters();
        }
        result
    }
}

/// Whether group `group_id` is a share group that may be deleted (it has no members).
fn deletable(st: &State, group_id: &str) -> Result<bool, DeleteError> {
    match st.groups.get(group_id) {
        None => Ok(false),
        Some(g) if !g.members.is_empty() => {
            Err(DeleteError::NotEmpty(format!("The share group {group_id} still has members.")))
        }
        Some(_) => Ok(true),
    }
}

/// Drops what this broker holds of partition `tp`'s share-partitions (shared mode: another
/// broker leads it, or leads it next).
fn forget_partition(st: &mut State, tp: (Uuid, i32)) {
    for g in st.groups.values_mut() {
        g.partitions.remove(&tp);
    }
    st.written.retain(|k, _| (k.1, k.2) != tp);
    st.dirty.retain(|k| (k.1, k.2) != tp);
    st.loaded.remove(&tp);
}

#[cfg(test)]
mod tests;
