use std::collections::HashMap;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::config::{Config, ListenerSecurity, Overrides};

/// A throwaway CA and what it signed.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca_pem = params.self_signed(&key).unwrap().pem();
        Self { ca_pem, issuer: Issuer::new(params, key) }
    }

    fn leaf(&self, names: &[&str], subject: &[(DnType, &str)]) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        for (ty, value) in subject {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let key = KeyPair::generate().unwrap();
        let cert_pem = params.signed_by(&key, &self.issuer).unwrap().pem();
        Leaf { cert_pem, key_pem: key.serialize_pem(), key }
    }
}

/// The SSL listener's settings from these KAFKA_* variables.
fn settings(pairs: &[(&str, &str)]) -> SslSettings {
    let mut env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.insert("KAFKA_LISTENERS".into(), "SSL://127.0.0.1:0".into());
    let config = Config::load(None, &env, &Overrides::default()).unwrap();
    match config.listeners().unwrap().remove(0).security {
        ListenerSecurity::Ssl(s) => *s,
        other => panic!("SSL listener expected, not {other:?}"),
    }
}

fn build_err(pairs: &[(&str, &str)]) -> String {
    TlsListener::from_settings(&settings(pairs)).unwrap_err().to_string()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn server_leaf(pki: &Pki) -> Leaf {
    pki.leaf(&["localhost", "127.0.0.1"], &[(DnType::CommonName, "broker")])
}

#[test]
fn keystore_as_one_file_or_inline_text() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ca");
    let server = server_leaf(&pki);
    // OpenSSL's pkcs12 output puts "Bag Attributes" text around the blocks.
    let file =
        write(&dir, "server.pem", &format!("Bag Attributes\n{}{}{}", server.key_pem, server.cert_pem, pki.ca_pem));
    TlsListener::from_settings(&settings(&[("KAFKA_SSL_KEYSTORE_LOCATION", &file)])).unwrap();
    // Inline PEM whose line breaks became spaces (an environment variable) still reads.
    let flat = |pem: &str| pem.replace('\n', " ");
    let (key, chain) = (flat(&server.key_pem), flat(&server.cert_pem));
    TlsListener::from_settings(&settings(&[
        ("KAFKA_SSL_KEYSTORE_KEY", &key),
        ("KAFKA_SSL_KEYSTORE_CERTIFICATE_CHAIN", &chain),
        ("KAFKA_SSL_CLIENT_AUTH", "required"),
        ("KAFKA_SSL_TRUSTSTORE_CERTIFICATES", &flat(&pki.ca_pem)),
    ]))
    .unwrap();
}

#[test]
fn encrypted_pkcs8_keys_take_ssl_key_password() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ca");
    let server = server_leaf(&pki);
    let der = server.key.serialize_der();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7; 16]).unwrap();
    let encrypted = info.encrypt_with_params(params, "s3cret").unwrap();
    let key_pem = encrypted.to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF).unwrap();
    let file = write(&dir, "server.pem", &format!("{}{}", *key_pem, server.cert_pem));
    let with =
        |password: &str| settings(&[("KAFKA_SSL_KEYSTORE_LOCATION", &file), ("KAFKA_SSL_KEY_PASSWORD", password)]);
    TlsListener::from_settings(&with("s3cret")).unwrap();
    let err = TlsListener::from_settings(&with("wrong")).unwrap_err().to_string();
    assert!(err.contains("ssl.key.password") && err.contains("wrong password"), "{err}");
    let err = build_err(&[("KAFKA_SSL_KEYSTORE_LOCATION", &file)]);
    assert!(err.contains("ssl.key.password") && err.contains("is encrypted"), "{err}");
    // A password for a key that is not encrypted is not an error (the image always sets one).
    let plain = write(&dir, "plain.pem", &format!("{}{}", server.key_pem, server.cert_pem));
    TlsListener::from_settings(&settings(&[("KAFKA_SSL_KEYSTORE_LOCATION", &plain), ("KAFKA_SSL_KEY_PASSWORD", "x")]))
        .unwrap();
}

#[test]
#[allow(clippy::type_complexity)]
fn store_mistakes_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ca");
    let server = server_leaf(&pki);
    let other = server_leaf(&pki);
    let good = write(&dir, "good.pem", &format!("{}{}", server.key_pem, server.cert_pem));
    let ca = write(&dir, "ca.pem", &pki.ca_pem);
    let cases: Vec<(Vec<(&str, String)>, &str, &str)> = vec![
        (vec![("KAFKA_SSL_KEYSTORE_LOCATION", "/no/such.pem".into())], "ssl.keystore.location", "cannot read /no/such.pem"),
        (
            vec![("KAFKA_SSL_KEYSTORE_LOCATION", write(&dir, "nocert.pem", &server.key_pem))],
            "ssl.keystore.location",
            "holds no certificate",
        ),
        (
            vec![("KAFKA_SSL_KEYSTORE_LOCATION", write(&dir, "nokey.pem", &server.cert_pem))],
            "ssl.keystore.location",
            "exactly one private key",
        ),
        (
            vec![(
                "KAFKA_SSL_KEYSTORE_LOCATION",
                write(&dir, "twokeys.pem", &format!("{}{}{}", server.key_pem, other.key_pem, server.cert_pem)),
            )],
            "ssl.keystore.location",
            "exactly one private key",
        ),
        (
            vec![("KAFKA_SSL_KEYSTORE_LOCATION", write(&dir, "mismatch.pem", &format!("{}{}", other.key_pem, server.cert_pem)))],
            "ssl.keystore.location",
            "do not go together",
        ),
        (
            vec![(
                "KAFKA_SSL_KEYSTORE_LOCATION",
                write(
                    &dir,
                    "legacy.pem",
                    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
                ),
            )],
            "ssl.keystore.location",
            "traditional format",
        ),
        (
            vec![("KAFKA_SSL_KEYSTORE_LOCATION", write(&dir, "broken.pem", "-----BEGIN CERTIFICATE-----\n%%%\n"))],
            "ssl.keystore.location",
            "no `-----END CERTIFICATE-----` line",
        ),
        (
            vec![
                ("KAFKA_SSL_KEYSTORE_LOCATION", good.clone()),
                ("KAFKA_SSL_CLIENT_AUTH", "required".into()),
                ("KAFKA_SSL_TRUSTSTORE_LOCATION", "/no/ca.pem".into()),
            ],
            "ssl.truststore.location",
            "cannot read /no/ca.pem",
        ),
        (
            vec![
                ("KAFKA_SSL_KEYSTORE_LOCATION", good.clone()),
                ("KAFKA_SSL_CLIENT_AUTH", "requested".into()),
                ("KAFKA_SSL_TRUSTSTORE_CERTIFICATES", "not pem".into()),
            ],
            "ssl.truststore.certificates",
            "holds no CA certificate",
        ),
        (
            vec![
                ("KAFKA_SSL_KEYSTORE_LOCATION", good.clone()),
                ("KAFKA_SSL_CIPHER_SUITES", "TLS_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_MD5".into()),
            ],
            "ssl.cipher.suites",
            "`TLS_RSA_WITH_RC4_128_MD5` is not a cipher suite gregor offers",
        ),
        (
            vec![
                ("KAFKA_SSL_KEYSTORE_LOCATION", good.clone()),
                ("KAFKA_SSL_ENABLED_PROTOCOLS", "TLSv1.3".into()),
                ("KAFKA_SSL_CIPHER_SUITES", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()),
            ],
            "ssl.cipher.suites",
            "no cipher suite left",
        ),
    ];
    for (pairs, key, want) in &cases {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let err = build_err(&pairs);
        assert!(err.contains(key) && err.contains(want), "{pairs:?}:\n{err}");
    }
    // Kafka's (IANA) names and rustls' own both pick suites.
    TlsListener::from_settings(&settings(&[
        ("KAFKA_SSL_KEYSTORE_LOCATION", &good),
        (
            "KAFKA_SSL_CIPHER_SUITES",
            "TLS_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        ("KAFKA_SSL_CLIENT_AUTH", "required"),
        ("KAFKA_SSL_TRUSTSTORE_LOCATION", &ca),
    ]))
    .unwrap();
}

/// A TLS client over an in-memory pipe: its handshake and the server's, side by side.
async fn handshake(
    listener: &TlsListener,
    trusted_ca: &str,
    client_cert: Option<&Leaf>,
) -> (Result<Principal, HandshakeError>, Result<(), std::io::Error>) {
    let mut roots = RootCertStore::empty();
    for block in pem_blocks(trusted_ca).unwrap() {
        roots.add(CertificateDer::from(block.der)).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some(leaf) => {
            let chain = vec![CertificateDer::from(pem_blocks(&leaf.cert_pem).unwrap().remove(0).der)];
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let client = async move {
        let mut tls = connector.connect(name, client_io).await?;
        // TLS 1.3 servers reject a client certificate after the client's side is done: a round
        // trip shows whether the server kept the connection.
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        Ok(())
    };
    let server = async {
        let (mut tls, principal) = listener.accept(server_io, Duration::from_secs(10)).await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(HandshakeError::Tls)?;
        tls.write_all(&buf).await.map_err(HandshakeError::Tls)?;
        tls.flush().await.map_err(HandshakeError::Tls)?;
        Ok(principal)
    };
    let (server, client) = tokio::join!(server, client);
    (server, client)
}

#[tokio::test]
async fn the_handshake_names_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ca");
    let server = server_leaf(&pki);
    let keystore = write(&dir, "server.pem", &format!("{}{}", server.key_pem, server.cert_pem));
    let ca = write(&dir, "ca.pem", &pki.ca_pem);
    let alice = pki.leaf(
        &[],
        &[(DnType::CountryName, "DE"), (DnType::OrganizationName, "Acme, Inc."), (DnType::CommonName, "Alice")],
    );
    let listener = |auth: &str, rules: &str| {
        TlsListener::from_settings(&settings(&[
            ("KAFKA_SSL_KEYSTORE_LOCATION", &keystore),
            ("KAFKA_SSL_TRUSTSTORE_LOCATION", &ca),
            ("KAFKA_SSL_CLIENT_AUTH", auth),
            ("KAFKA_SSL_PRINCIPAL_MAPPING_RULES", rules),
        ]))
        .unwrap()
    };

    // The subject as Java prints it, through the rules.
    let (principal, client) = handshake(&listener("required", "DEFAULT"), &pki.ca_pem, Some(&alice)).await;
    client.unwrap();
    assert_eq!(principal.unwrap().to_string(), r"User:CN=Alice,O=Acme\, Inc.,C=DE");
    let (principal, _) =
        handshake(&listener("required", "RULE:^CN=([^,]+),O=.*$/$1/L,DEFAULT"), &pki.ca_pem, Some(&alice)).await;
    assert_eq!(principal.unwrap(), Principal::user("alice"));
    let (principal, _) = handshake(&listener("required", "RULE:^CN=bob.*$/bob/"), &pki.ca_pem, Some(&alice)).await;
    assert!(matches!(principal, Err(HandshakeError::NoMappingRule { .. })), "{principal:?}");

    // No certificate: anonymous where one is only requested, refused where it is required.
    let (principal, client) = handshake(&listener("requested", "DEFAULT"), &pki.ca_pem, None).await;
    client.unwrap();
    assert_eq!(principal.unwrap(), Principal::anonymous());
    let (principal, client) = handshake(&listener("required", "DEFAULT"), &pki.ca_pem, None).await;
    assert!(matches!(principal, Err(HandshakeError::Tls(_))), "{principal:?}");
    assert!(client.is_err());
    // With client auth off, a client's certificate is not asked for: anonymous.
    let (principal, _) = handshake(&listener("none", "DEFAULT"), &pki.ca_pem, Some(&alice)).await;
    assert_eq!(principal.unwrap(), Principal::anonymous());

    // A certificate from another CA is refused, also where certificates are only requested.
    let stranger = Pki::new("other ca").leaf(&[], &[(DnType::CommonName, "mallory")]);
    for auth in ["requested", "required"] {
        let (principal, client) = handshake(&listener(auth, "DEFAULT"), &pki.ca_pem, Some(&stranger)).await;
        assert!(matches!(principal, Err(HandshakeError::Tls(_))), "{auth}: {principal:?}");
        assert!(client.is_err());
    }
    // A client that trusts another CA gives up on the broker.
    let (principal, client) = handshake(&listener("none", "DEFAULT"), &Pki::new("x").ca_pem, None).await;
    assert!(principal.is_err() && client.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ca");
    let server = server_leaf(&pki);
    let keystore = write(&dir, "server.pem", &format!("{}{}", server.key_pem, server.cert_pem));
    let listener = TlsListener::from_settings(&settings(&[("KAFKA_SSL_KEYSTORE_LOCATION", &keystore)])).unwrap();
    let (_client, server_io) = tokio::io::duplex(1024);
    let err = listener.accept(server_io, Duration::from_secs(3)).await.unwrap_err();
    assert!(matches!(err, HandshakeError::Timeout(d) if d == Duration::from_secs(3)), "{err}");
}

/// A broker dialling another checks the certificate's chain always, and that it names the host
/// dialled unless `ssl.endpoint.identification.algorithm` is empty. Before, the setting was
/// ignored: brokers whose certificates do not name the addresses they dial each other at
/// could not reach each other at all.
#[tokio::test]
async fn a_dialling_broker_checks_the_host_name_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("ca");
    let own = server_leaf(&pki);
    let keystore = write(&dir, "own.pem", &format!("{}{}", own.key_pem, own.cert_pem));
    let ca = write(&dir, "ca.pem", &pki.ca_pem);
    // The broker dialled: a certificate for another name, or from another CA.
    let elsewhere = pki.leaf(&["broker-9.example"], &[(DnType::CommonName, "broker-9")]);
    let stranger = Pki::new("other ca").leaf(&["localhost"], &[(DnType::CommonName, "mallory")]);
    let dial = |algorithm: Option<&str>, leaf: &Leaf| {
        let mut pairs =
            vec![("KAFKA_SSL_KEYSTORE_LOCATION", keystore.as_str()), ("KAFKA_SSL_TRUSTSTORE_LOCATION", ca.as_str())];
        if let Some(a) = algorithm {
            pairs.push(("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", a));
        }
        let connector = dialer(&settings(&pairs)).unwrap();
        let served = write(&dir, "served.pem", &format!("{}{}", leaf.key_pem, leaf.cert_pem));
        let listener = TlsListener::from_settings(&settings(&[("KAFKA_SSL_KEYSTORE_LOCATION", &served)])).unwrap();
        async move {
            let (client_io, server_io) = tokio::io::duplex(64 * 1024);
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let client = async {
                let mut tls = connector.connect(name, client_io).await?;
                tls.write_all(b"ping").await?;
                let mut buf = [0u8; 4];
                tls.read_exact(&mut buf).await.map(|_| ())
            };
            let server = async {
                let Ok((mut tls, _)) = listener.accept(server_io, Duration::from_secs(10)).await else { return };
                let mut buf = [0u8; 4];
                if tls.read_exact(&mut buf).await.is_ok() {
                    let _ = tls.write_all(&buf).await;
                    let _ = tls.flush().await;
                }
            };
            tokio::join!(client, server).0
        }
    };
    dial(None, &own).await.expect("a certificate for the host dialled");
    let named = dial(None, &elsewhere).await.unwrap_err();
    assert!(named.to_string().contains("not valid for name"), "{named}");
    dial(Some("HTTPS"), &elsewhere).await.unwrap_err();
    dial(Some("LDAPS"), &elsewhere).await.unwrap_err();
    dial(Some(""), &elsewhere).await.expect("no host name check when the algorithm is empty");
    dial(Some(" "), &elsewhere).await.expect("blank is empty");
    for algorithm in [None, Some("")] {
        dial(algorithm, &stranger).await.expect_err("another CA's certificate is refused all the same");
    }
    let wrong = Config::load(
        None,
        &HashMap::from([
            ("KAFKA_LISTENERS".to_string(), "SSL://127.0.0.1:0".to_string()),
            ("KAFKA_SSL_KEYSTORE_LOCATION".to_string(), keystore.clone()),
            ("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM".to_string(), "sha256".to_string()),
        ]),
        &Overrides::default(),
    )
    .and_then(|c| c.listeners())
    .unwrap_err()
    .to_string();
    assert!(wrong.contains("ssl.endpoint.identification.algorithm") && wrong.contains("`sha256`"), "{wrong}");
}
