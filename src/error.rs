//! The one mapping from domain errors to Kafka error codes.
//!
//! Every domain error type implements [`ToKafkaCode`] with an exhaustive `match` (no `_ =>` arm),
//! so adding a variant forces a decision about the code clients will see.

pub use kafka_protocol::error::ResponseError;

pub trait ToKafkaCode {
    fn kafka_code(&self) -> ResponseError;
}
