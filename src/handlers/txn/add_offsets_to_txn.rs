//! AddOffsetsToTxn: the group's offsets partition (`__consumer_offsets`, partition 0 here)
//! joins the producer's transaction, so that TxnOffsetCommit may write into it and EndTxn
//! writes its marker there too.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::auth::acl::{op, resource};
use crate::clock::now_ms;
use crate::group::OFFSETS_TOPIC;
use crate::handlers::common::reply_off_runtime;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: AddOffsetsToTxnRequest) -> Reply {
    let (broker, version) = (ctx.broker.clone(), ctx.version);
    // Kafka 4.1: WRITE on the transactional id, then READ on the group.
    let refused = if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, req.transactional_id.0.as_str()) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.allowed(op::READ, resource::GROUP, req.group_id.0.as_str()) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        (!ctx.coordinates_txns()).then_some(ResponseError::NotCoordinator)
    };
    if let Some(e) = refused {
        return ctx.reply(&AddOffsetsToTxnResponse::default().with_error_code(e.code()));
    }
    reply_off_runtime(ctx, "AddOffsetsToTxn", move || {
        let result = broker
            .txns
            .add_partitions(
                req.transactional_id.0.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                vec![(OFFSETS_TOPIC.to_string(), 0)],
                |_| true,
                now_ms(),
            )
            .map(|_| ());
        AddOffsetsToTxnResponse::default().with_error_code(super::code(&result, version, 2))
    })
    .await
}
