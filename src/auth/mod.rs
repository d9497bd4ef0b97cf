//! Who is on the other end of a connection, and what they may do.
//!
//! Owns: the principal a connection authenticated as ([`Principal`]), the distinguished name of
//! a TLS client certificate as Java prints it ([`dn`]), Kafka's `ssl.principal.mapping.rules`
//! that turn that name into a user name ([`ssl_mapping`]), SASL authentication of a connection
//! — PLAIN, SCRAM-SHA-256/512 and KIP-368 re-authentication ([`sasl`]) — the ACL store and its
//! decisions ([`acl`]), SCRAM credentials ([`scram`]) and client quotas ([`quota`]).
//!
//! On a SASL listener the principal is `User:<SASL name>` once the client authenticated (on
//! SASL_SSL too, not the certificate's), and may be renewed by re-authentication, never
//! changed. The session carries it and copies it into each request's `Ctx`.
//!
//! Handlers ask the authorizer through `handlers::authz`, whose table says which operation each
//! API needs.

pub mod acl;
pub mod dn;
pub mod quota;
pub mod sasl;
pub mod scram;
pub mod ssl_mapping;

/// The records of a small store kept as one JSON object per line (the ACLs, the SCRAM
/// credentials); a missing file is an empty store, an unreadable line an error naming it.
fn read_json_lines<T: serde::de::DeserializeOwned>(file: &std::path::Path) -> std::io::Result<Vec<T>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let bad = |i: usize, e: serde_json::Error| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}:{}: {e}", file.display(), i + 1))
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(i, e)))
        .collect()
}

/// Replaces `file` with `records`, one JSON object per line, atomically and durably.
fn write_json_lines<T: serde::Serialize>(
    file: &std::path::Path,
    records: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(&r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    crate::metadata::write_atomically(dir, file, text.as_bytes())
}

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
