//! Fetch: whole batches straight from segment bytes, with an event-driven long poll.
//!
//! The first read happens at once. If it has fewer than `min_bytes` and `max_wait_ms` allows,
//! the reply is deferred: the waiting future registers with every fetched partition, which wakes
//! it on append, and re-reads until enough data arrived or the deadline passed. Only the
//! connection's writer awaits it, so other requests on the connection keep being read and
//! handled, and their replies wait their turn (responses leave in request order).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::common::leader_epoch_error;
use super::{encode, Ctx, Reply};
use crate::error::{ResponseError, ToKafkaCode};
use crate::log::PartitionLog;

struct PartPlan {
    index: i32,
    fetch_offset: i64,
    max_bytes: usize,
    log: Result<Arc<PartitionLog>, ResponseError>,
}

struct TopicPlan {
    name: TopicName,
    topic_id: Uuid,
    partitions: Vec<PartPlan>,
}

struct Plan {
    version: i16,
    max_bytes: usize,
    read_committed: bool,
    topics: Vec<TopicPlan>,
}

pub async fn handle(ctx: &Ctx, req: FetchRequest) -> Reply {
    let v = ctx.version;
    if v >= 7 && req.session_epoch > 0 {
        // gregor never hands out fetch sessions, so no incremental fetch can refer to one.
        let mut resp = FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
        resp.session_id = 0;
        return ctx.reply(&resp);
    }
    let broker = &ctx.broker;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let meta =
                if v >= 13 { broker.topics.get_by_id(&t.topic_id) } else { broker.topics.get(t.topic.0.as_str()) };
            let missing = if v >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let log =
                        meta.as_ref().and_then(|m| broker.partition(&m.name, p.partition)).ok_or(missing).and_then(
                            |log| match leader_epoch_error(p.current_leader_epoch) {
                                None => Ok(log),
                                Some(e) => Err(e),
                            },
                        );
                    PartPlan {
                        index: p.partition,
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes.max(0) as usize,
                        log,
                    }
                })
                .collect();
            TopicPlan { name: t.topic, topic_id: t.topic_id, partitions }
        })
        .collect();
    let plan =
        Plan { version: v, max_bytes: req.max_bytes.max(0) as usize, read_committed: req.isolation_level == 1, topics };
    let min_bytes = req.min_bytes.max(0) as usize;
    let (resp, bytes, errors) = plan.read();
    if bytes >= min_bytes.max(1) || errors || req.max_wait_ms <= 0 {
        return ctx.reply(&resp);
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms as u64);
    let (correlation_id, version) = (ctx.correlation_id, v);
    Reply::Deferred(Box::pin(async move {
        let notify = Arc::new(Notify::new());
        loop {
            for log in plan.logs() {
                log.register_waiter(&notify);
            }
            let (resp, bytes, errors) = plan.read();
            if bytes >= min_bytes.max(1) || errors || Instant::now() >= deadline {
                return encode(correlation_id, version, &resp);
            }
            if tokio::time::timeout_at(deadline, notify.notified()).await.is_err() {
                let (resp, _, _) = plan.read();
                return encode(correlation_id, version, &resp);
            }
        }
    }))
}

impl Plan {
    fn logs(&self) -> impl Iterator<Item = &Arc<PartitionLog>> {
        self.topics.iter().flat_map(|t| t.partitions.iter().filter_map(|p| p.log.as_ref().ok()))
    }

    /// Builds the response from the logs' current state: (response, record bytes, any error).
    fn read(&self) -> (FetchResponse, usize, bool) {
        let v = self.version;
        let mut total = 0usize;
        let mut any_error = false;
        let mut responses = Vec::with_capacity(self.topics.len());
        for t in &self.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let mut data = PartitionData::default().with_partition_index(p.index).with_high_watermark(-1);
                data.aborted_transactions = (v >= 4 && self.read_committed).then(Vec::new);
                match &p.log {
                    Err(code) => {
                        any_error = true;
                        data.error_code = code.code();
                    }
                    Ok(log) => {
                        let budget = self.max_bytes.saturating_sub(total).min(p.max_bytes);
                        let min_one = total == 0;
                        match log.read(p.fetch_offset, budget, min_one) {
                            Ok(r) => {
                                total += r.records.len();
                                data.high_watermark = r.high_watermark;
                                data.last_stable_offset = r.high_watermark;
                                if v >= 5 {
                                    data.log_start_offset = r.log_start_offset;
                                }
                                data.records = Some(r.records);
                            }
                            Err(e) => {
                                any_error = true;
                                data.error_code = e.kafka_code().code();
                                let o = log.offsets();
                                data.high_watermark = o.high_watermark;
                                data.last_stable_offset = o.high_watermark;
                                if v >= 5 {
                                    data.log_start_offset = o.log_start_offset;
                                }
                            }
                        }
                    }
                }
                partitions.push(data);
            }
            let mut topic = FetchableTopicResponse::default().with_partitions(partitions);
            if v >= 13 {
                topic.topic_id = t.topic_id;
            } else {
                topic.topic = t.name.clone();
            }
            responses.push(topic);
        }
        (FetchResponse::default().with_responses(responses), total, any_error)
    }
}
