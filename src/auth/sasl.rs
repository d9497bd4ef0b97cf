//! SASL authentication of one connection: the state a SASL listener keeps per connection
//! ([`Authenticator`]) and the mechanisms' exchanges — PLAIN (RFC 4616) and SCRAM-SHA-256/512
//! (RFC 5802/7677) checked against the broker's [`ScramStore`], and OAUTHBEARER (RFC 7628,
//! [`oauthbearer`]) checked against the configured keys.
//!
//! The states and their answers follow Kafka 4.1's SaslServerAuthenticator and, after
//! authentication, its SocketServer and KafkaChannel (KIP-368 re-authentication):
//! - before the handshake only ApiVersions (once) and SaslHandshake are served; anything else
//!   closes the connection without an answer;
//! - during the exchange only SaslAuthenticate is; a second SaslHandshake is answered
//!   ILLEGAL_SASL_STATE and closes, anything else closes;
//! - an unsupported mechanism is answered UNSUPPORTED_SASL_MECHANISM with the enabled list,
//!   a failed exchange SASL_AUTHENTICATION_FAILED, both after the configured delay, then close;
//! - once authenticated with a session lifetime, a SaslHandshake (at most one a second) starts
//!   a re-authentication, which must keep the mechanism and the principal; any other request
//!   after the session expired closes the connection.
//!
//! Failures never say which part was wrong. An unknown SCRAM user gets a salt and iteration
//! count like a real one and fails at the proof, like a wrong password (Kafka fails it at the
//! first message, which tells the two apart). Nothing here logs a password or a proof.
//! Time is a parameter (`now`), so tests step it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::scram::{self, Credential, ScramStore};
use super::Principal;
use crate::config::{SaslMechanism, SaslSettings, Secret};

pub mod oauthbearer;

/// Kafka refuses a re-authentication less than a second after the last one began.
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// The kind of request a SASL listener's connection sent, as far as authentication cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    ApiVersions,
    SaslHandshake,
    SaslAuthenticate,
    Other,
}

/// What to do with a request, decided before it is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Serve it as on any listener (registry and handler).
    Serve,
    /// A SaslHandshake the authenticator handles ([`Authenticator::handshake`]).
    Handshake,
    /// A SaslAuthenticate the authenticator handles ([`Authenticator::authenticate`]).
    Authenticate,
    /// A SaslHandshake in the middle of an exchange: answer ILLEGAL_SASL_STATE, then close.
    IllegalHandshake,
    /// Close the connection without an answer, for this reason (logged, not sent).
    Close(String),
}

/// The answer to a SaslHandshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    Accepted,
    /// Answer UNSUPPORTED_SASL_MECHANISM after the failure delay, then close.
    Unsupported,
}

/// The answer to a SaslAuthenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticate {
    /// More of the exchange: these bytes to the client.
    Continue(Vec<u8>),
    /// Authenticated (or re-authenticated) as `principal`; the session lasts
    /// `session_lifetime_ms` (0: no limit).
    Done { reply: Vec<u8>, principal: Principal, session_lifetime_ms: i64 },
    /// SASL_AUTHENTICATION_FAILED with this message, after the failure delay; then close.
    Failed(String),
}

/// A completed authentication.
#[derive(Debug, Clone)]
struct Established {
    mechanism: SaslMechanism,
    principal: Principal,
    expires: Option<Instant>,
    last_reauth_start: Option<Instant>,
}

#[derive(Debug)]
enum Phase {
    Start,
    /// ApiVersions answered; a handshake must follow.
    VersionsSeen,
    Exchanging {
        mechanism: SaslMechanism,
        exchange: Exchange,
        previous: Option<Established>,
    },
    /// A re-authentication asked for another mechanism: its SaslAuthenticate fails.
    ReauthBadMechanism {
        message: String,
    },
    Authenticated(Established),
}

/// One connection's SASL state.
#[derive(Debug)]
pub struct Authenticator {
    settings: Arc<SaslSettings>,
    phase: Phase,
}

impl Authenticator {
    pub fn new(settings: Arc<SaslSettings>) -> Self {
        Self { settings, phase: Phase::Start }
    }

    pub fn settings(&self) -> &SaslSettings {
        &self.settings
    }

    /// How long to wait before answering a failure.
    pub fn failure_delay(&self) -> Duration {
        Duration::from_millis(self.settings.failed_authentication_delay_ms)
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Authenticated(_))
    }

    /// What to do with a request of `kind` arriving at `now`.
    pub fn admit(&mut self, kind: RequestKind, now: Instant) -> Admit {
        use RequestKind::*;
        match (&self.phase, kind) {
            (Phase::Start, ApiVersions) => {
                self.phase = Phase::VersionsSeen;
                Admit::Serve
            }
            (Phase::Start | Phase::VersionsSeen, SaslHandshake) => Admit::Handshake,
            (Phase::VersionsSeen, ApiVersions) => Admit::Close("a second ApiVersions before the SASL handshake".into()),
            (Phase::Start | Phase::VersionsSeen, _) => {
                Admit::Close(format!("{kind:?} request before the SASL handshake (the client must authenticate)"))
            }
            (Phase::Exchanging { .. }, SaslAuthenticate) | (Phase::ReauthBadMechanism { .. }, SaslAuthenticate) => {
                Admit::Authenticate
            }
            (Phase::Exchanging { .. }, SaslHandshake) => Admit::IllegalHandshake,
            (Phase::Exchanging { .. } | Phase::ReauthBadMechanism { .. }, _) => {
                Admit::Close(format!("{kind:?} request during SASL authentication"))
            }
            (Phase::Authenticated(est), kind) => {
                let can_reauth = est.expires.is_some()
                    && est.last_reauth_start.is_none_or(|t| now.saturating_duration_since(t) >= MIN_REAUTH_INTERVAL);
                if kind == SaslHandshake && can_reauth {
                    return Admit::Handshake;
                }
                match est.expires {
                    Some(expires) if now >= expires => Admit::Close(format!(
                        "the SASL session of {} expired and the client sent {kind:?} instead of re-authenticating",
                        est.principal
                    )),
                    _ => Admit::Serve,
                }
            }
        }
    }

    /// Handles a SaslHandshake that [`Authenticator::admit`] gave to the authenticator.
    pub fn handshake(&mut self, mechanism: &str, now: Instant) -> Handshake {
        let enabled = SaslMechanism::from_kafka_name(mechanism).filter(|m| self.settings.mechanisms.contains(m));
        let previous = match std::mem::replace(&mut self.phase, Phase::Start) {
            Phase::Authenticated(mut est) => {
                est.last_reauth_start = Some(now);
                Some(est)
            }
            _ => None,
        };
        let Some(mech) = enabled else {
            return Handshake::Unsupported;
        };
        self.phase = match previous {
            Some(prev) if prev.mechanism != mech => Phase::ReauthBadMechanism {
                message: format!(
                    "SASL mechanism '{}' requested by client is not supported for re-authentication of mechanism '{}'",
                    mech.kafka_name(),
                    prev.mechanism.kafka_name()
                ),
            },
            previous => Phase::Exchanging { mechanism: mech, exchange: Exchange::new(mech, &self.settings), previous },
        };
        Handshake::Accepted
    }

    /// Handles a SaslAuthenticate that [`Authenticator::admit`] gave to the authenticator.
    pub fn authenticate(&mut self, token: &[u8], store: &ScramStore, now: Instant) -> Authenticate {
        self.authenticate_at(token, store, now, SystemTime::now())
    }

    /// [`Authenticator::authenticate`] with the wall clock (`wall`) as a parameter too: token
    /// lifetimes are wall-clock times.
    pub fn authenticate_at(
        &mut self,
        token: &[u8],
        store: &ScramStore,
        now: Instant,
        wall: SystemTime,
    ) -> Authenticate {
        let wall_ms =
            wall.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let phase = std::mem::replace(&mut self.phase, Phase::Start);
        let (mechanism, mut exchange, previous) = match phase {
            Phase::Exchanging { mechanism, exchange, previous } => (mechanism, exchange, previous),
            Phase::ReauthBadMechanism { message } => return Authenticate::Failed(message),
            other => {
                self.phase = other;
                return Authenticate::Failed("SaslAuthenticate outside a SASL exchange".into());
            }
        };
        let during = if previous.is_some() { "re-authentication" } else { "authentication" };
        match exchange.step(token, &self.settings.plain_users, store, wall_ms) {
            Step::Continue(reply) => {
                self.phase = Phase::Exchanging { mechanism, exchange, previous };
                Authenticate::Continue(reply)
            }
            Step::Fail(Failure::Said(message)) => Authenticate::Failed(message),
            Step::Fail(Failure::TokenRefused(json)) => Authenticate::Failed(format!(
                "Authentication failed during {during} with SASL mechanism {}: the token was refused ({json})",
                mechanism.kafka_name()
            )),
            Step::Fail(Failure::Credentials) => Authenticate::Failed(format!(
                "Authentication failed during {during} due to invalid credentials with SASL mechanism {}",
                mechanism.kafka_name()
            )),
            Step::Done { user, reply, expires_ms } => {
                let principal = Principal::user(user);
                if let Some(prev) = &previous {
                    if prev.principal != principal {
                        return Authenticate::Failed(format!(
                            "Cannot change principals during re-authentication from {}.{}: {}.{}",
                            prev.principal.kind, prev.principal.name, principal.kind, principal.name
                        ));
                    }
                }
                // PLAIN and SCRAM credentials have no lifetime of their own: the session is
                // bounded by connections.max.reauth.ms alone. A token's session ends when the
                // token does, or earlier if connections.max.reauth.ms says so (as Kafka does);
                // a token still accepted thanks to the clock skew gets 1 ms, not "no limit".
                let max_reauth_ms = self.settings.reauth_ms.get(&mechanism).copied().unwrap_or(0);
                let lifetime_ms = match expires_ms {
                    None => max_reauth_ms,
                    Some(expires) => {
                        let left = u64::try_from(expires.saturating_sub(wall_ms)).unwrap_or(0).max(1);
                        if max_reauth_ms > 0 {
                            left.min(max_reauth_ms)
                        } else {
                            left
                        }
                    }
                };
                let expires = (lifetime_ms > 0).then(|| now + Duration::from_millis(lifetime_ms));
                let last_reauth_start = previous.and_then(|p| p.last_reauth_start);
                self.phase = Phase::Authenticated(Established {
                    mechanism,
                    principal: principal.clone(),
                    expires,
                    last_reauth_start,
                });
                Authenticate::Done {
                    reply,
                    principal,
                    session_lifetime_ms: i64::try_from(lifetime_ms).unwrap_or(i64::MAX),
                }
            }
        }
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Sent as is (PLAIN's messages, as Kafka's PlainSaslServer words them).
    Said(String),
    /// The generic message: nothing about which part was wrong.
    Credentials,
    /// OAUTHBEARER: the token was refused with this RFC 7628 error, which the client
    /// acknowledged.
    TokenRefused(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Continue(Vec<u8>),
    /// Authenticated as `user`; `expires_ms` (since the epoch) is when the credential ends.
    Done {
        user: String,
        reply: Vec<u8>,
        expires_ms: Option<i64>,
    },
    Fail(Failure),
}

/// One mechanism's exchange in progress.
#[derive(Debug)]
enum Exchange {
    Plain,
    Scram(Box<ScramExchange>),
    OAuthBearer(oauthbearer::OAuthBearerExchange),
}

impl Exchange {
    fn new(mechanism: SaslMechanism, settings: &SaslSettings) -> Self {
        match mechanism {
            SaslMechanism::Plain => Self::Plain,
            SaslMechanism::ScramSha256 => Self::Scram(Box::new(ScramExchange::new(scram::SCRAM_SHA_256))),
            SaslMechanism::ScramSha512 => Self::Scram(Box::new(ScramExchange::new(scram::SCRAM_SHA_512))),
            SaslMechanism::OAuthBearer => {
                Self::OAuthBearer(oauthbearer::OAuthBearerExchange::new(settings.oauthbearer.clone()))
            }
        }
    }

    fn step(&mut self, token: &[u8], plain_users: &HashMap<String, Secret>, store: &ScramStore, wall_ms: i64) -> Step {
        match self {
            Self::Plain => match check_plain(token, plain_users) {
                Ok(user) => Step::Done { user, reply: Vec::new(), expires_ms: None },
                Err(message) => Step::Fail(Failure::Said(message)),
            },
            Self::Scram(s) => s.step(token, |user, mech| store.get(user, mech)),
            Self::OAuthBearer(o) => o.step(token, wall_ms),
        }
    }
}

/// Checks a PLAIN message (`authzid NUL authcid NUL passwd`); the user name, or Kafka's message.
pub fn check_plain(token: &[u8], users: &HashMap<String, Secret>) -> Result<String, String> {
    let text = std::str::from_utf8(token).map_err(|_| "Invalid SASL/PLAIN response: not UTF-8".to_string())?;
    let parts: Vec<&str> = text.split('\0').collect();
    let [authzid, user, password] = parts[..] else {
        return Err(format!("Invalid SASL/PLAIN response: expected 3 tokens, got {}", parts.len()));
    };
    if user.is_empty() {
        return Err("Authentication failed: username not specified".into());
    }
    if password.is_empty() {
        return Err("Authentication failed: password not specified".into());
    }
    if !authzid.is_empty() && authzid != user {
        return Err(
            "Authentication failed: Client requested an authorization id that is different from username".into()
        );
    }
    // Compared whether or not the user exists, so the time taken does not tell.
    let expected = users.get(user).map_or("\u{0}unknown user\u{0}", |s| s.0.as_str());
    if constant_time_eq(expected.as_bytes(), password.as_bytes()) && users.contains_key(user) {
        Ok(user.to_string())
    } else {
        Err("Authentication failed: Invalid username or password".into())
    }
}

/// Equality whose time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A SCRAM exchange (RFC 5802), server side.
#[derive(Debug)]
pub struct ScramExchange {
    mechanism: i8,
    state: ScramState,
}

#[derive(Debug)]
enum ScramState {
    AwaitClientFirst,
    AwaitClientFinal(Box<AwaitingFinal>),
    Finished,
}

/// What the server-first message committed to, for checking the client-final one.
#[derive(Debug)]
struct AwaitingFinal {
    user: String,
    /// Whether `credential` is made up for an unknown user: the proof then fails.
    known: bool,
    credential: Credential,
    gs2_header: String,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl ScramExchange {
    pub fn new(mechanism: i8) -> Self {
        Self { mechanism, state: ScramState::AwaitClientFirst }
    }

    fn step(&mut self, token: &[u8], lookup: impl Fn(&str, i8) -> Option<Credential>) -> Step {
        match std::mem::replace(&mut self.state, ScramState::Finished) {
            ScramState::AwaitClientFirst => {
                let Some(first) = parse_client_first(token) else {
                    return Step::Fail(Failure::Credentials);
                };
                let (known, credential) = match lookup(&first.user, self.mechanism) {
                    Some(c) => (true, c),
                    None => (false, stand_in_credential(&first.user, self.mechanism)),
                };
                let nonce = format!("{}{}", first.nonce, scram::nonce());
                let server_first = format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
                let reply = server_first.clone().into_bytes();
                self.state = ScramState::AwaitClientFinal(Box::new(AwaitingFinal {
                    user: first.user,
                    known,
                    credential,
                    gs2_header: first.gs2_header,
                    nonce,
                    client_first_bare: first.bare,
                    server_first,
                }));
                Step::Continue(reply)
            }
            ScramState::AwaitClientFinal(awaiting) => {
                let AwaitingFinal { user, known, credential, gs2_header, nonce, client_first_bare, server_first } =
                    *awaiting;
                let Some(fin) = parse_client_final(token) else {
                    return Step::Fail(Failure::Credentials);
                };
                if fin.channel_binding != B64.encode(gs2_header.as_bytes()) || fin.nonce != nonce {
                    return Step::Fail(Failure::Credentials);
                }
                let auth_message = format!("{client_first_bare},{server_first},{}", fin.without_proof);
                let signature = scram::hmac(self.mechanism, &credential.stored_key, auth_message.as_bytes());
                if fin.proof.len() != signature.len() {
                    return Step::Fail(Failure::Credentials);
                }
                let client_key: Vec<u8> = fin.proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
                let matches = constant_time_eq(&scram::hash(self.mechanism, &client_key), &credential.stored_key);
                if !(matches && known) {
                    return Step::Fail(Failure::Credentials);
                }
                let server_signature = scram::hmac(self.mechanism, &credential.server_key, auth_message.as_bytes());
                Step::Done { user, reply: format!("v={}", B64.encode(server_signature)).into_bytes(), expires_ms: None }
            }
            ScramState::Finished => Step::Fail(Failure::Credentials),
        }
    }
}

/// A parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientFirst {
    /// Everything before the bare message (`n,,` or `n,a=name,`), which `c=` must echo.
    gs2_header: String,
    bare: String,
    user: String,
    nonce: String,
}

/// Parses `gs2-header client-first-bare`. Channel binding is not offered: the flag must be
/// `n` (or `y`, a client that could bind but thinks the server cannot); an authorization id
/// must name the user itself; the only extension Kafka knows, `tokenauth`, asks for delegation
/// tokens, which gregor does not serve.
fn parse_client_first(token: &[u8]) -> Option<ClientFirst> {
    let text = std::str::from_utf8(token).ok()?;
    let rest = text.strip_prefix("n,").or_else(|| text.strip_prefix("y,"))?;
    let (authzid, bare) = rest.split_once(',')?;
    let authzid = match authzid {
        "" => None,
        a => Some(decode_sasl_name(a.strip_prefix("a=")?)?),
    };
    let gs2_header = text[..text.len() - bare.len()].to_string();
    let mut attrs = bare.split(',');
    let user = decode_sasl_name(attrs.next()?.strip_prefix("n=")?)?;
    let nonce = attrs.next()?.strip_prefix("r=")?.to_string();
    if user.is_empty() || nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
        return None;
    }
    for ext in attrs {
        let (key, value) = ext.split_once('=')?;
        if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
            return None;
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
    }
    if authzid.is_some_and(|a| a != user) {
        return None;
    }
    Some(ClientFirst { gs2_header, bare: bare.to_string(), user, nonce })
}

/// `=2C` and `=3D` stand for `,` and `=`; any other `=` is malformed.
fn decode_sasl_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// A parsed client-final message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientFinal {
    channel_binding: String,
    nonce: String,
    /// The message up to (not including) `,p=`: part of the AuthMessage.
    without_proof: String,
    proof: Vec<u8>,
}

fn parse_client_final(token: &[u8]) -> Option<ClientFinal> {
    let text = std::str::from_utf8(token).ok()?;
    let (without_proof, proof) = text.rsplit_once(",p=")?;
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs.next()?.strip_prefix("c=")?.to_string();
    let nonce = attrs.next()?.strip_prefix("r=")?.to_string();
    Some(ClientFinal {
        channel_binding,
        nonce,
        without_proof: without_proof.to_string(),
        proof: B64.decode(proof).ok()?,
    })
}

/// A key known to this process only: stand-in credentials for unknown users derive from it,
/// so that the same unknown name gets the same salt each time, as a real user would.
fn process_secret() -> &'static [u8; 32] {
    static SECRET: std::sync::LazyLock<[u8; 32]> = std::sync::LazyLock::new(|| {
        let mut b = [0u8; 32];
        scram::random_bytes(&mut b);
        b
    });
    &SECRET
}

/// What an unknown user gets in place of a credential: a salt stable per name and the
/// minimum iterations; its keys match no proof.
fn stand_in_credential(user: &str, mechanism: i8) -> Credential {
    let salt = scram::hmac(scram::SCRAM_SHA_256, process_secret(), format!("salt\0{user}").as_bytes());
    let stored_key = scram::hmac(mechanism, process_secret(), format!("stored\0{user}").as_bytes());
    Credential { salt, server_key: stored_key.clone(), stored_key, iterations: scram::MIN_ITERATIONS }
}

#[cfg(test)]
mod tests;
