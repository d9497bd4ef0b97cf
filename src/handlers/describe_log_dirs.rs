//! DescribeLogDirs (v1–4): the one log directory, the size of each partition in it (all
//! partitions, internal ones included, or those asked for; unknown ones are left out, as Kafka
//! leaves them out), and (v4) the file system's total and usable bytes.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::common::{reply_off_runtime, str_bytes, topic_name};
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::broker::Broker;
use crate::handlers::error_codes::ResponseError;

pub async fn handle(ctx: &Ctx, req: DescribeLogDirsRequest) -> Reply {
    // Sizes and file system figures come from the disk: off the runtime.
    if !ctx.cluster_allows(op::DESCRIBE) {
        let mut resp = DescribeLogDirsResponse::default();
        if ctx.version >= 3 {
            resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        }
        return ctx.reply(&resp);
    }
    let broker = ctx.broker.clone();
    reply_off_runtime(ctx, "DescribeLogDirs", move || answer(&broker, req)).await
}

fn answer(broker: &Broker, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeMap<String, Vec<i32>>> =
        req.topics.map(|ts| ts.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect());
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for log in broker.logs.all() {
        let (topic, partition) = (&*log.tp.topic, log.tp.partition);
        if wanted.as_ref().is_some_and(|w| !w.get(topic).is_some_and(|ps| ps.contains(&partition))) {
            continue;
        }
        topics.entry(topic.to_string()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(partition)
                .with_partition_size(log.size_bytes() as i64)
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let root = broker.logs.root();
    let dir = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let (total, usable) = filesystem_bytes(&dir).unwrap_or((-1, -1));
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(&dir.to_string_lossy()))
        .with_total_bytes(total)
        .with_usable_bytes(usable)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
                })
                .collect(),
        );
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// Total and usable (available to this process) bytes of the file system holding `dir`.
fn filesystem_bytes(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs reads the NUL-terminated path and writes only into the struct we pass.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let unit = st.f_frsize as i64;
    Some((st.f_blocks as i64 * unit, st.f_bavail as i64 * unit))
}
