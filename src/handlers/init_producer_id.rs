//! InitProducerId for idempotent producers: a fresh producer id at epoch 0, or (KIP-360) the
//! same id with the next epoch when the client asks to bump it. Transactional ids need the
//! transaction coordinator, which gregor does not have yet.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::error;

use super::{Ctx, Reply};
use crate::error::ResponseError;

pub async fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> Reply {
    let resp = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.as_ref().is_some_and(|t| !t.0.is_empty()) {
        return ctx.reply(&resp.with_error_code(ResponseError::UnsupportedVersion.code()));
    }
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return ctx.reply(&resp.with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch + 1));
    }
    match ctx.broker.producer_ids.next_id() {
        Ok(id) => ctx.reply(&resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(e) => {
            error!(error = %e, "cannot allocate a producer id block");
            ctx.reply(&resp.with_error_code(ResponseError::KafkaStorageError.code()))
        }
    }
}
