//! SASL/OAUTHBEARER (RFC 7628) as Kafka 4.x's OAuthBearerSaslServer serves it, with its two
//! token validators: the secured one (a JWS checked against the keys of a JWKS, then `exp`,
//! `nbf`, `iat`, `iss` and `aud`) and the unsecured one (`alg: none`, for development; the
//! configuration serves it only when explicitly asked for, see `config::sasl`).
//!
//! The client's one message is `n,[a=authzid],^Aauth=Bearer TOKEN^A[key=value^A]...^A`. A
//! refused token is answered with RFC 7628's JSON error instead of a failure; the client
//! acknowledges it with a lone `^A`, and only then does the exchange fail. Why a token was
//! refused is logged at debug level and never sent: the client learns only that it was.
//! Client-supplied extensions are checked for form and otherwise ignored, as both of Kafka's
//! validators accept all of them.

use std::collections::HashSet;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{decode_sasl_name, Failure, Step};
use crate::config::{OAuthBearerValidation, SecuredOAuthBearer, UnsecuredOAuthBearer};

/// What the server answers a refused token with (RFC 7628 section 3.2.2).
pub const INVALID_TOKEN: &str = r#"{"status":"invalid_token"}"#;

/// The separator of the client's message (`^A`).
const SEP: char = '\u{1}';

/// The parsed client initial response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInitial {
    /// The authorization id (empty: none asked for).
    pub authzid: String,
    /// The bearer token.
    pub token: String,
    /// The other `key=value` pairs, in order.
    pub extensions: Vec<(String, String)>,
}

/// Parses the client initial response; `None` for anything malformed.
pub fn parse_client_initial(message: &[u8]) -> Option<ClientInitial> {
    let text = std::str::from_utf8(message).ok()?;
    let rest = text.strip_prefix("n,")?;
    let (authz, rest) = rest.split_once(',')?;
    let authzid = match authz {
        "" => String::new(),
        a => decode_sasl_name(a.strip_prefix("a=")?).filter(|a| !a.is_empty())?,
    };
    // What follows is SEP, then pairs each ended by SEP, then a last SEP.
    let pairs = rest.strip_prefix(SEP)?.strip_suffix(SEP)?;
    let mut token = None;
    let mut extensions: Vec<(String, String)> = Vec::new();
    for pair in pairs.split_terminator(SEP) {
        let (key, value) = pair.split_once('=')?;
        let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic());
        let value_ok = !value.is_empty()
            && value.bytes().all(|b| (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        if !key_ok || !value_ok {
            return None;
        }
        if key == "auth" {
            if token.is_some() {
                return None;
            }
            token = Some(bearer_token(value)?);
        } else {
            if extensions.iter().any(|(k, _)| k == key) {
                return None;
            }
            extensions.push((key.to_string(), value.to_string()));
        }
    }
    // Every pair ends with SEP: `pairs` must too, or its last pair was cut short.
    if !pairs.ends_with(SEP) {
        return None;
    }
    Some(ClientInitial { authzid, token: token?, extensions })
}

/// The token of an `auth` value: `Bearer` (any case), spaces, then b64token chars and `=`s.
fn bearer_token(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let b64token = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
    (!body.is_empty() && body.bytes().all(b64token)).then(|| token.to_string())
}

/// A token that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal: String,
    /// When the token expires, in ms since the epoch.
    pub expires_ms: i64,
    pub scopes: Vec<String>,
}

/// Checks `token` as `validation` says, at `now_ms` (ms since the epoch). The error says why
/// (for the log only, never for the client).
pub fn validate(validation: &OAuthBearerValidation, token: &str, now_ms: i64) -> Result<ValidToken, String> {
    match validation {
        OAuthBearerValidation::Secured(s) => validate_secured(s, token, now_ms),
        OAuthBearerValidation::Unsecured(u) => validate_unsecured(u, token, now_ms),
    }
}

/// Base64url with or without padding, as JWS parts come.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn json_part(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = B64URL.decode(part).map_err(|_| format!("the {what} is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(format!("the {what} is not a JSON object")),
    }
}

/// A NumericDate claim in ms since the epoch; `Ok(None)` when absent.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(secs) if (0.0..1e14).contains(&secs) => Ok(Some((secs * 1000.0) as i64)),
            _ => Err(format!("the `{name}` claim is not a time in seconds")),
        },
    }
}

/// The scopes in `claim`: a space-separated string or an array of strings; none if absent.
fn scopes(claims: &Map<String, Value>, claim: &str) -> Result<Vec<String>, String> {
    let bad = || format!("the `{claim}` claim is neither a string nor an array of strings");
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::trim).filter(|s| !s.is_empty()).map(String::from).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// The principal in `claim`: a non-empty string, trimmed.
fn principal(claims: &Map<String, Value>, claim: &str) -> Result<String, String> {
    match claims.get(claim).and_then(Value::as_str).map(str::trim) {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(format!("the `{claim}` claim (the principal) is missing, empty or not a string")),
    }
}

/// Whether the JWS algorithm `alg` is one the key `jwk` can check, as its type and its own
/// `alg` and `use` allow. Shared-secret (HMAC) keys never are (the JWKS reader refuses them).
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use Algorithm::*;
    let family = matches!(
        (&jwk.algorithm, alg),
        (AlgorithmParameters::RSA(_), RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
            | (AlgorithmParameters::EllipticCurve(_), ES256 | ES384)
            | (AlgorithmParameters::OctetKeyPair(_), EdDSA)
    );
    let named = jwk.common.key_algorithm.is_none_or(|k| format!("{k:?}") == format!("{alg:?}"));
    let usable = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
    family && named && usable
}

/// Kafka's secured validator: signature by a key of the JWKS (matched by `kid`; without one,
/// the only key), then the claims.
fn validate_secured(s: &SecuredOAuthBearer, token: &str, now_ms: i64) -> Result<ValidToken, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("the token is not a signed JWT: {e}"))?;
    let jwk = match &header.kid {
        Some(kid) => s.jwks.find(kid).ok_or_else(|| format!("no key of {} has the kid `{kid}`", s.jwks_url))?,
        None if s.jwks.keys.len() == 1 => &s.jwks.keys[0],
        None => return Err(format!("the token names no kid and {} holds several keys", s.jwks_url)),
    };
    if !key_fits(jwk, header.alg) {
        return Err(format!(
            "the key `{}` does not check {:?} signatures",
            header.kid.as_deref().unwrap_or(""),
            header.alg
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("the key of the JWKS cannot be used: {e}"))?;
    let mut validation = Validation::new(header.alg);
    // Times are checked below against `now_ms`, which tests step.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims = HashSet::new();
    if let Some(issuer) = &s.expected_issuer {
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims.insert("iss".into());
    }
    if !s.expected_audience.is_empty() {
        validation.set_audience(&s.expected_audience);
        validation.required_spec_claims.insert("aud".into());
    }
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| format!("the token was refused: {e}"))?
        .claims;
    let skew_ms = i64::try_from(s.clock_skew_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires_ms = time_claim(&claims, "exp")?.ok_or("the token has no `exp` claim")?;
    let issued_ms = time_claim(&claims, "iat")?.ok_or("the token has no `iat` claim")?;
    if now_ms.saturating_sub(skew_ms) >= expires_ms {
        return Err("the token has expired".into());
    }
    if issued_ms > now_ms.saturating_add(skew_ms) {
        return Err("the token was issued in the future (`iat`)".into());
    }
    if time_claim(&claims, "nbf")?.is_some_and(|nbf| nbf > now_ms.saturating_add(skew_ms)) {
        return Err("the token is not valid yet (`nbf`)".into());
    }
    Ok(ValidToken {
        principal: principal(&claims, &s.sub_claim)?,
        expires_ms,
        scopes: scopes(&claims, &s.scope_claim)?,
    })
}

/// Kafka's unsecured validator: an `alg: none` JWS with an empty signature, then `exp`
/// (required), `iat` (optional), the principal claim and the required scopes.
fn validate_unsecured(u: &UnsecuredOAuthBearer, token: &str, now_ms: i64) -> Result<ValidToken, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, ""] = parts[..] else {
        return Err("an unsecured token is `header.payload.` (three parts, the last empty)".into());
    };
    let header = json_part(header, "header")?;
    if header.get("alg").and_then(Value::as_str) != Some("none") {
        return Err("an unsecured token's header must say `\"alg\":\"none\"`".into());
    }
    let claims = json_part(payload, "payload")?;
    let skew_ms = i64::try_from(u.clock_skew_ms).unwrap_or(i64::MAX);
    let expires_ms = time_claim(&claims, "exp")?.ok_or("the token has no `exp` claim")?;
    if expires_ms <= now_ms.saturating_sub(skew_ms) {
        return Err("the token has expired".into());
    }
    if let Some(issued_ms) = time_claim(&claims, "iat")? {
        if issued_ms > now_ms.saturating_add(skew_ms) {
            return Err("the token was issued in the future (`iat`)".into());
        }
        if expires_ms <= issued_ms {
            return Err("the token expires before it was issued".into());
        }
    }
    let principal = principal(&claims, &u.principal_claim)?;
    let scopes = scopes(&claims, &u.scope_claim)?;
    if let Some(missing) = u.required_scopes.iter().find(|r| !scopes.contains(r)) {
        return Err(format!("the token lacks the required scope `{missing}`"));
    }
    Ok(ValidToken { principal, expires_ms, scopes })
}

/// An OAUTHBEARER exchange in progress.
#[derive(Debug)]
pub struct OAuthBearerExchange {
    validation: Option<std::sync::Arc<OAuthBearerValidation>>,
    /// The JSON error sent for a refused token: the client must now acknowledge it.
    error_sent: bool,
}

impl OAuthBearerExchange {
    pub fn new(validation: Option<std::sync::Arc<OAuthBearerValidation>>) -> Self {
        Self { validation, error_sent: false }
    }

    pub(super) fn step(&mut self, message: &[u8], now_ms: i64) -> Step {
        if std::mem::take(&mut self.error_sent) {
            // Only the acknowledgement may follow the error; anything else fails alike.
            return if message == [0x01] {
                Step::Fail(Failure::TokenRefused(INVALID_TOKEN.into()))
            } else {
                Step::Fail(Failure::Credentials)
            };
        }
        let Some(initial) = parse_client_initial(message) else {
            tracing::debug!("malformed SASL/OAUTHBEARER client message");
            return Step::Fail(Failure::Credentials);
        };
        let Some(validation) = &self.validation else {
            return Step::Fail(Failure::Credentials);
        };
        match validate(validation, &initial.token, now_ms) {
            Err(reason) => {
                tracing::debug!(reason, "SASL/OAUTHBEARER token refused");
                self.error_sent = true;
                Step::Continue(INVALID_TOKEN.as_bytes().to_vec())
            }
            Ok(valid) if !initial.authzid.is_empty() && initial.authzid != valid.principal => {
                Step::Fail(Failure::Said(
                    "Authentication failed: Client requested an authorization id that is different from the \
                     token's principal name"
                        .into(),
                ))
            }
            Ok(valid) => Step::Done { user: valid.principal, reply: Vec::new(), expires_ms: Some(valid.expires_ms) },
        }
    }
}
