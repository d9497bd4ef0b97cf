//! TLS for SSL listeners: the rustls server configuration built from a listener's
//! [`SslSettings`], and the handshake that turns an accepted socket into an encrypted stream
//! and a [`Principal`].
//!
//! Owns: reading the PEM keystore and truststore (files or inline text), decrypting an
//! encrypted PKCS#8 key with `ssl.key.password`, Kafka's cipher suite and protocol names,
//! client certificate verification (`ssl.client.auth`), and the principal of a verified client
//! certificate (its subject through `ssl.principal.mapping.rules`).
//!
//! Invariants: everything that can be wrong with the settings or the files is found when the
//! listener is built, at start, and reported naming the setting; a handshake runs inside its
//! connection's task under a deadline and its failure concerns that connection alone.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pkcs8::der::pem;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tracing::{info, warn};

use crate::auth::dn::{self, DnError};
use crate::auth::ssl_mapping::SslPrincipalMapper;
use crate::auth::Principal;
use crate::config::{ClientAuth, ConfigError, KeySource, SslSettings, TlsVersion, TrustSource};

/// An SSL listener's TLS side: what the handshake needs, ready for every connection.
pub struct TlsListener {
    acceptor: tokio_rustls::TlsAcceptor,
    mapper: SslPrincipalMapper,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").field("mapper", &self.mapper).finish_non_exhaustive()
    }
}

/// Why a handshake ended without a usable connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("no TLS handshake within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error(transparent)]
    Subject(DnError),
    #[error("no ssl.principal.mapping.rules rule applies to the client certificate's subject `{dn}`")]
    NoMappingRule { dn: String },
}

impl TlsListener {
    /// Reads the keystore and truststore and builds the TLS configuration. Every failure is a
    /// [`ConfigError`] naming the setting at fault.
    pub fn from_settings(settings: &SslSettings) -> Result<Self, ConfigError> {
        let bad = |field: &str, reason: String| ConfigError::BadValue {
            key: settings.key(field),
            origin: format!("configuration of the SSL listener {}", settings.listener),
            reason,
        };
        let provider = provider(&settings.cipher_suites).map_err(|reason| bad("cipher_suites", reason))?;
        let (chain, key) = keystore(settings, &bad)?;
        let versions = protocol_versions(settings);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| bad("cipher_suites", format!("no cipher suite left for {:?}: {e}", settings.protocols)))?;
        let builder = match settings.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let (field, roots) = truststore(settings, &bad)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
                let verifier = verifier.build().map_err(|e| bad(field, e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            bad(key_field(settings), format!("the private key and the certificate chain do not go together: {e}"))
        })?;
        let mapper = SslPrincipalMapper::parse(&settings.principal_mapping_rules)
            .map_err(|e| bad("principal_mapping_rules", e.to_string()))?;
        if settings.client_auth == ClientAuth::None && settings.truststore.is_some() {
            info!(listener = %settings.listener, "ssl.client.auth is none: the truststore is not used");
        }
        for key in &settings.unused_passwords {
            info!(listener = %settings.listener, setting = %key, "PEM files have no store password; it is not used");
        }
        Ok(Self { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), mapper })
    }

    /// Runs the server side of the handshake within `deadline`, then works out the client's
    /// principal: `User:ANONYMOUS` without a certificate, else its subject through the mapping
    /// rules.
    pub async fn accept<S>(&self, stream: S, deadline: Duration) -> Result<(TlsStream<S>, Principal), HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = match tokio::time::timeout(deadline, self.acceptor.accept(stream)).await {
            Err(_) => return Err(HandshakeError::Timeout(deadline)),
            Ok(Err(e)) => return Err(HandshakeError::Tls(e)),
            Ok(Ok(tls)) => tls,
        };
        let principal = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            None => Principal::anonymous(),
            Some(leaf) => {
                let dn = dn::subject_rfc2253(leaf).map_err(HandshakeError::Subject)?;
                let name = self.mapper.name_for(&dn).ok_or(HandshakeError::NoMappingRule { dn })?;
                Principal::user(name)
            }
        };
        Ok((tls, principal))
    }
}

/// Kafka spells cipher suites as IANA does; rustls calls the TLS 1.3 ones `TLS13_*`.
fn iana_name(suite: &SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or("unknown");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_string(),
    }
}

/// The ring provider, its cipher suites cut down to `names` when any are given.
fn provider(names: &[String]) -> Result<Arc<CryptoProvider>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if names.is_empty() {
        return Ok(Arc::new(provider));
    }
    let all = provider.cipher_suites.clone();
    let mut chosen = Vec::new();
    for name in names {
        let suite = all.iter().find(|s| iana_name(s) == *name || s.suite().as_str() == Some(name.as_str()));
        match suite {
            Some(s) => chosen.push(*s),
            None => {
                let offered: Vec<String> = all.iter().map(iana_name).collect();
                return Err(format!("`{name}` is not a cipher suite gregor offers; it offers {}", offered.join(", ")));
            }
        }
    }
    provider.cipher_suites = chosen;
    Ok(Arc::new(provider))
}

/// One PEM block: its label and its DER bytes.
struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// The PEM blocks of `text`, in order. Kafka reads PEM whose line breaks were lost on the way
/// (an environment variable, a properties value continued over lines), so this does too: the
/// base64 between the markers may be broken anywhere or not at all. Text outside blocks
/// (OpenSSL's "Bag Attributes") is skipped.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let label_end = after.find("-----").ok_or("a BEGIN line is not closed by -----")?;
        let label = after[..label_end].trim().to_string();
        let body_and_rest = &after[label_end + "-----".len()..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_and_rest.find(&end_marker).ok_or_else(|| format!("no `{end_marker}` line"))?;
        let body = &body_and_rest[..body_end];
        if body.contains(':') {
            // Headers (Proc-Type, DEK-Info): OpenSSL's traditional encrypted key format.
            return Err(format!(
                "the {label} is encrypted in OpenSSL's traditional format, which Kafka does not read either; \
                 convert it to encrypted PKCS#8 (`openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`) \
                 or decrypt it (`openssl pkey -in KEY -out KEY.plain`)"
            ));
        }
        let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let mut canonical = format!("-----BEGIN {label}-----\n");
        for line in base64.as_bytes().chunks(64) {
            canonical.push_str(std::str::from_utf8(line).map_err(|_| format!("the {label} is not base64"))?);
            canonical.push('\n');
        }
        canonical.push_str(&end_marker);
        canonical.push('\n');
        let (_, der) =
            pem::decode_vec(canonical.as_bytes()).map_err(|e| format!("the {label} is not valid PEM: {e}"))?;
        blocks.push(PemBlock { label, der });
        rest = &body_and_rest[body_end + end_marker.len()..];
    }
    Ok(blocks)
}

/// The TLS side of a broker dialling the other brokers on an SSL inter-broker listener
/// (shared mode): it verifies their certificates against the listener's truststore, host name
/// included unless `ssl.endpoint.identification.algorithm` is empty, and presents its own
/// keystore's certificate, so that a listener requiring client certificates
/// (`ssl.client.auth=required`) takes it and maps its subject to the brokers' principal.
/// Every failure is a [`ConfigError`] naming the setting at fault.
pub fn dialer(settings: &SslSettings) -> Result<tokio_rustls::TlsConnector, ConfigError> {
    let bad = |field: &str, reason: String| ConfigError::BadValue {
        key: settings.key(field),
        origin: format!("configuration of the inter-broker listener {}", settings.listener),
        reason,
    };
    let provider = provider(&settings.cipher_suites).map_err(|reason| bad("cipher_suites", reason))?;
    if settings.truststore.is_none() {
        return Err(bad(
            "truststore_location",
            "is needed: brokers reaching each other on an SSL listener verify each other's certificates against it"
                .into(),
        ));
    }
    let (_, roots) = truststore(settings, &bad)?;
    let (chain, key) = keystore(settings, &bad)?;
    let versions = protocol_versions(settings);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| bad("cipher_suites", format!("no cipher suite left for {:?}: {e}", settings.protocols)))?;
    let builder = match settings.verify_hostname {
        true => builder.with_root_certificates(roots),
        false => {
            let chain = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad("truststore_location", format!("cannot verify certificates with it: {e}")))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
        }
    };
    let config = builder.with_client_auth_cert(chain, key).map_err(|e| {
        bad(key_field(settings), format!("the private key and the certificate chain do not go together: {e}"))
    })?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Checks a broker's certificate chain against the truststore but not that it names the
/// host dialled (`ssl.endpoint.identification.algorithm` empty): the name check is the last
/// one made, so a certificate failing only it passed everything else.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(NotValidForName | NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The setting the private key came from.
fn key_field(settings: &SslSettings) -> &'static str {
    match settings.keystore {
        KeySource::File(_) => "keystore_location",
        KeySource::Inline { .. } => "keystore_key",
    }
}

/// The TLS versions offered (`ssl.enabled.protocols`).
fn protocol_versions(settings: &SslSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    settings
        .protocols
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

fn read_pem_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

type Bad<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// The listener's certificate chain (leaf first) and private key.
fn keystore(
    settings: &SslSettings,
    bad: Bad<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let (key_blocks, chain_blocks, key_field, chain_field) = match &settings.keystore {
        KeySource::File(path) => {
            let text = read_pem_file(path).map_err(|r| bad("keystore_location", r))?;
            let blocks = pem_blocks(&text).map_err(|r| bad("keystore_location", format!("{}: {r}", path.display())))?;
            let (keys, certs) = blocks.into_iter().partition(|b| b.label.contains("PRIVATE KEY"));
            (keys, certs, "keystore_location", "keystore_location")
        }
        KeySource::Inline { key, chain } => {
            let keys = pem_blocks(key).map_err(|r| bad("keystore_key", r))?;
            let certs = pem_blocks(chain).map_err(|r| bad("keystore_certificate_chain", r))?;
            (keys, certs, "keystore_key", "keystore_certificate_chain")
        }
    };
    let chain: Vec<CertificateDer<'static>> =
        chain_blocks.into_iter().filter(|b| b.label == "CERTIFICATE").map(|b| CertificateDer::from(b.der)).collect();
    if chain.is_empty() {
        return Err(bad(chain_field, "holds no certificate (a `BEGIN CERTIFICATE` block)".into()));
    }
    let mut keys = key_blocks.into_iter();
    let (Some(block), None) = (keys.next(), keys.next()) else {
        return Err(bad(key_field, "must hold exactly one private key (a `BEGIN PRIVATE KEY` block)".into()));
    };
    let password = settings.key_password.as_deref();
    let key = match block.label.as_str() {
        "ENCRYPTED PRIVATE KEY" => {
            let Some(password) = password else {
                return Err(bad(
                    "key_password",
                    format!("is not set, and the private key of {} is encrypted", settings.key(key_field)),
                ));
            };
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(block.der.as_slice())
                .map_err(|e| bad(key_field, format!("the encrypted private key cannot be read: {e}")))?;
            let plain = info.decrypt(password).map_err(|e| {
                bad("key_password", format!("cannot decrypt the private key with it (wrong password?): {e}"))
            })?;
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec()))
        }
        label => {
            if password.is_some() {
                warn!(listener = %settings.listener, setting = %settings.key("key_password"),
                    "the private key is not encrypted; its password is not used");
            }
            match label {
                "PRIVATE KEY" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(block.der)),
                "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(block.der)),
                "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(block.der)),
                other => return Err(bad(key_field, format!("`{other}` is not a private key format gregor reads"))),
            }
        }
    };
    Ok((chain, key))
}

/// The CA certificates client certificates (or, dialling, the other brokers' certificates) are
/// verified against, and the setting they came from.
fn truststore(settings: &SslSettings, bad: Bad<'_>) -> Result<(&'static str, RootCertStore), ConfigError> {
    let (field, blocks) = match &settings.truststore {
        Some(TrustSource::File(path)) => {
            let text = read_pem_file(path).map_err(|r| bad("truststore_location", r))?;
            let blocks =
                pem_blocks(&text).map_err(|r| bad("truststore_location", format!("{}: {r}", path.display())))?;
            ("truststore_location", blocks)
        }
        Some(TrustSource::Inline(text)) => {
            ("truststore_certificates", pem_blocks(text).map_err(|r| bad("truststore_certificates", r))?)
        }
        // Config::listeners refuses client authentication without a truststore.
        None => return Err(bad("truststore_location", "is needed to verify client certificates".into())),
    };
    let mut roots = RootCertStore::empty();
    for block in blocks.into_iter().filter(|b| b.label == "CERTIFICATE") {
        roots.add(CertificateDer::from(block.der)).map_err(|e| bad(field, format!("a CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad(field, "holds no CA certificate (a `BEGIN CERTIFICATE` block)".into()));
    }
    Ok((field, roots))
}

#[cfg(test)]
mod tests;
