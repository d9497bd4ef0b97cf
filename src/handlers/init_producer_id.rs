//! InitProducerId: for idempotent producers a fresh producer id at epoch 0; with a
//! transactional id, the transaction coordinator's id at its next epoch (fencing older
//! producers of the id, aborting the transaction they left open).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::error;

use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::clock::now_ms;
use crate::handlers::error_codes::{txn_code, ResponseError};

pub async fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> Reply {
    let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if let Some(tid) = req.transactional_id.as_ref().filter(|t| !t.0.is_empty()) {
        if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, tid.0.as_str()) {
            return ctx.reply(&resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()));
        }
        if !ctx.coordinates_txns() {
            return ctx.reply(&resp.with_error_code(ResponseError::NotCoordinator.code()));
        }
        let (broker, tid, version) = (ctx.broker.clone(), tid.0.to_string(), ctx.version);
        let expected =
            (req.producer_id.0 >= 0 && req.producer_epoch >= 0).then_some((req.producer_id.0, req.producer_epoch));
        let timeout = req.transaction_timeout_ms;
        return super::common::reply_off_runtime(ctx, "InitProducerId", move || {
            match broker.txns.init_producer(&tid, timeout, expected, &broker.producer_ids, &broker.markers(), now_ms())
            {
                Ok((id, epoch)) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(epoch),
                // PRODUCER_FENCED from v4 (KIP-588).
                Err(e) => resp.with_error_code(txn_code(&e, version, 4).code()),
            }
        })
        .await;
    }
    // Without a transactional id there is nothing to fence and nothing to resume: Kafka's
    // transaction coordinator (4.1, handleInitProducerId) hands out a fresh id at epoch 0 whatever
    // id and epoch the request carries. Bumping the carried id instead would let any client take
    // over another producer's id. An idempotent producer that re-initialises (KIP-360) simply
    // continues under its new id.
    // Kafka 4.1: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some
    // topic (KIP-679).
    if !ctx.cluster_allows(op::IDEMPOTENT_WRITE) && !ctx.allowed_on_some(op::WRITE, resource::TOPIC) {
        return ctx.reply(&resp.with_error_code(ResponseError::ClusterAuthorizationFailed.code()));
    }
    // Off the runtime: a new block of ids may have to be written to disk or taken from the
    // shared-mode store.
    let broker = ctx.broker.clone();
    super::common::reply_off_runtime(ctx, "InitProducerId", move || match broker.producer_ids.next_id() {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            error!(error = %e, "cannot allocate a producer id block");
            resp.with_error_code(ResponseError::KafkaStorageError.code())
        }
    })
    .await
}
