//! EndTxn: commit or abort the producer's transaction; from v5 (Transaction Version 2) with an
//! epoch bump per transaction. Answered once the markers are durable
//! in every partition of it (Kafka answers after the "prepare" record and writes the markers
//! afterwards; answering later costs the client a little latency and spares it the
//! CONCURRENT_TRANSACTIONS retries of its next transaction).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::auth::acl::{op, resource};
use crate::clock::now_ms;
use crate::handlers::common::reply_off_runtime;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: EndTxnRequest) -> Reply {
    let (broker, version) = (ctx.broker.clone(), ctx.version);
    if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, req.transactional_id.0.as_str()) {
        return ctx.reply(
            &EndTxnResponse::default()
                .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
    }
    if !ctx.coordinates_txns() {
        return ctx.reply(
            &EndTxnResponse::default()
                .with_error_code(ResponseError::NotCoordinator.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
    }
    reply_off_runtime(ctx, "EndTxn", move || {
        if version >= 5 {
            // Transaction Version 2: the transaction ends with a new epoch, which the client
            // carries on with.
            let result = broker.txns.end_txn_v2(
                req.transactional_id.0.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                req.committed,
                &broker.producer_ids,
                &broker.markers(),
                now_ms(),
            );
            let (id, epoch) = *result.as_ref().unwrap_or(&(-1, -1));
            return EndTxnResponse::default()
                .with_error_code(super::code(&result.map(drop), version, 2))
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch);
        }
        let result = broker.txns.end_txn(
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            &broker.markers(),
            now_ms(),
        );
        EndTxnResponse::default().with_error_code(super::code(&result, version, 2))
    })
    .await
}
