//! SASL settings of the SASL_PLAINTEXT and SASL_SSL listeners, with Kafka's keys:
//! `sasl.enabled.mechanisms` (and its `listener.name.<listener>.` form), the PLAIN users of a
//! PlainLoginModule JAAS entry (`listener.name.<listener>.plain.sasl.jaas.config`, the
//! un-prefixed `plain.sasl.jaas.config` / `sasl.jaas.config`, or the `KafkaServer` section of
//! the JAAS file named by `-Djava.security.auth.login.config=` in `KAFKA_OPTS`),
//! `connections.max.reauth.ms` (KIP-368) and `connection.failed.authentication.delay.ms`.
//!
//! PLAIN passwords come from the configuration and stay in memory as given; they are wrapped
//! in [`Secret`] so that no `Debug` print of the configuration shows them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::{ConfigError, ServerConfig};

/// A configured value that must never be printed (a JAAS text with passwords).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

/// One listener's own SASL settings, `listener.name.<listener>.*` (`server.listener_sasl.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerSaslConfig {
    /// `listener.name.<listener>.sasl.enabled.mechanisms`. Default: the global one.
    pub enabled_mechanisms: Option<String>,
    /// `listener.name.<listener>.plain.sasl.jaas.config`: a PlainLoginModule entry with the
    /// PLAIN users (`user_NAME="password"`). Default: the global forms, then the JAAS file.
    pub plain_jaas_config: Option<Secret>,
    /// `listener.name.<listener>.<mechanism>.connections.max.reauth.ms`, by mechanism in
    /// lower case with `_` for `-` (`scram_sha_256`). Default: `connections.max.reauth.ms`.
    pub reauth_ms: HashMap<String, u64>,
    /// `listener.name.<listener>.oauthbearer.sasl.jaas.config`: an OAuthBearerLoginModule
    /// entry, whose `unsecuredValidator*` options set up (and opt in to) unsecured tokens.
    pub oauthbearer_jaas_config: Option<Secret>,
    /// `listener.name.<listener>.oauthbearer.sasl.server.callback.handler.class`: Kafka's
    /// secured or unsecured OAUTHBEARER validator, which picks how tokens are checked.
    pub oauthbearer_server_callback_handler_class: Option<String>,
    /// `listener.name.<listener>.scram-sha-256.sasl.jaas.config`: a ScramLoginModule entry
    /// whose `username` and `password` a broker logs in to the others with, in shared mode.
    pub scram_sha_256_jaas_config: Option<Secret>,
    /// The same for SCRAM-SHA-512.
    pub scram_sha_512_jaas_config: Option<Secret>,
}

/// A SASL mechanism gregor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 4] = [Self::Plain, Self::ScramSha256, Self::ScramSha512, Self::OAuthBearer];

    /// The name clients send in SaslHandshake.
    pub fn kafka_name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn from_kafka_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.kafka_name() == name)
    }

    /// The key of [`ListenerSaslConfig::reauth_ms`].
    fn field_name(self) -> String {
        self.kafka_name().to_ascii_lowercase().replace('-', "_")
    }
}

/// How a broker logs in to another one: a mechanism, a user and its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslLogin {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

/// One SASL listener's settings, resolved and checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslSettings {
    /// The listener's name, as in `listeners`.
    pub listener: String,
    /// Enabled mechanisms, in the configured order (what SaslHandshake answers list).
    pub mechanisms: Vec<SaslMechanism>,
    /// PLAIN users and their passwords, as configured.
    pub plain_users: Arc<HashMap<String, Secret>>,
    /// Longest session per mechanism before the client must re-authenticate (KIP-368), in
    /// ms; 0: sessions do not expire.
    pub reauth_ms: HashMap<SaslMechanism, u64>,
    /// Wait this long before answering a failed authentication and closing
    /// (`connection.failed.authentication.delay.ms`).
    pub failed_authentication_delay_ms: u64,
    /// How OAUTHBEARER tokens are checked; set when OAUTHBEARER is enabled.
    pub oauthbearer: Option<Arc<OAuthBearerValidation>>,
}

/// How a listener checks SASL/OAUTHBEARER tokens: one of Kafka's two server callback handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthBearerValidation {
    /// Kafka's `OAuthBearerValidatorCallbackHandler`: signed JWTs checked against a JWKS.
    Secured(SecuredOAuthBearer),
    /// Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler`: unsigned (`alg: none`) tokens,
    /// for development only; served only when explicitly chosen.
    Unsecured(UnsecuredOAuthBearer),
}

/// The settings of the secured OAUTHBEARER validator (Kafka's `sasl.oauthbearer.*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuredOAuthBearer {
    /// Where the keys came from, for messages.
    pub jwks_url: String,
    /// The keys that may sign tokens, read at start.
    pub jwks: jsonwebtoken::jwk::JwkSet,
    /// A token's `aud` must name one of these; empty: a token must carry no `aud`.
    pub expected_audience: Vec<String>,
    /// A token's `iss` must be this.
    pub expected_issuer: Option<String>,
    /// The claim naming the principal.
    pub sub_claim: String,
    /// The claim with the scopes.
    pub scope_claim: String,
    /// Leeway for `exp`, `nbf` and `iat`, in seconds.
    pub clock_skew_seconds: u64,
}

/// The options of the unsecured validator (`unsecuredValidator*` of the OAuthBearerLoginModule
/// JAAS entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredOAuthBearer {
    /// `unsecuredValidatorPrincipalClaimName`. Default: sub.
    pub principal_claim: String,
    /// `unsecuredValidatorScopeClaimName`. Default: scope.
    pub scope_claim: String,
    /// `unsecuredValidatorRequiredScope`: scopes every token must have. Default: none.
    pub required_scopes: Vec<String>,
    /// `unsecuredValidatorAllowableClockSkewMs`. Default: 0.
    pub clock_skew_ms: u64,
}

impl fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSettings")
            .field("listener", &self.listener)
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .field("reauth_ms", &self.reauth_ms)
            .field("failed_authentication_delay_ms", &self.failed_authentication_delay_ms)
            .field("oauthbearer", &self.oauthbearer)
            .finish()
    }
}

impl SaslSettings {
    pub fn mechanism_names(&self) -> Vec<&'static str> {
        self.mechanisms.iter().map(|m| m.kafka_name()).collect()
    }
}

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const GLOBAL_MECHANISMS_KEY: &str = "sasl.enabled.mechanisms (server.sasl_enabled_mechanisms)";
const MECHANISMS_HINT: &str = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and/or OAUTHBEARER";
const OAUTH_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const SECURED_HANDLER: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
/// The secured handler's name before Kafka 3.5 moved it (still accepted by Kafka).
const SECURED_HANDLER_OLD: &str =
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler";
const UNSECURED_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

impl ServerConfig {
    /// The SASL settings of the SASL listener `name`, resolved and checked; the JAAS file, if
    /// one is named, is read here.
    pub fn sasl_settings(&self, name: &str) -> Result<SaslSettings, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let own = self.listener_sasl.iter().find(|(k, _)| k.to_ascii_lowercase() == lower).map(|(_, v)| v);
        let bad = |key: String, reason: String| ConfigError::BadValue { key, origin: "configuration".into(), reason };
        let own_key = format!("listener.name.{lower}.sasl.enabled.mechanisms");
        let (key, list) = match own.and_then(|o| o.enabled_mechanisms.clone()).filter(|l| !l.trim().is_empty()) {
            Some(l) => (format!("{own_key} (server.listener_sasl.{lower}.enabled_mechanisms)"), l),
            None => match self.sasl_enabled_mechanisms.clone().filter(|l| !l.trim().is_empty()) {
                Some(l) => (GLOBAL_MECHANISMS_KEY.to_string(), l),
                None => {
                    return Err(bad(
                        GLOBAL_MECHANISMS_KEY.into(),
                        format!(
                            "the listener {name} uses SASL but enables no mechanism, and Kafka's default \
                             (GSSAPI, Kerberos) is not served by gregor: set sasl.enabled.mechanisms \
                             (KAFKA_SASL_ENABLED_MECHANISMS) or {own_key} to {MECHANISMS_HINT}"
                        ),
                    ))
                }
            },
        };
        let mut mechanisms = Vec::new();
        for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let mechanism = match (SaslMechanism::from_kafka_name(m), m) {
                (Some(mech), _) => mech,
                (None, "GSSAPI") => {
                    return Err(bad(
                        key,
                        format!("GSSAPI (Kerberos) is not served by gregor; enable {MECHANISMS_HINT} instead"),
                    ))
                }
                (None, other) => {
                    return Err(bad(
                        key,
                        format!("`{other}` is not a SASL mechanism gregor serves ({MECHANISMS_HINT})"),
                    ))
                }
            };
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
        if mechanisms.is_empty() {
            return Err(bad(key, format!("lists no mechanism: set it to {MECHANISMS_HINT}")));
        }
        let plain_users =
            if mechanisms.contains(&SaslMechanism::Plain) { self.plain_users(name, own)? } else { HashMap::new() };
        let mut reauth_ms = HashMap::new();
        for &m in &mechanisms {
            let ms =
                own.and_then(|o| o.reauth_ms.get(&m.field_name()).copied()).unwrap_or(self.connections_max_reauth_ms);
            reauth_ms.insert(m, ms);
        }
        let oauthbearer = if mechanisms.contains(&SaslMechanism::OAuthBearer) {
            Some(Arc::new(self.oauthbearer_validation(name, own)?))
        } else {
            None
        };
        Ok(SaslSettings {
            listener: name.to_string(),
            mechanisms,
            plain_users: Arc::new(plain_users),
            reauth_ms,
            failed_authentication_delay_ms: self.connection_failed_authentication_delay_ms,
            oauthbearer,
        })
    }

    /// How listener `name` checks OAUTHBEARER tokens. Its callback handler class decides; with
    /// none named, a JWKS URL means the secured validator and `unsecuredValidator*` JAAS
    /// options the unsecured one. Unlike Kafka, whose default is the unsecured validator,
    /// gregor serves unsigned tokens only when they are asked for: with neither, it refuses.
    fn oauthbearer_validation(
        &self,
        name: &str,
        own: Option<&ListenerSaslConfig>,
    ) -> Result<OAuthBearerValidation, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let env_listener = name.to_ascii_uppercase().replace('_', "__");
        let bad = |key: String, reason: String| ConfigError::BadValue { key, origin: "configuration".into(), reason };
        let class_key = format!("listener.name.{lower}.oauthbearer.sasl.server.callback.handler.class");
        let class = own
            .and_then(|o| o.oauthbearer_server_callback_handler_class.as_deref())
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let (jaas_key, options) = self.oauthbearer_jaas_options(name, own)?;
        let unsecured_options: Vec<&(String, String)> =
            options.iter().filter(|(k, _)| k.starts_with("unsecuredValidator")).collect();
        let url = self.sasl_oauthbearer_jwks_endpoint_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
        match (class, url, unsecured_options.is_empty()) {
            (Some(SECURED_HANDLER | SECURED_HANDLER_OLD), Some(url), _) | (None, Some(url), true) => {
                self.secured_oauthbearer(url).map(OAuthBearerValidation::Secured)
            }
            (Some(UNSECURED_HANDLER), _, _) | (None, None, false) => {
                unsecured_oauthbearer(&options).map(OAuthBearerValidation::Unsecured).map_err(|e| bad(jaas_key, e))
            }
            (None, Some(_), false) => Err(bad(
                jaas_key,
                format!(
                    "gives unsecuredValidator* options while sasl.oauthbearer.jwks.endpoint.url is set: name the \
                     validator in {class_key} ({SECURED_HANDLER} or {UNSECURED_HANDLER})"
                ),
            )),
            (Some(SECURED_HANDLER | SECURED_HANDLER_OLD), None, _) => Err(bad(
                "sasl.oauthbearer.jwks.endpoint.url".into(),
                format!(
                    "the listener {name} checks OAUTHBEARER tokens with {SECURED_HANDLER}, which needs the keys \
                     that sign them: set sasl.oauthbearer.jwks.endpoint.url \
                     (KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL) to a file: URL of a JWKS"
                ),
            )),
            (Some(other), _, _) => Err(bad(
                class_key,
                format!(
                    "`{other}` is not an OAUTHBEARER validator gregor has: use {SECURED_HANDLER} (signed tokens \
                     checked against sasl.oauthbearer.jwks.endpoint.url) or, for development only, \
                     {UNSECURED_HANDLER}"
                ),
            )),
            (None, None, true) => Err(bad(
                class_key.clone(),
                format!(
                    "OAUTHBEARER is enabled on the listener {name} but nothing says how to check tokens: set \
                     {class_key} (KAFKA_LISTENER_NAME_{env_listener}_OAUTHBEARER_SASL_SERVER_CALLBACK_HANDLER_CLASS) \
                     to {SECURED_HANDLER} and sasl.oauthbearer.jwks.endpoint.url \
                     (KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL) to a file: URL of a JWKS; unsigned tokens \
                     (Kafka's default) are served only when {class_key} names {UNSECURED_HANDLER}"
                ),
            )),
        }
    }

    /// The options of the OAuthBearerLoginModule entry that configures listener `name`, from
    /// the first place that has one (as for PLAIN's users); none is no error.
    fn oauthbearer_jaas_options(
        &self,
        name: &str,
        own: Option<&ListenerSaslConfig>,
    ) -> Result<(String, Vec<(String, String)>), ConfigError> {
        let lower = name.to_ascii_lowercase();
        let own_key = format!("listener.name.{lower}.oauthbearer.sasl.jaas.config");
        let settings = [
            (own_key.clone(), own.and_then(|o| o.oauthbearer_jaas_config.clone())),
            ("sasl.jaas.config".to_string(), self.sasl_jaas_config.clone()),
        ];
        let Some((key, entries)) = self.jaas_entries(&lower, settings)? else {
            return Ok((own_key, Vec::new()));
        };
        let options = entries.into_iter().find(|e| e.module == OAUTH_MODULE).map(|e| e.options).unwrap_or_default();
        Ok((key, options))
    }

    /// The JAAS entries of the first setting among `settings` that is set (key, text), else of
    /// the listener's section of the JAAS file (`KAFKA_OPTS`); `None` when there is neither.
    fn jaas_entries(
        &self,
        lower: &str,
        settings: impl IntoIterator<Item = (String, Option<Secret>)>,
    ) -> Result<Option<(String, Vec<JaasEntry>)>, ConfigError> {
        let bad = |key: String, reason: String| ConfigError::BadValue { key, origin: "configuration".into(), reason };
        if let Some((key, text)) =
            settings.into_iter().find_map(|(k, v)| v.filter(|v| !v.0.trim().is_empty()).map(|v| (k, v)))
        {
            let entries = parse_jaas_entries(&text.0).map_err(|e| bad(key.clone(), e))?;
            return Ok(Some((key, entries)));
        }
        let Some(file) = &self.sasl_jaas_file else {
            return Ok(None);
        };
        let key = format!("java.security.auth.login.config ({})", file.display());
        let entries = read_jaas_file_section(file, lower).map_err(|e| bad(key.clone(), e))?;
        Ok(Some((key, entries)))
    }

    /// The secured validator's settings, with the JWKS read from `url`.
    fn secured_oauthbearer(&self, url: &str) -> Result<SecuredOAuthBearer, ConfigError> {
        let key = "sasl.oauthbearer.jwks.endpoint.url".to_string();
        let bad = |key: String, reason: String| ConfigError::BadValue { key, origin: "configuration".into(), reason };
        let jwks = read_jwks(url).map_err(|e| bad(key.clone(), e))?;
        let expected_audience: Vec<String> = self
            .sasl_oauthbearer_expected_audience
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect();
        let claim = |key: &str, value: &str| {
            let v = value.trim();
            if v.is_empty() {
                Err(bad(key.into(), "must name a claim".into()))
            } else {
                Ok(v.to_string())
            }
        };
        Ok(SecuredOAuthBearer {
            jwks_url: url.to_string(),
            jwks,
            expected_audience,
            expected_issuer: self
                .sasl_oauthbearer_expected_issuer
                .as_deref()
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(String::from),
            sub_claim: claim("sasl.oauthbearer.sub.claim.name", &self.sasl_oauthbearer_sub_claim_name)?,
            scope_claim: claim("sasl.oauthbearer.scope.claim.name", &self.sasl_oauthbearer_scope_claim_name)?,
            clock_skew_seconds: self.sasl_oauthbearer_clock_skew_seconds,
        })
    }

    /// The PLAIN users of listener `name`, from the first place that configures them, in
    /// Kafka's order: the listener's own JAAS setting, then the un-prefixed ones, then the
    /// JAAS file's `<listener>.KafkaServer` or `KafkaServer` section.
    fn plain_users(
        &self,
        name: &str,
        own: Option<&ListenerSaslConfig>,
    ) -> Result<HashMap<String, Secret>, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let bad = |key: String, reason: String| ConfigError::BadValue { key, origin: "configuration".into(), reason };
        let own_key = format!("listener.name.{lower}.plain.sasl.jaas.config");
        let settings = [
            (own_key.clone(), own.and_then(|o| o.plain_jaas_config.clone())),
            ("plain.sasl.jaas.config".to_string(), self.plain_sasl_jaas_config.clone()),
            ("sasl.jaas.config".to_string(), self.sasl_jaas_config.clone()),
        ];
        let Some((key, entries)) = self.jaas_entries(&lower, settings)? else {
            return Err(bad(
                own_key.clone(),
                format!(
                    "PLAIN is enabled on the listener {name} but no users are configured: set {own_key} \
                             (KAFKA_LISTENER_NAME_{}_PLAIN_SASL_JAAS_CONFIG) to `{PLAIN_MODULE} required \
                             user_alice=\"alice-secret\";`",
                    name.to_ascii_uppercase().replace('_', "__")
                ),
            ));
        };
        let Some(entry) = entries.iter().find(|e| e.module == PLAIN_MODULE) else {
            return Err(bad(key, format!("has no {PLAIN_MODULE} entry, which PLAIN takes its users from")));
        };
        let users: HashMap<String, Secret> = entry
            .options
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), Secret(v.clone()))))
            .filter(|(u, _)| !u.is_empty())
            .collect();
        if users.is_empty() {
            return Err(bad(
                key,
                format!("its {PLAIN_MODULE} entry lists no users: add user_NAME=\"password\" for each"),
            ));
        }
        Ok(users)
    }

    /// How this broker logs in to the others on their SASL inter-broker listener `listener`
    /// (shared mode): the mechanism `sasl.mechanism.inter.broker.protocol` names, which the
    /// listener must enable, and the `username` and `password` options of that mechanism's
    /// JAAS entry for the listener, found where the listener's own settings are (PLAIN's
    /// entry is the one with its users).
    pub fn inter_broker_login(&self, listener: &SaslSettings) -> Result<SaslLogin, ConfigError> {
        let name = &listener.listener;
        let lower = listener.listener.to_ascii_lowercase();
        let env_listener = listener.listener.to_ascii_uppercase().replace('_', "__");
        let own = self.listener_sasl.iter().find(|(k, _)| k.to_ascii_lowercase() == lower).map(|(_, v)| v);
        let bad = |key: String, reason: String| ConfigError::BadValue { key, origin: "configuration".into(), reason };
        let key = "sasl.mechanism.inter.broker.protocol (server.sasl_mechanism_inter_broker_protocol)".to_string();
        let enabled = listener.mechanism_names().join(", ");
        let mechanism = match self.sasl_mechanism_inter_broker_protocol.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(bad(
                    key,
                    format!(
                        "brokers reach each other on the SASL listener {name} but nothing says how they log in, \
                         and Kafka's default (GSSAPI, Kerberos) is not served by gregor: set \
                         sasl.mechanism.inter.broker.protocol (KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL) to one \
                         of the listener's mechanisms ({enabled})"
                    ),
                ))
            }
            Some(m) => SaslMechanism::from_kafka_name(m).ok_or_else(|| {
                bad(
                    key.clone(),
                    format!("`{m}` is not a SASL mechanism gregor logs in with (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"),
                )
            })?,
        };
        if mechanism == SaslMechanism::OAuthBearer {
            return Err(bad(
                key,
                "brokers do not log in to each other with OAUTHBEARER yet: use PLAIN, SCRAM-SHA-256 or \
                 SCRAM-SHA-512"
                    .into(),
            ));
        }
        if !listener.mechanisms.contains(&mechanism) {
            return Err(bad(
                key,
                format!(
                    "{} is not enabled on the inter-broker listener {name}, which serves {enabled}",
                    mechanism.kafka_name()
                ),
            ));
        }
        let (module, own_key, settings) = match mechanism {
            SaslMechanism::Plain => {
                let own_key = format!("listener.name.{lower}.plain.sasl.jaas.config");
                let settings = vec![
                    (own_key.clone(), own.and_then(|o| o.plain_jaas_config.clone())),
                    ("plain.sasl.jaas.config".to_string(), self.plain_sasl_jaas_config.clone()),
                    ("sasl.jaas.config".to_string(), self.sasl_jaas_config.clone()),
                ];
                (PLAIN_MODULE, own_key, settings)
            }
            _ => {
                let field = mechanism.kafka_name().to_ascii_lowercase();
                let own_key = format!("listener.name.{lower}.{field}.sasl.jaas.config");
                let own_value = own.and_then(|o| match mechanism {
                    SaslMechanism::ScramSha256 => o.scram_sha_256_jaas_config.clone(),
                    _ => o.scram_sha_512_jaas_config.clone(),
                });
                let settings =
                    vec![(own_key.clone(), own_value), ("sasl.jaas.config".to_string(), self.sasl_jaas_config.clone())];
                (SCRAM_MODULE, own_key, settings)
            }
        };
        let env_key = format!(
            "KAFKA_LISTENER_NAME_{env_listener}_{}_SASL_JAAS_CONFIG",
            mechanism.kafka_name().replace('-', "___")
        );
        let hint = format!(
            "set {own_key} ({env_key}) to `{module} required username=\"broker\" password=\"...\";`: the \
             user and password this broker presents to the others"
        );
        let Some((key, entries)) = self.jaas_entries(&lower, settings)? else {
            return Err(bad(
                own_key.clone(),
                format!(
                    "brokers log in to each other with {} but no credentials are configured: {hint}",
                    mechanism.kafka_name()
                ),
            ));
        };
        let option = |entry: &JaasEntry, option: &str| {
            entry.options.iter().find(|(k, _)| k == option).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
        };
        let login = entries
            .iter()
            .find(|e| e.module == module)
            .and_then(|e| Some((option(e, "username")?, option(e, "password")?)));
        match login {
            Some((username, password)) => Ok(SaslLogin { mechanism, username, password: Secret(password) }),
            None => Err(bad(key, format!("has no {module} entry with a username and a password: {hint}"))),
        }
    }
}

/// The unsecured validator's options from the OAuthBearerLoginModule entry.
fn unsecured_oauthbearer(options: &[(String, String)]) -> Result<UnsecuredOAuthBearer, String> {
    let get = |name: &str| options.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let claim = |name: &str| match get(name) {
        Some("") => Err(format!("its option {name} is empty: it must name a claim")),
        Some(v) => Ok(v.to_string()),
        None => Ok(String::new()),
    };
    let principal_claim = claim("unsecuredValidatorPrincipalClaimName")?;
    let scope_claim = claim("unsecuredValidatorScopeClaimName")?;
    let clock_skew_ms = match get("unsecuredValidatorAllowableClockSkewMs") {
        None => 0,
        Some(v) => v.parse().map_err(|_| {
            format!("its option unsecuredValidatorAllowableClockSkewMs=`{v}` is not a whole number of ms")
        })?,
    };
    Ok(UnsecuredOAuthBearer {
        principal_claim: if principal_claim.is_empty() { "sub".into() } else { principal_claim },
        scope_claim: if scope_claim.is_empty() { "scope".into() } else { scope_claim },
        required_scopes: get("unsecuredValidatorRequiredScope")
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        clock_skew_ms,
    })
}

/// The JWKS at `url`: only `file:` URLs are read (once, here); the keys must be public keys
/// (RSA, EC or OKP), never shared secrets.
fn read_jwks(url: &str) -> Result<jsonwebtoken::jwk::JwkSet, String> {
    use jsonwebtoken::jwk::AlgorithmParameters;
    let path = match url.strip_prefix("file:") {
        Some(rest) => {
            let rest = rest.strip_prefix("//localhost").or_else(|| rest.strip_prefix("//")).unwrap_or(rest);
            if !rest.starts_with('/') {
                return Err(format!("`{url}` is not a file: URL with an absolute path (file:///path/to/jwks.json)"));
            }
            rest.replace("%20", " ")
        }
        None if url.starts_with("https:") || url.starts_with("http:") => {
            return Err(format!(
                "`{url}`: gregor reads the JWKS from a file only (file:///path/to/jwks.json), it does not fetch \
                 it over HTTP(S); save the issuer's JWKS to a file and name that"
            ))
        }
        None => return Err(format!("`{url}` is not a URL gregor reads a JWKS from (file:///path/to/jwks.json)")),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read the JWKS file {path}: {e}"))?;
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&text).map_err(|e| format!("the JWKS file {path} is not a JWK set: {e}"))?;
    if jwks.keys.is_empty() {
        return Err(format!("the JWKS file {path} holds no key"));
    }
    if jwks.keys.iter().any(|k| matches!(k.algorithm, AlgorithmParameters::OctetKey(_))) {
        return Err(format!(
            "the JWKS file {path} holds a shared secret (kty oct): only public keys (RSA, EC, OKP) may check tokens"
        ));
    }
    Ok(jwks)
}

/// One login module entry of a JAAS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub module: String,
    pub flag: String,
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

/// Splits JAAS text as Java's parser does: words, double-quoted strings with backslash
/// escapes, `{ } ; =`, and `//`, `#` and `/* */` comments.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '{' | '}' | ';' | '=' => out.push(Token::Punct(c)),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(other) => s.push(other),
                            None => return Err("a quoted value is not closed".into()),
                        },
                        Some(other) => s.push(other),
                        None => return Err("a quoted value is not closed".into()),
                    }
                }
                out.push(Token::Quoted(s));
            }
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                loop {
                    match chars.next() {
                        Some('/') if last == '*' => break,
                        Some(c) => last = c,
                        None => return Err("a /* comment is not closed".into()),
                    }
                }
            }
            _ => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

const FLAGS: &[&str] = &["required", "requisite", "sufficient", "optional"];

/// Parses login module entries (`Module flag key=value ...;`) from `tokens`, up to a `}` or
/// the end.
fn parse_entries(tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>) -> Result<Vec<JaasEntry>, String> {
    let mut entries = Vec::new();
    while let Some(t) = tokens.peek() {
        if *t == Token::Punct('}') {
            break;
        }
        let module = match tokens.next() {
            Some(Token::Word(w)) => w,
            other => return Err(format!("expected a login module class name, found {}", describe(other.as_ref()))),
        };
        let flag = match tokens.next() {
            Some(Token::Word(w)) if FLAGS.contains(&w.to_ascii_lowercase().as_str()) => w.to_ascii_lowercase(),
            other => {
                return Err(format!(
                    "expected a control flag (required, requisite, sufficient or optional) after {module}, found {}",
                    describe(other.as_ref())
                ))
            }
        };
        let mut options = Vec::new();
        loop {
            match tokens.next() {
                Some(Token::Punct(';')) => break,
                Some(Token::Word(key)) => {
                    if tokens.next() != Some(Token::Punct('=')) {
                        return Err(format!("the option `{key}` of {module} has no `=value`"));
                    }
                    let value = match tokens.next() {
                        Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                        _ => return Err(format!("the option `{key}` of {module} has no value")),
                    };
                    options.push((key, value));
                }
                other => {
                    return Err(format!(
                        "expected an option or `;` in the entry of {module}, found {}",
                        describe(other.as_ref())
                    ))
                }
            }
        }
        entries.push(JaasEntry { module, flag, options });
    }
    Ok(entries)
}

fn describe(t: Option<&Token>) -> String {
    match t {
        None => "the end".into(),
        Some(Token::Word(w)) => format!("`{w}`"),
        Some(Token::Quoted(_)) => "a quoted value".into(),
        Some(Token::Punct(c)) => format!("`{c}`"),
    }
}

/// The entries of a `sasl.jaas.config` value (no section braces).
pub fn parse_jaas_entries(text: &str) -> Result<Vec<JaasEntry>, String> {
    let mut tokens = tokenize(text)?.into_iter().peekable();
    let entries = parse_entries(&mut tokens)?;
    if tokens.next().is_some() {
        return Err("has text after its last entry".into());
    }
    if entries.is_empty() {
        return Err("holds no login module entry".into());
    }
    Ok(entries)
}

/// The sections of a JAAS file: `Name { entries };`.
pub fn parse_jaas_file(text: &str) -> Result<Vec<(String, Vec<JaasEntry>)>, String> {
    let mut tokens = tokenize(text)?.into_iter().peekable();
    let mut sections = Vec::new();
    while let Some(t) = tokens.next() {
        let Token::Word(name) = t else {
            return Err(format!("expected a section name, found {}", describe(Some(&t))));
        };
        if tokens.next() != Some(Token::Punct('{')) {
            return Err(format!("the section {name} does not open with `{{`"));
        }
        let entries = parse_entries(&mut tokens).map_err(|e| format!("in section {name}: {e}"))?;
        if tokens.next() != Some(Token::Punct('}')) {
            return Err(format!("the section {name} is not closed with `}}`"));
        }
        if tokens.next_if_eq(&Token::Punct(';')).is_none() {
            return Err(format!("the section {name} is not ended by `;`"));
        }
        sections.push((name, entries));
    }
    Ok(sections)
}

/// The `<listener>.KafkaServer` section of a JAAS file, else its `KafkaServer` section.
fn read_jaas_file_section(file: &Path, listener_lower: &str) -> Result<Vec<JaasEntry>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read the JAAS file: {e}"))?;
    let sections = parse_jaas_file(&text)?;
    let own = format!("{listener_lower}.KafkaServer");
    sections
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&own))
        .or_else(|| sections.iter().find(|(n, _)| n == "KafkaServer"))
        .map(|(_, e)| e.clone())
        .ok_or_else(|| format!("has no KafkaServer section (nor {own})"))
}

/// The JAAS file named by `-Djava.security.auth.login.config=FILE` in `KAFKA_OPTS`.
pub fn jaas_file_from_java_opts(opts: &str) -> Option<PathBuf> {
    opts.split_whitespace()
        .find_map(|w| w.strip_prefix("-Djava.security.auth.login.config="))
        .map(|p| PathBuf::from(p.trim_matches('"')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_login_module_entries_and_files_parse() {
        let e = parse_jaas_entries(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a;b" user_admin="a;b" user_alice="x\"y";"#,
        )
        .unwrap();
        assert_eq!(e[0].module, PLAIN_MODULE);
        assert_eq!(e[0].options[3], ("user_alice".into(), "x\"y".into()));
        let file = "// comment\nKafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n  user_bob=\"pw\";\n  org.apache.kafka.common.security.scram.ScramLoginModule required;\n};\nClient { a.B required; };\n";
        let s = parse_jaas_file(file).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].1.len(), 2);
        assert!(parse_jaas_entries("Foo required user_a=").is_err());
        assert!(parse_jaas_entries("Foo maybe;").is_err());
        assert!(parse_jaas_file("KafkaServer { Foo required; }").is_err());
        assert_eq!(
            jaas_file_from_java_opts("-Xmx1G -Djava.security.auth.login.config=/etc/kafka/jaas.conf"),
            Some(PathBuf::from("/etc/kafka/jaas.conf"))
        );
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Vec<crate::config::ListenerSpec>, String> {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        crate::config::Config::load(None, &env, &Default::default())
            .and_then(|c| c.listeners())
            .map_err(|e| e.to_string())
    }

    const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    #[test]
    fn sasl_listeners_from_compose_variables() {
        let specs = load(&[
            ("KAFKA_LISTENERS", "SASL_PLAINTEXT://:9094,CONTROLLER://:9093"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN,SCRAM-SHA-512"),
            ("KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL", "PLAIN"),
            ("KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL", "PLAIN"),
            ("KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG", JAAS),
            ("KAFKA_LISTENER_NAME_SASL__PLAINTEXT_SCRAM___SHA___512_CONNECTIONS_MAX_REAUTH_MS", "60000"),
            ("KAFKA_CONNECTIONS_MAX_REAUTH_MS", "1000"),
        ])
        .unwrap();
        let sasl = specs[0].security.sasl().expect("a SASL listener");
        assert_eq!(sasl.mechanisms, [SaslMechanism::Plain, SaslMechanism::ScramSha512]);
        assert_eq!(sasl.plain_users["alice"].0, "alice-secret");
        assert_eq!(sasl.reauth_ms[&SaslMechanism::ScramSha512], 60000);
        assert_eq!(sasl.reauth_ms[&SaslMechanism::Plain], 1000);
        assert_eq!(sasl.failed_authentication_delay_ms, 100);
        assert!(!format!("{sasl:?}").contains("alice-secret"), "passwords never print");
    }

    #[test]
    fn a_jaas_file_from_kafka_opts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jaas.conf");
        std::fs::write(&file, format!("KafkaServer {{\n {JAAS}\n}};\n")).unwrap();
        let opts = format!("-Xmx1G -Djava.security.auth.login.config={}", file.display());
        let specs = load(&[
            ("KAFKA_LISTENERS", "SASL_PLAINTEXT://:9094"),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN"),
            ("KAFKA_OPTS", &opts),
        ])
        .unwrap();
        assert!(specs[0].security.sasl().unwrap().plain_users.contains_key("admin"));
    }

    /// The login a shared-mode broker dials the SASL listener `INTERNAL` with, from settings.
    fn login(pairs: &[(&str, &str)]) -> Result<SaslLogin, String> {
        let mut env: HashMap<String, String> = [
            ("KAFKA_LISTENERS", "PLAINTEXT://:9092,INTERNAL://:9094"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT"),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN,SCRAM-SHA-512"),
        ]
        .iter()
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.retain(|_, v| !v.is_empty());
        let config = crate::config::Config::load(None, &env, &Default::default()).map_err(|e| e.to_string())?;
        let specs = config.listeners().map_err(|e| e.to_string())?;
        let internal = specs.iter().find(|s| s.name == "INTERNAL").and_then(|s| s.security.sasl()).unwrap();
        config.server.inter_broker_login(internal).map_err(|e| e.to_string())
    }

    #[test]
    fn brokers_log_in_to_each_other_as_the_jaas_entry_of_the_inter_broker_mechanism_says() {
        let plain = ("KAFKA_LISTENER_NAME_INTERNAL_PLAIN_SASL_JAAS_CONFIG", JAAS);
        let mechanism = |m| ("KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL", m);
        let l = login(&[plain, mechanism("PLAIN")]).unwrap();
        assert_eq!(
            (l.mechanism, l.username.as_str(), l.password.0.as_str()),
            (SaslMechanism::Plain, "admin", "admin-secret")
        );
        let scram =
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="b-pw";"#;
        let l = login(&[
            plain,
            mechanism("SCRAM-SHA-512"),
            ("KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG", scram),
        ])
        .unwrap();
        assert_eq!(
            (l.mechanism, l.username.as_str(), l.password.0.as_str()),
            (SaslMechanism::ScramSha512, "broker", "b-pw")
        );
        // The un-prefixed sasl.jaas.config serves too.
        let l = login(&[plain, mechanism("SCRAM-SHA-512"), ("KAFKA_SASL_JAAS_CONFIG", scram)]).unwrap();
        assert_eq!(l.username, "broker");

        // Each mistake names what to set.
        let unset = login(&[plain]).unwrap_err();
        assert!(
            unset.contains("KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL") && unset.contains("PLAIN, SCRAM-SHA-512"),
            "{unset}"
        );
        let not_enabled = login(&[plain, mechanism("SCRAM-SHA-256")]).unwrap_err();
        assert!(
            not_enabled.contains("SCRAM-SHA-256 is not enabled on the inter-broker listener INTERNAL"),
            "{not_enabled}"
        );
        let unknown = login(&[plain, mechanism("GSSAPI")]).unwrap_err();
        assert!(unknown.contains("`GSSAPI`"), "{unknown}");
        let no_scram_entry = login(&[plain, mechanism("SCRAM-SHA-512")]).unwrap_err();
        assert!(
            no_scram_entry.contains("KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG"),
            "{no_scram_entry}"
        );
        let users_only = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="pw";"#;
        let no_login =
            login(&[("KAFKA_LISTENER_NAME_INTERNAL_PLAIN_SASL_JAAS_CONFIG", users_only), mechanism("PLAIN")])
                .unwrap_err();
        assert!(
            no_login.contains("has no org.apache.kafka.common.security.plain.PlainLoginModule entry with a username"),
            "{no_login}"
        );
        assert!(!no_login.contains("pw\""), "passwords never print: {no_login}");
        for message in [unset, not_enabled, unknown, no_scram_entry, no_login] {
            assert!(!message.contains("  "), "one sentence, not a text wrapped in spaces: {message}");
        }
    }

    #[test]
    fn sasl_mistakes_say_what_to_set() {
        let listener = ("KAFKA_LISTENERS", "SASL_PLAINTEXT://:9094");
        let none = load(&[listener]).unwrap_err();
        assert!(none.contains("GSSAPI") && none.contains("KAFKA_SASL_ENABLED_MECHANISMS"), "{none}");
        let gssapi = load(&[listener, ("KAFKA_SASL_ENABLED_MECHANISMS", "GSSAPI")]).unwrap_err();
        assert!(gssapi.contains("GSSAPI (Kerberos) is not served"), "{gssapi}");
        let odd = load(&[listener, ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN,FOO")]).unwrap_err();
        assert!(odd.contains("`FOO`"), "{odd}");
        let no_users = load(&[listener, ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN")]).unwrap_err();
        assert!(no_users.contains("listener.name.sasl_plaintext.plain.sasl.jaas.config"), "{no_users}");
        let bad_jaas = load(&[
            listener,
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN"),
            ("KAFKA_SASL_JAAS_CONFIG", "Foo required user_a="),
        ])
        .unwrap_err();
        assert!(bad_jaas.contains("sasl.jaas.config"), "{bad_jaas}");
        // SCRAM alone needs no JAAS users: the credentials are the broker's.
        assert!(load(&[listener, ("KAFKA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-256")]).is_ok());
    }

    #[test]
    fn oauthbearer_is_secured_by_a_jwks_file_or_unsecured_only_when_asked() {
        let listener = ("KAFKA_LISTENERS", "SASL_PLAINTEXT://:9094");
        let mech = ("KAFKA_SASL_ENABLED_MECHANISMS", "OAUTHBEARER");
        let class = "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_OAUTHBEARER_SASL_SERVER_CALLBACK_HANDLER_CLASS";
        let neither = load(&[listener, mech]).unwrap_err();
        assert!(
            neither.contains(SECURED_HANDLER)
                && neither.contains("KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL")
                && neither.contains(UNSECURED_HANDLER),
            "{neither}"
        );
        let no_url = load(&[listener, mech, (class, SECURED_HANDLER)]).unwrap_err();
        assert!(no_url.contains("sasl.oauthbearer.jwks.endpoint.url"), "{no_url}");
        let https = load(&[
            listener,
            mech,
            (class, SECURED_HANDLER),
            ("KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL", "https://idp/keys"),
        ])
        .unwrap_err();
        assert!(https.contains("file only"), "{https}");
        let custom = load(&[listener, mech, (class, "com.example.Mine")]).unwrap_err();
        assert!(custom.contains("com.example.Mine"), "{custom}");

        let unsecured = load(&[listener, mech, (class, UNSECURED_HANDLER)]).unwrap();
        assert!(matches!(
            unsecured[0].security.sasl().unwrap().oauthbearer.as_deref(),
            Some(OAuthBearerValidation::Unsecured(u)) if u.principal_claim == "sub" && u.clock_skew_ms == 0
        ));
        let options = load(&[
            listener,
            mech,
            (
                "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_OAUTHBEARER_SASL_JAAS_CONFIG",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredValidatorRequiredScope=\"a b\" unsecuredValidatorAllowableClockSkewMs=\"500\";",
            ),
        ])
        .unwrap();
        assert!(matches!(
            options[0].security.sasl().unwrap().oauthbearer.as_deref(),
            Some(OAuthBearerValidation::Unsecured(u)) if u.required_scopes == ["a", "b"] && u.clock_skew_ms == 500
        ));

        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"AA","y":"AA"}]}"#).unwrap();
        let url = format!("file://{}", jwks.display());
        let secured = load(&[
            listener,
            mech,
            ("KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL", &url),
            ("KAFKA_SASL_OAUTHBEARER_EXPECTED_AUDIENCE", "kafka, other"),
            ("KAFKA_SASL_OAUTHBEARER_EXPECTED_ISSUER", "https://idp"),
            ("KAFKA_SASL_OAUTHBEARER_SUB_CLAIM_NAME", "client_id"),
            ("KAFKA_SASL_OAUTHBEARER_CLOCK_SKEW_SECONDS", "5"),
            ("KAFKA_LISTENER_NAME_SASL__PLAINTEXT_OAUTHBEARER_CONNECTIONS_MAX_REAUTH_MS", "60000"),
        ])
        .unwrap();
        let sasl = secured[0].security.sasl().unwrap();
        assert_eq!(sasl.reauth_ms[&SaslMechanism::OAuthBearer], 60000);
        match sasl.oauthbearer.as_deref() {
            Some(OAuthBearerValidation::Secured(s)) => {
                assert_eq!(s.expected_audience, ["kafka", "other"]);
                assert_eq!(s.expected_issuer.as_deref(), Some("https://idp"));
                assert_eq!(
                    (s.sub_claim.as_str(), s.scope_claim.as_str(), s.clock_skew_seconds),
                    ("client_id", "scope", 5)
                );
                assert_eq!(s.jwks.keys.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&jwks, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
        let shared = load(&[listener, mech, ("KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL", &url)]).unwrap_err();
        assert!(shared.contains("shared secret"), "{shared}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
