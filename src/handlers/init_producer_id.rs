//! InitProducerId for idempotent producers: always a fresh producer id at epoch 0. Transactional
//! ids need the transaction coordinator, which gregor does not have yet.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::error;

use super::{Ctx, Reply};
use crate::handlers::error_codes::ResponseError;

pub async fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> Reply {
    let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.as_ref().is_some_and(|t| !t.0.is_empty()) {
        return ctx.reply(&resp.with_error_code(ResponseError::UnsupportedVersion.code()));
    }
    // Without a transactional id there is nothing to fence and nothing to resume: Kafka's
    // transaction coordinator (4.1, handleInitProducerId) hands out a fresh id at epoch 0 whatever
    // id and epoch the request carries. Bumping the carried id instead would let any client take
    // over another producer's id. An idempotent producer that re-initialises (KIP-360) simply
    // continues under its new id.
    match ctx.broker.producer_ids.next_id() {
        Ok(id) => ctx.reply(&resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(e) => {
            error!(error = %e, "cannot allocate a producer id block");
            ctx.reply(&resp.with_error_code(ResponseError::KafkaStorageError.code()))
        }
    }
}
