//! ListTransactions: the transactional ids this coordinator knows, filtered by state, producer
//! id, (v1) how long the transaction has been running and (v2, KIP-1152) a regular expression
//! the whole transactional id must match. Unknown state names are reported back, as Kafka does,
//! and match nothing; an invalid expression is INVALID_REGULAR_EXPRESSION. The expression is
//! read with RE2 syntax, as KIP-848's regex subscriptions are (see `topic_regex`); Kafka 4.1
//! compiles it with Java's `Pattern`, whose extras (backreferences, lookaround) are refused here.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};

use crate::auth::acl::{op, resource};
use crate::clock::now_ms;
use crate::group::consumer::topic_regex::TopicRegex;
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};
use crate::txn::state::TxnState;

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub async fn handle(ctx: &Ctx, req: ListTransactionsRequest) -> Reply {
    let unknown: Vec<_> =
        req.state_filters.iter().filter(|f| !STATES.iter().any(|s| s.name() == f.as_str())).cloned().collect();
    let now = now_ms();
    // v2: null or empty is no filter.
    let pattern = match req.transactional_id_pattern.as_deref().filter(|p| !p.is_empty()).map(TopicRegex::compile) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(why)) => {
            let message = format!("The transactional id pattern is not a valid regular expression: {why}.");
            tracing::debug!(%message, "ListTransactions refused");
            return ctx.reply(
                &ListTransactionsResponse::default().with_error_code(ResponseError::InvalidRegularExpression.code()),
            );
        }
    };
    // A broker lists the transactional ids it coordinates: in shared mode, none unless it leads
    // `__transaction_state`.
    let coordinated = if ctx.coordinates_txns() { ctx.broker.txns.list() } else { Vec::new() };
    let states = coordinated
        .into_iter()
        .filter(|t| req.state_filters.is_empty() || req.state_filters.iter().any(|f| f.as_str() == t.state.name()))
        .filter(|t| req.producer_id_filters.is_empty() || req.producer_id_filters.contains(&ProducerId(t.producer_id)))
        // v1: only transactions running longer than this many ms (-1: no filter).
        // Kafka 4.1: only the transactional ids the principal may DESCRIBE.
        .filter(|t| ctx.allowed(op::DESCRIBE, resource::TRANSACTIONAL_ID, &t.transactional_id))
        .filter(|t| req.duration_filter < 0 || (t.start_ms >= 0 && now - t.start_ms > req.duration_filter))
        .filter(|t| pattern.as_ref().is_none_or(|p| p.matches(&t.transactional_id)))
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(&t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(t.state.name().into())
        })
        .collect();
    ctx.reply(&ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(states))
}
