//! A member of a classic group, as the coordinator sees it.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{GroupError, JoinResult, SyncResult};

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (protocol name, opaque metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// What the leader assigned to this member in the last SyncGroup.
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    /// Set while the member waits in JoinGroup for the rebalance to complete.
    pub awaiting_join: Option<oneshot::Sender<Result<JoinResult, GroupError>>>,
    /// Set while the member waits in SyncGroup for the leader's assignment.
    pub awaiting_sync: Option<oneshot::Sender<Result<SyncResult, GroupError>>>,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    pub fn session_expired(&self, now: Instant) -> bool {
        now >= self.last_heartbeat + self.session_timeout
    }
}
