//! Handlers of the transaction APIs. The coordinator logic lives in `crate::txn` (and, for
//! offsets committed in transactions, `crate::group`); these files translate requests and
//! responses.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod list_transactions;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use crate::handlers::error_codes::txn_code;
use crate::txn::TxnError;

/// 0 for success, else the code of the error at this request version; PRODUCER_FENCED exists
/// from `fenced_from` on (KIP-588), older requests get INVALID_PRODUCER_EPOCH.
pub(crate) fn code(r: &Result<(), TxnError>, version: i16, fenced_from: i16) -> i16 {
    r.as_ref().err().map_or(0, |e| txn_code(e, version, fenced_from).code())
}
