//! SaslHandshake and SaslAuthenticate on the wire, and the gate of a SASL listener.
//!
//! On a SASL_PLAINTEXT or SASL_SSL listener every request passes [`gate`] first, which asks the
//! connection's [`Authenticator`] what to do: serve it as usual, run the SASL exchange here,
//! or close (see `auth::sasl` for the states, which follow Kafka 4.1). The registry's handlers
//! below answer only what reaches them outside an exchange — any SaslHandshake or
//! SaslAuthenticate on a PLAINTEXT or SSL listener, or after authentication when no
//! re-authentication is possible — with ILLEGAL_SASL_STATE, as Kafka's KafkaApis does.
//!
//! Failures (an unsupported mechanism, wrong credentials, a handshake in the middle of an
//! exchange) are answered after `connection.failed.authentication.delay.ms`, from the
//! connection's writer, so the wait holds up no other connection; then the connection closes.

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};

use super::common::str_bytes;
use super::{decode, encode, Ctx, Reply, Session};
use crate::auth::sasl::{Admit, Authenticate, Authenticator, Handshake, RequestKind};
use crate::broker::Broker;
use crate::handlers::error_codes::ResponseError;

/// SaslHandshake outside an exchange (see the module docs).
pub async fn handle_handshake(ctx: &Ctx, _req: SaslHandshakeRequest) -> Reply {
    ctx.reply(&SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()))
}

/// SaslAuthenticate outside an exchange (see the module docs); Kafka's message.
pub async fn handle_authenticate(ctx: &Ctx, _req: SaslAuthenticateRequest) -> Reply {
    ctx.reply(
        &SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(str_bytes("SaslAuthenticate request received after successful authentication"))),
    )
}

fn kind(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::ApiVersions => RequestKind::ApiVersions,
        ApiKey::SaslHandshake => RequestKind::SaslHandshake,
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate,
        _ => RequestKind::Other,
    }
}

/// The first decision on a request of a SASL listener's connection, before its version is
/// checked: `Err` is the reply that ends it (a close); `Ok(admit)` says how to go on.
pub fn admit(session: &Session, key: ApiKey) -> Result<Admit, Reply> {
    let Some(auth) = &session.sasl else {
        return Ok(Admit::Serve);
    };
    match auth.lock().admit(kind(key), Instant::now()) {
        Admit::Close(reason) => Err(Reply::Close(reason)),
        admit => Ok(admit),
    }
}

/// Runs the part of the exchange `admit` handed to the authenticator.
pub fn exchange(broker: &Broker, session: &Session, admit: Admit, header: &RequestHeader, mut body: Bytes) -> Reply {
    let Some(auth) = &session.sasl else {
        return Reply::Close("no SASL on this listener".into());
    };
    let (version, correlation_id) = (header.request_api_version, header.correlation_id);
    match admit {
        Admit::Handshake => {
            let req = match decode::<SaslHandshakeRequest>(&mut body, version, ApiKey::SaslHandshake) {
                Ok(r) => r,
                Err(reply) => return reply,
            };
            let mut auth = auth.lock();
            if version == 0 {
                // v0 is advertised only for librdkafka's feature check (see the registry): the
                // raw tokens that would follow it are gone since KIP-896.
                let response = SaslHandshakeResponse::default()
                    .with_error_code(ResponseError::UnsupportedVersion.code())
                    .with_mechanisms(auth.settings().mechanism_names().into_iter().map(str_bytes).collect());
                let frame = encode(correlation_id, version, &response);
                return Reply::Final(
                    "SaslHandshake v0 (raw SASL tokens) is not served".into(),
                    Box::pin(async move { frame }),
                );
            }
            let outcome = auth.handshake(req.mechanism.as_str(), Instant::now());
            let mechanisms = auth.settings().mechanism_names().into_iter().map(str_bytes).collect();
            let code = match outcome {
                Handshake::Accepted => 0,
                Handshake::Unsupported => ResponseError::UnsupportedSaslMechanism.code(),
            };
            let frame = encode(
                correlation_id,
                version,
                &SaslHandshakeResponse::default().with_error_code(code).with_mechanisms(mechanisms),
            );
            match outcome {
                Handshake::Accepted => {
                    frame.map_or_else(|| Reply::Close("response could not be encoded".into()), Reply::Ready)
                }
                Handshake::Unsupported => failed(
                    &auth,
                    frame,
                    format!(
                        "the client asked for the SASL mechanism `{}`, which is not enabled here",
                        req.mechanism.as_str()
                    ),
                ),
            }
        }
        Admit::IllegalHandshake => {
            let auth = auth.lock();
            let frame = encode(
                correlation_id,
                version,
                &SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()),
            );
            failed(&auth, frame, "SaslHandshake during SASL authentication".into())
        }
        Admit::Authenticate => {
            let req = match decode::<SaslAuthenticateRequest>(&mut body, version, ApiKey::SaslAuthenticate) {
                Ok(r) => r,
                Err(reply) => return reply,
            };
            let mut auth = auth.lock();
            let response = SaslAuthenticateResponse::default();
            match auth.authenticate(&req.auth_bytes, &broker.scram, Instant::now()) {
                Authenticate::Continue(reply) => {
                    ready(encode(correlation_id, version, &response.with_auth_bytes(reply.into())))
                }
                Authenticate::Done { reply, principal, session_lifetime_ms } => {
                    tracing::debug!(%principal, session_lifetime_ms, "SASL authentication done");
                    session.set_principal(principal);
                    let mut response = response.with_auth_bytes(reply.into());
                    if version >= 1 {
                        response = response.with_session_lifetime_ms(session_lifetime_ms);
                    }
                    ready(encode(correlation_id, version, &response))
                }
                Authenticate::Failed(message) => {
                    let response = response
                        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                        .with_error_message(Some(str_bytes(&message)));
                    failed(
                        &auth,
                        encode(correlation_id, version, &response),
                        format!("SASL authentication failed: {message}"),
                    )
                }
            }
        }
        Admit::Serve | Admit::Close(_) => Reply::Close("not a SASL exchange request".into()),
    }
}

fn ready(frame: Option<super::Frame>) -> Reply {
    frame.map_or_else(|| Reply::Close("response could not be encoded".into()), Reply::Ready)
}

/// The answer to a failure, sent after the configured delay; then the connection closes.
fn failed(auth: &Authenticator, frame: Option<super::Frame>, reason: String) -> Reply {
    let delay = auth.failure_delay();
    Reply::Final(
        reason,
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            frame
        }),
    )
}
