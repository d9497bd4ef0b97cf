//! Who is on the other end of a connection, and what they may do.
//!
//! Owns: the principal a connection authenticated as ([`Principal`]), the distinguished name of
//! a TLS client certificate as Java prints it ([`dn`]), Kafka's `ssl.principal.mapping.rules`
//! that turn that name into a user name ([`ssl_mapping`]), SASL authentication of a connection
//! — PLAIN, SCRAM-SHA-256/512 and KIP-368 re-authentication ([`sasl`]) — the ACL store and its
//! decisions ([`acl`]), SCRAM credentials ([`scram`]) and client quotas ([`quota`]), and where
//! those three keep their records ([`kept`]).
//!
//! On a SASL listener the principal is `User:<SASL name>` once the client authenticated (on
//! SASL_SSL too, not the certificate's), and may be renewed by re-authentication, never
//! changed. The session carries it and copies it into each request's `Ctx`.
//!
//! Handlers ask the authorizer through `handlers::authz`, whose table says which operation each
//! API needs.

pub mod acl;
pub mod dn;
pub mod kept;
pub mod quota;
pub mod sasl;
pub mod scram;
pub mod ssl_mapping;

use std::fmt;

/// A Kafka principal: a type and a name, printed `User:alice` as Kafka prints it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// Kafka's principal type; `User` for everything gregor authenticates.
    pub kind: &'static str,
    pub name: String,
}

impl Principal {
    /// The principal of a connection that proved nothing: plaintext listeners, and TLS clients
    /// without a certificate (as Kafka's default principal builder does).
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    pub fn user(name: impl Into<String>) -> Self {
        Self { kind: "User", name: name.into() }
    }

    pub fn is_anonymous(&self) -> bool {
        self.kind == "User" && self.name == "ANONYMOUS"
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}
