use super::*;
use crate::auth::scram::{Upsertion, SCRAM_SHA_256, SCRAM_SHA_512};
use proptest::prelude::*;

fn settings(mechanisms: &[SaslMechanism], reauth_ms: u64) -> Arc<SaslSettings> {
    Arc::new(SaslSettings {
        listener: "SASL_PLAINTEXT".into(),
        mechanisms: mechanisms.to_vec(),
        plain_users: Arc::new(HashMap::from([("alice".to_string(), Secret("alice-secret".into()))])),
        reauth_ms: mechanisms.iter().map(|m| (*m, reauth_ms)).collect(),
        failed_authentication_delay_ms: 100,
        oauthbearer: None,
    })
}

fn store_with(user: &str, mechanism: i8, password: &str) -> (tempfile::TempDir, ScramStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ScramStore::open(crate::auth::kept::FileKeeper::new(dir.path())).unwrap();
    let salt = b"0123456789abcdef".to_vec();
    let salted = scram::salt_password(mechanism, password, &salt, 4096);
    let r = store
        .alter(&[], &[Upsertion { user: user.into(), mechanism, iterations: 4096, salt, salted_password: salted }]);
    assert!(r[0].1.is_ok());
    (dir, store)
}

/// A SCRAM client: runs the exchange through `auth` and returns the final outcome.
fn scram_login(
    auth: &mut Authenticator,
    store: &ScramStore,
    mechanism: i8,
    user: &str,
    password: &str,
) -> Authenticate {
    let now = Instant::now();
    let mut client = scram::ScramClient::new(mechanism, user, password);
    let server_first = match auth.authenticate(&client.first(), store, now) {
        Authenticate::Continue(b) => b,
        other => return other,
    };
    let nonce = String::from_utf8(server_first.clone()).unwrap();
    assert!(nonce.len() > "r=,".len() + 2 * 32, "the server adds its own nonce: {nonce}");
    let outcome = auth.authenticate(&client.answer(&server_first).unwrap(), store, now);
    if let Authenticate::Done { reply, .. } = &outcome {
        client.verify(reply).expect("the server proves it knows the key");
    }
    outcome
}

fn start(auth: &mut Authenticator, mechanism: &str) {
    let now = Instant::now();
    assert_eq!(auth.admit(RequestKind::ApiVersions, now), Admit::Serve);
    assert_eq!(auth.admit(RequestKind::SaslHandshake, now), Admit::Handshake);
    assert_eq!(auth.handshake(mechanism, now), Handshake::Accepted);
    assert_eq!(auth.admit(RequestKind::SaslAuthenticate, now), Admit::Authenticate);
}

#[test]
fn scram_sha_256_and_512_authenticate_with_the_stored_credentials() {
    for (mech, code) in [(SaslMechanism::ScramSha256, SCRAM_SHA_256), (SaslMechanism::ScramSha512, SCRAM_SHA_512)] {
        let (_dir, store) = store_with("bob", code, "bob-pw");
        let mut auth = Authenticator::new(settings(&[mech], 0));
        start(&mut auth, mech.kafka_name());
        match scram_login(&mut auth, &store, code, "bob", "bob-pw") {
            Authenticate::Done { principal, session_lifetime_ms, .. } => {
                assert_eq!(principal, Principal::user("bob"));
                assert_eq!(session_lifetime_ms, 0);
            }
            other => panic!("{mech:?}: {other:?}"),
        }
        assert!(auth.is_authenticated());
        assert_eq!(auth.admit(RequestKind::Other, Instant::now()), Admit::Serve);
    }
}

#[test]
fn wrong_password_and_unknown_user_fail_alike() {
    let (_dir, store) = store_with("bob", SCRAM_SHA_256, "bob-pw");
    let mut messages = Vec::new();
    for (user, password) in [("bob", "wrong"), ("nobody", "bob-pw")] {
        let mut auth = Authenticator::new(settings(&[SaslMechanism::ScramSha256], 0));
        start(&mut auth, "SCRAM-SHA-256");
        match scram_login(&mut auth, &store, SCRAM_SHA_256, user, password) {
            Authenticate::Failed(m) => messages.push(m),
            other => panic!("{user}: {other:?}"),
        }
    }
    assert_eq!(messages[0], messages[1], "an unknown user is not told apart from a wrong password");
    assert_eq!(
        messages[0],
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
    );
    // The stand-in salt is the same each time, as a real user's would be.
    assert_eq!(stand_in_credential("nobody", SCRAM_SHA_256).salt, stand_in_credential("nobody", SCRAM_SHA_256).salt);
}

#[test]
fn scram_refuses_tokenauth_other_authzids_and_channel_binding() {
    for first in ["n,,n=bob,r=abc,tokenauth=true", "n,a=eve,n=bob,r=abc", "p=tls-unique,,n=bob,r=abc", "n,,n=bob"] {
        assert!(parse_client_first(first.as_bytes()).is_none(), "{first}");
    }
    let ok = parse_client_first(b"n,a=b=2Cob,n=b=2Cob,r=abc").unwrap();
    assert_eq!((ok.user.as_str(), ok.gs2_header.as_str()), ("b,ob", "n,a=b=2Cob,"));
}

#[test]
fn plain_checks_users_and_authzid_as_kafka() {
    let users = HashMap::from([("alice".to_string(), Secret("pw".into()))]);
    assert_eq!(check_plain(b"\0alice\0pw", &users), Ok("alice".into()));
    assert_eq!(check_plain(b"alice\0alice\0pw", &users), Ok("alice".into()));
    let wrong = "Authentication failed: Invalid username or password";
    assert_eq!(check_plain(b"\0alice\0nope", &users).unwrap_err(), wrong);
    assert_eq!(check_plain(b"\0mallory\0pw", &users).unwrap_err(), wrong);
    assert!(check_plain(b"bob\0alice\0pw", &users).unwrap_err().contains("authorization id"));
    assert!(check_plain(b"alice\0pw", &users).unwrap_err().contains("expected 3 tokens, got 2"));
}

#[test]
fn requests_before_authentication_close_and_failures_are_final() {
    let now = Instant::now();
    let mut auth = Authenticator::new(settings(&[SaslMechanism::Plain], 0));
    assert!(matches!(auth.admit(RequestKind::Other, now), Admit::Close(_)), "Metadata before the handshake");
    let mut auth = Authenticator::new(settings(&[SaslMechanism::Plain], 0));
    assert!(matches!(auth.admit(RequestKind::SaslAuthenticate, now), Admit::Close(_)));
    let mut auth = Authenticator::new(settings(&[SaslMechanism::Plain], 0));
    assert_eq!(auth.admit(RequestKind::ApiVersions, now), Admit::Serve);
    assert!(matches!(auth.admit(RequestKind::ApiVersions, now), Admit::Close(_)), "ApiVersions twice");
    assert_eq!(auth.handshake("GSSAPI", now), Handshake::Unsupported);
    let mut auth = Authenticator::new(settings(&[SaslMechanism::Plain], 0));
    start(&mut auth, "PLAIN");
    assert_eq!(auth.admit(RequestKind::SaslHandshake, now), Admit::IllegalHandshake);
    assert!(matches!(auth.admit(RequestKind::Other, now), Admit::Close(_)));
}

#[test]
fn sessions_expire_and_reauthentication_keeps_the_principal() {
    let (_dir, store) = store_with("bob", SCRAM_SHA_256, "bob-pw");
    let mut auth = Authenticator::new(settings(&[SaslMechanism::Plain, SaslMechanism::ScramSha256], 1000));
    start(&mut auth, "PLAIN");
    let t0 = Instant::now();
    match auth.authenticate(b"\0alice\0alice-secret", &store, t0) {
        Authenticate::Done { session_lifetime_ms, .. } => assert_eq!(session_lifetime_ms, 1000),
        other => panic!("{other:?}"),
    }
    assert_eq!(auth.admit(RequestKind::Other, t0 + Duration::from_millis(999)), Admit::Serve);
    assert!(matches!(auth.admit(RequestKind::Other, t0 + Duration::from_millis(1000)), Admit::Close(_)));
    // Re-authentication, as the same user: the session is renewed.
    let t1 = t0 + Duration::from_millis(900);
    assert_eq!(auth.admit(RequestKind::SaslHandshake, t1), Admit::Handshake);
    assert_eq!(auth.handshake("PLAIN", t1), Handshake::Accepted);
    assert!(matches!(auth.authenticate(b"\0alice\0alice-secret", &store, t1), Authenticate::Done { .. }));
    assert_eq!(auth.admit(RequestKind::Other, t1 + Duration::from_millis(999)), Admit::Serve);
    // Not again within a second: the handshake goes to the registry (ILLEGAL_SASL_STATE).
    assert_eq!(auth.admit(RequestKind::SaslHandshake, t1 + Duration::from_millis(500)), Admit::Serve);
    // As someone else: refused.
    let t2 = t1 + Duration::from_millis(1500);
    let users = HashMap::from([
        ("alice".to_string(), Secret("alice-secret".into())),
        ("carol".to_string(), Secret("c".into())),
    ]);
    let mut s = (*settings(&[SaslMechanism::Plain, SaslMechanism::ScramSha256], 1000)).clone();
    s.plain_users = Arc::new(users);
    auth.settings = Arc::new(s);
    assert_eq!(auth.admit(RequestKind::SaslHandshake, t2), Admit::Handshake);
    auth.handshake("PLAIN", t2);
    match auth.authenticate(b"\0carol\0c", &store, t2) {
        Authenticate::Failed(m) => assert!(m.contains("Cannot change principals"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reauthentication_with_another_mechanism_fails() {
    let (_dir, store) = store_with("alice", SCRAM_SHA_256, "alice-secret");
    let mut auth = Authenticator::new(settings(&[SaslMechanism::Plain, SaslMechanism::ScramSha256], 1000));
    start(&mut auth, "PLAIN");
    let t0 = Instant::now();
    assert!(matches!(auth.authenticate(b"\0alice\0alice-secret", &store, t0), Authenticate::Done { .. }));
    assert_eq!(auth.handshake("SCRAM-SHA-256", t0), Handshake::Accepted);
    match auth.authenticate(b"n,,n=alice,r=x", &store, t0) {
        Authenticate::Failed(m) => assert!(m.contains("not supported for re-authentication"), "{m}"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn the_message_parsers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let users = HashMap::from([("alice".to_string(), Secret("pw".into()))]);
        let _ = check_plain(&bytes, &users);
        let _ = parse_client_first(&bytes);
        let _ = parse_client_final(&bytes);
        let _ = decode_sasl_name(&String::from_utf8_lossy(&bytes));
        let mut first = ScramExchange::new(SCRAM_SHA_512);
        let _ = first.step(&bytes, |_, _| None);
        let _ = first.step(&bytes, |_, _| None);
    }

    #[test]
    fn a_scram_exchange_survives_any_final_message(tail in "[ -~]{0,80}") {
        let mut ex = ScramExchange::new(SCRAM_SHA_256);
        let step = ex.step(b"n,,n=u,r=abc", |_, _| None);
        prop_assert!(matches!(step, Step::Continue(_)));
        let step = ex.step(tail.as_bytes(), |_, _| None);
        prop_assert_eq!(step, Step::Fail(Failure::Credentials));
    }
}

/// The script the `sasl_exchange` fuzz target runs (fuzz/sasl_script.rs), here under proptest
/// so that every `cargo test` checks the same property without nightly or cargo-fuzz.
mod script {
    use super::*;

    include!(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/sasl_script.rs"));

    /// A store with the script's SCRAM users; the salting (4096 rounds each) is done once.
    fn script_store() -> (tempfile::TempDir, ScramStore) {
        static UPSERTIONS: std::sync::OnceLock<Vec<Upsertion>> = std::sync::OnceLock::new();
        let upsertions = UPSERTIONS.get_or_init(|| {
            let salt = b"proptest-salt".to_vec();
            SCRIPT_SCRAM_USERS
                .iter()
                .map(|(user, mechanism, password)| Upsertion {
                    user: user.to_string(),
                    mechanism: *mechanism,
                    iterations: 4096,
                    salt: salt.clone(),
                    salted_password: scram::salt_password(*mechanism, password, &salt, 4096),
                })
                .collect()
        });
        let dir = tempfile::tempdir().unwrap();
        let store = ScramStore::open(crate::auth::kept::FileKeeper::new(dir.path())).unwrap();
        assert!(store.alter(&[], upsertions).iter().all(|(_, r)| r.is_ok()));
        (dir, store)
    }

    #[test]
    fn the_script_users_are_the_ones_the_constants_name() {
        assert_eq!((SCRIPT_SCRAM_USERS[0].1, SCRIPT_SCRAM_USERS[1].1), (SCRAM_SHA_256, SCRAM_SHA_512));
    }

    #[test]
    fn a_scripted_plain_login_serves_requests_afterwards() {
        let (_dir, store) = script_store();
        // ApiVersions, handshake PLAIN, the right PLAIN token, then a request of another kind.
        assert_eq!(run_sasl_script(&[0, 0, 1, 0, 3, 0, 7], &store), (1, 1));
        // The same with a wrong password: the login fails and the script ends there.
        assert_eq!(run_sasl_script(&[0, 0, 1, 0, 3, 1, 7], &store), (0, 0));
        // A request of another kind first: closed, nothing served.
        assert_eq!(run_sasl_script(&[0, 7, 0, 1, 0, 3, 0, 7], &store), (0, 0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn any_sasl_script_keeps_the_gate_and_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let (_dir, store) = script_store();
            let _ = run_sasl_script(&data, &store);
        }

        /// Scripts made mostly of well-formed steps, so they get deep into SCRAM and through
        /// re-authentication more often than uniform bytes do.
        #[test]
        fn well_formed_sasl_scripts_keep_the_gate(
            reauth in any::<bool>(),
            steps in proptest::collection::vec((0u8..9, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..24),
        ) {
            let (_dir, store) = script_store();
            let mut data = vec![u8::from(reauth)];
            for (op, arg, tail) in steps {
                data.push(op);
                data.push(arg);
                data.push(tail.len() as u8);
                data.extend(tail);
            }
            let _ = run_sasl_script(&data, &store);
        }
    }
}

/// A 2048-bit RSA key for the RS256 tests only (PKCS#1 DER, base64), made with openssl genrsa.
const RSA_TEST_KEY: &str = concat!(
    "MIIEpAIBAAKCAQEAo1hPK1E/3WGEPrscHMrF+qkw3q5ie9N+dhacYME0tvKM0pfO8qWPkrVl+ZLQ15SnHRm9wsKsxc4yfxo6oaQW",
    "doiIfF6CRUzsq1lwodRQd3OZZhQ+wYnx6zJTFAo5asKLR7O9aBMbwzykM1G17GXnddoIPUYNo45MpEkxCFeLkqjDeRing3ROn5P5",
    "elU0bp31U5+GqHReuYlw0rXdWpWxEiUp65I9jPFNyheeE94f5x1J3szv3zzHW1VdHQhLfn7nrvZZSCq6Fy+NEWUxtl734eCHjAXc",
    "P/A06MIBv7IAILshKnFuojIY5JfTsaeK1Ae8Gz8/V4eIp4y0Qo5Yl7utNwIDAQABAoIBADCngEV12SEXB+4ri68j0x7bwJvDs8AQ",
    "ei2whHnpcss/qiScZV8vY3meoLZbPevI8pIfdb+Kfy4YQkBLzsUQ/EPoXUc2W3VK+X/8jykU9bbu7vVR+HNrpGybO9XPSdT8B8Ke",
    "zj8u2ekoqfxDTX4RyIT5IdUmha9/FmMlDf7fHMrdEiEiIkh1ujiKzRrEab7SP+3gzQIPMGN3zi0bQ5hvwgPpN9EOzkFWaekTrZ0W",
    "rhz0otOLH58kjfdYY2/AfEulDWagVxKNW4SL90KBSYNIrhq9IwnNshw3mGFn9aP1g0XYmnVqaTKCLCyBg28lXKTkT67gKdYNeIVp",
    "waEzYdxJt5kCgYEA01rNuhJCPS06jPY3RNT0R1lVHhA9KnZRepT5pPy1tzrLkAwXo0/P1NXSBHRQAoA9TolSq6E38+44TfoMTnYb",
    "2d5w0q+GF/2qWu9WmA+OqCYtAz1Y94n90sowPErMPr94dIYWIptKD0DUY0h0c1rI7Vy4pH919f3XkwwOSb+jHHMCgYEAxdlV2/QM",
    "OZ/roy5lgYEjuPczA7kQV1xANx4f4MTAED6RYPr/SWN7DTB4jWdsSn4rOFnzPeeYQMJ36pX7lMziPzF6Nlbo4MKRTXubHgs9I9/N",
    "F5sAuEFQY+qAhpNfYq2thiAudwrPPjs8NR0P2ALg0xUiGjEpZMc8n7Y+jWY7Xy0CgYEAm6tPx3LXUtPTQiu+/XWUDlEfvirbwkCv",
    "Nogvb3OqK7Ckag5eAq0wOGTccOdyXsUxYn0GZN8zpPiag+Rd2BRp4whRNPyO2XC+XofV0d3zhqnHkZFHy9rZFr5Q1LeKw9Sm1bxE",
    "5WxXGfD3/cBJ9QSy5RDb9lzi9zHl66p/g5Ygfz0CgYEAvQGzFD1AsIwl/+4C6oUEK198TMIu6kYm0oDk00UidmJPX+ZomyN+GkuD",
    "3xI+UavWfi7wQONOgA9Hn8NIZA6W1OffaKn+LzmwteSvezQhZHQY6cQaG+vJcKpFvkprhUmFy+xSd0bMVRchnVv2FtYpEX3O5law",
    "xKXRNIJVn59aeMECgYA8yht0DC+lRkHRwyEAxoDifomCl0x0vJy0GR29vObXAgAAMw/3yj+k/P0O1w1cHmE2pB86LK8nlgQiscsO",
    "mSr8HusGDoHaL8WE6UHsoP3UwTTy/Ubj0KlI1PPGwi1D7uponvaFhKcdPUnb2Z32uMNIEoY2FeaSe+laDUn0Zo3BXA==",
);
/// Its modulus, base64url.
const RSA_TEST_N: &str = concat!(
    "o1hPK1E_3WGEPrscHMrF-qkw3q5ie9N-dhacYME0tvKM0pfO8qWPkrVl-ZLQ15SnHRm9wsKsxc4yfxo6oaQWdoiIfF6CRUzsq1lw",
    "odRQd3OZZhQ-wYnx6zJTFAo5asKLR7O9aBMbwzykM1G17GXnddoIPUYNo45MpEkxCFeLkqjDeRing3ROn5P5elU0bp31U5-GqHRe",
    "uYlw0rXdWpWxEiUp65I9jPFNyheeE94f5x1J3szv3zzHW1VdHQhLfn7nrvZZSCq6Fy-NEWUxtl734eCHjAXcP_A06MIBv7IAILsh",
    "KnFuojIY5JfTsaeK1Ae8Gz8_V4eIp4y0Qo5Yl7utNw",
);

mod oauth {
    use super::*;
    use crate::auth::sasl::oauthbearer::{parse_client_initial, INVALID_TOKEN};
    use crate::config::{OAuthBearerValidation, SecuredOAuthBearer, UnsecuredOAuthBearer};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use std::time::{SystemTime, UNIX_EPOCH};

    const NOW: u64 = 1_800_000_000;

    fn wall(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn b64url(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// An EC P-256 key: its signing key and its JWK with `kid`.
    fn ec_key(kid: &str) -> (EncodingKey, serde_json::Value) {
        let kp = rcgen::KeyPair::generate().unwrap();
        let raw = kp.public_key_raw();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])});
        (EncodingKey::from_ec_der(&kp.serialize_der()), jwk)
    }

    fn rsa_key(kid: &str) -> (EncodingKey, serde_json::Value) {
        let der = B64.decode(RSA_TEST_KEY).unwrap();
        (EncodingKey::from_rsa_der(&der), json!({"kty": "RSA", "kid": kid, "n": RSA_TEST_N, "e": "AQAB"}))
    }

    fn secured(keys: &[serde_json::Value], audience: &[&str], issuer: Option<&str>) -> SecuredOAuthBearer {
        SecuredOAuthBearer {
            jwks_url: "file:///jwks.json".into(),
            jwks: serde_json::from_value(json!({ "keys": keys })).unwrap(),
            expected_audience: audience.iter().map(|a| a.to_string()).collect(),
            expected_issuer: issuer.map(String::from),
            sub_claim: "sub".into(),
            scope_claim: "scope".into(),
            clock_skew_seconds: 30,
        }
    }

    fn oauth_settings(validation: OAuthBearerValidation, reauth_ms: u64) -> Arc<SaslSettings> {
        let mut s = (*settings(&[SaslMechanism::OAuthBearer], reauth_ms)).clone();
        s.oauthbearer = Some(Arc::new(validation));
        Arc::new(s)
    }

    fn claims(sub: &str, exp: u64) -> serde_json::Value {
        json!({"sub": sub, "iat": NOW - 10, "exp": exp, "scope": "read write"})
    }

    fn sign(key: &EncodingKey, alg: jsonwebtoken::Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(String::from);
        encode(&header, claims, key).unwrap()
    }

    fn message(token: &str) -> Vec<u8> {
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    /// Runs the exchange with `msg` at `NOW` and, if the token is refused, acknowledges the
    /// error as clients do.
    fn login(settings: &Arc<SaslSettings>, msg: &[u8]) -> Authenticate {
        let (_dir, store) = store_with("nobody", SCRAM_SHA_256, "x");
        let mut auth = Authenticator::new(settings.clone());
        start(&mut auth, "OAUTHBEARER");
        let now = Instant::now();
        match auth.authenticate_at(msg, &store, now, wall(NOW)) {
            Authenticate::Continue(reply) => {
                assert_eq!(reply, INVALID_TOKEN.as_bytes(), "a refused token gets RFC 7628's error");
                assert_eq!(auth.admit(RequestKind::SaslAuthenticate, now), Admit::Authenticate);
                auth.authenticate_at(b"\x01", &store, now, wall(NOW))
            }
            other => other,
        }
    }

    fn assert_refused(outcome: Authenticate, what: &str) {
        match outcome {
            Authenticate::Failed(m) => {
                assert!(m.contains("invalid_token"), "{what}: {m}");
                for hint in ["exp", "kid", "aud", "iss", "signature", "alg"] {
                    assert!(!m.contains(hint), "{what}: the message says which part was wrong: {m}");
                }
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    #[test]
    fn a_good_token_signed_es256_or_rs256_authenticates_its_subject() {
        let (ec, ec_jwk) = ec_key("ec-1");
        let (rsa, rsa_jwk) = rsa_key("rsa-1");
        let s = oauth_settings(OAuthBearerValidation::Secured(secured(&[ec_jwk, rsa_jwk], &[], None)), 0);
        for (key, alg, kid) in
            [(&ec, jsonwebtoken::Algorithm::ES256, "ec-1"), (&rsa, jsonwebtoken::Algorithm::RS256, "rsa-1")]
        {
            let token = sign(key, alg, Some(kid), &claims("alice", NOW + 600));
            match login(&s, &message(&token)) {
                Authenticate::Done { principal, session_lifetime_ms, reply } => {
                    assert_eq!(principal, Principal::user("alice"));
                    assert!(reply.is_empty());
                    assert_eq!(session_lifetime_ms, 600_000, "the session ends with the token");
                }
                other => panic!("{alg:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_session_ends_with_the_token_or_connections_max_reauth_ms_whichever_is_first() {
        let (ec, jwk) = ec_key("k");
        let token = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &claims("alice", NOW + 600));
        let short =
            oauth_settings(OAuthBearerValidation::Secured(secured(std::slice::from_ref(&jwk), &[], None)), 60_000);
        let long = oauth_settings(OAuthBearerValidation::Secured(secured(&[jwk], &[], None)), 3_600_000);
        for (s, want) in [(short, 60_000), (long.clone(), 600_000)] {
            match login(&s, &message(&token)) {
                Authenticate::Done { session_lifetime_ms, .. } => assert_eq!(session_lifetime_ms, want),
                other => panic!("{other:?}"),
            }
        }
        // Once the token's time is up, only a re-authentication is served.
        let (_dir, store) = store_with("nobody", SCRAM_SHA_256, "x");
        let mut auth = Authenticator::new(long);
        start(&mut auth, "OAUTHBEARER");
        let t0 = Instant::now();
        assert!(matches!(auth.authenticate_at(&message(&token), &store, t0, wall(NOW)), Authenticate::Done { .. }));
        assert_eq!(auth.admit(RequestKind::Other, t0 + Duration::from_secs(599)), Admit::Serve);
        assert!(matches!(auth.admit(RequestKind::Other, t0 + Duration::from_secs(601)), Admit::Close(_)));
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused_within_the_clock_skew() {
        let (ec, jwk) = ec_key("k");
        let s = oauth_settings(OAuthBearerValidation::Secured(secured(&[jwk], &[], None)), 0);
        let expired = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &claims("alice", NOW - 31));
        assert_refused(login(&s, &message(&expired)), "expired");
        // 10 s past exp is inside the 30 s skew: accepted, with a session of 1 ms (not "no limit").
        let late = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &claims("alice", NOW - 10));
        assert!(matches!(login(&s, &message(&late)), Authenticate::Done { session_lifetime_ms: 1, .. }));
        let mut early = claims("alice", NOW + 600);
        early["nbf"] = json!(NOW + 60);
        assert_refused(login(&s, &message(&sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &early))), "nbf");
        let mut future = claims("alice", NOW + 600);
        future["iat"] = json!(NOW + 60);
        assert_refused(login(&s, &message(&sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &future))), "iat");
        let mut no_iat = claims("alice", NOW + 600);
        no_iat.as_object_mut().unwrap().remove("iat");
        assert_refused(login(&s, &message(&sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &no_iat))), "no iat");
        let no_sub = json!({"iat": NOW, "exp": NOW + 600});
        assert_refused(login(&s, &message(&sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &no_sub))), "no sub");
    }

    #[test]
    fn wrong_signatures_kids_and_algorithms_are_refused() {
        let (ec, jwk) = ec_key("k");
        let (other, _) = ec_key("k");
        let (rsa, rsa_jwk) = rsa_key("r");
        let s = oauth_settings(OAuthBearerValidation::Secured(secured(&[jwk, rsa_jwk], &[], None)), 0);
        let good = claims("alice", NOW + 600);
        let forged = sign(&other, jsonwebtoken::Algorithm::ES256, Some("k"), &good);
        assert_refused(login(&s, &message(&forged)), "another key's signature");
        let unknown_kid = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("nope"), &good);
        assert_refused(login(&s, &message(&unknown_kid)), "unknown kid");
        let no_kid = sign(&ec, jsonwebtoken::Algorithm::ES256, None, &good);
        assert_refused(login(&s, &message(&no_kid)), "no kid among several keys");
        let wrong_family = sign(&rsa, jsonwebtoken::Algorithm::RS256, Some("k"), &good);
        assert_refused(login(&s, &message(&wrong_family)), "an RSA signature for the EC key");
        // A payload changed after signing.
        let good_token = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &good);
        let parts: Vec<&str> = good_token.split('.').collect();
        let evil = b64url(serde_json::to_vec(&claims("admin", NOW + 600)).unwrap().as_slice());
        assert_refused(login(&s, &message(&format!("{}.{evil}.{}", parts[0], parts[2]))), "changed payload");
        // alg none is never accepted by the secured validator.
        let none = format!("{}.{}.", b64url(br#"{"alg":"none","kid":"k"}"#), parts[1]);
        assert_refused(login(&s, &message(&none)), "alg none");
        let hs = format!("{}.{}.{}", b64url(br#"{"alg":"HS256","kid":"k"}"#), parts[1], parts[2]);
        assert_refused(login(&s, &message(&hs)), "HS256 with a public key");
        // With a single key a token without kid is checked against it.
        let (single, single_jwk) = ec_key("only");
        let one = oauth_settings(OAuthBearerValidation::Secured(secured(&[single_jwk], &[], None)), 0);
        let token = sign(&single, jsonwebtoken::Algorithm::ES256, None, &good);
        assert!(matches!(login(&one, &message(&token)), Authenticate::Done { .. }));
    }

    #[test]
    fn audience_and_issuer_are_checked_when_configured() {
        let (ec, jwk) = ec_key("k");
        let s = oauth_settings(
            OAuthBearerValidation::Secured(secured(
                std::slice::from_ref(&jwk),
                &["kafka", "other"],
                Some("https://idp"),
            )),
            0,
        );
        let with = |aud: Option<serde_json::Value>, iss: Option<&str>| {
            let mut c = claims("alice", NOW + 600);
            if let Some(a) = aud {
                c["aud"] = a;
            }
            if let Some(i) = iss {
                c["iss"] = json!(i);
            }
            message(&sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &c))
        };
        assert!(matches!(login(&s, &with(Some(json!("kafka")), Some("https://idp"))), Authenticate::Done { .. }));
        assert!(matches!(
            login(&s, &with(Some(json!(["x", "other"])), Some("https://idp"))),
            Authenticate::Done { .. }
        ));
        assert_refused(login(&s, &with(Some(json!("billing")), Some("https://idp"))), "wrong aud");
        assert_refused(login(&s, &with(None, Some("https://idp"))), "no aud");
        assert_refused(login(&s, &with(Some(json!("kafka")), Some("https://evil"))), "wrong iss");
        assert_refused(login(&s, &with(Some(json!("kafka")), None)), "no iss");
        // Without an expected audience a token that names one is refused, as Kafka's jose4j does.
        let open = oauth_settings(OAuthBearerValidation::Secured(secured(&[jwk], &[], None)), 0);
        assert_refused(login(&open, &with(Some(json!("kafka")), None)), "aud nobody expects");
    }

    #[test]
    fn malformed_client_messages_fail_at_once_without_a_hint() {
        let (ec, jwk) = ec_key("k");
        let s = oauth_settings(OAuthBearerValidation::Secured(secured(&[jwk], &[], None)), 0);
        let token = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &claims("alice", NOW + 600));
        let bad: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\x01".to_vec(),
            format!("y,,\x01auth=Bearer {token}\x01\x01").into_bytes(),
            format!("n,,auth=Bearer {token}\x01\x01").into_bytes(),
            format!("n,,\x01auth=Bearer {token}\x01").into_bytes(),
            format!("n,,\x01auth=Basic {token}\x01\x01").into_bytes(),
            format!("n,,\x01auth=Bearer{token}\x01\x01").into_bytes(),
            format!("n,,\x01auth=Bearer {token}\x01auth=Bearer {token}\x01\x01").into_bytes(),
            b"n,,\x01\x01".to_vec(),
            b"n,,\x01k=v\x01\x01".to_vec(),
            format!("n,x,\x01auth=Bearer {token}\x01\x01").into_bytes(),
            format!("n,,\x01auth=Bearer {token}!\x01\x01").into_bytes(),
            vec![0xff, 0xfe, 0x01],
        ];
        for m in bad {
            match login(&s, &m) {
                Authenticate::Failed(msg) => assert!(
                    msg.contains("invalid credentials with SASL mechanism OAUTHBEARER"),
                    "{:?}: {msg}",
                    String::from_utf8_lossy(&m)
                ),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(&m)),
            }
        }
        // After the JSON error only `^A` is taken; the exchange then fails all the same.
        let (_dir, store) = store_with("nobody", SCRAM_SHA_256, "x");
        let mut auth = Authenticator::new(s.clone());
        start(&mut auth, "OAUTHBEARER");
        let now = Instant::now();
        assert!(matches!(auth.authenticate_at(&message("a.b.c"), &store, now, wall(NOW)), Authenticate::Continue(_)));
        assert!(matches!(
            auth.authenticate_at(&message(&token), &store, now, wall(NOW)),
            Authenticate::Failed(m) if m.contains("invalid credentials")
        ));
    }

    #[test]
    fn extensions_and_the_authorization_id() {
        let m = "n,a=alice,\x01auth=Bearer abc.def.ghi\x01traceId=x 1\x01region=eu\x01\x01";
        let parsed = parse_client_initial(m.as_bytes()).unwrap();
        assert_eq!(parsed.authzid, "alice");
        assert_eq!(parsed.token, "abc.def.ghi");
        assert_eq!(parsed.extensions, [("traceId".into(), "x 1".into()), ("region".into(), "eu".into())]);
        for bad in ["1x=a", "a_b=c", "k=", "k=\u{7f}", "k=é"] {
            let m = format!("n,,\x01auth=Bearer abc\x01{bad}\x01\x01");
            assert!(parse_client_initial(m.as_bytes()).is_none(), "{bad}");
        }
        let dup = "n,,\x01auth=Bearer abc\x01k=a\x01k=b\x01\x01";
        assert!(parse_client_initial(dup.as_bytes()).is_none());

        let (ec, jwk) = ec_key("k");
        let s = oauth_settings(OAuthBearerValidation::Secured(secured(&[jwk], &[], None)), 0);
        let token = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &claims("alice", NOW + 600));
        let with_ext = format!("n,,\x01auth=Bearer {token}\x01logicalCluster=lkc-1\x01\x01");
        assert!(matches!(login(&s, with_ext.as_bytes()), Authenticate::Done { .. }), "extensions are accepted");
        let own = format!("n,a=alice,\x01auth=Bearer {token}\x01\x01");
        assert!(matches!(login(&s, own.as_bytes()), Authenticate::Done { .. }));
        let other = format!("n,a=admin,\x01auth=Bearer {token}\x01\x01");
        assert!(matches!(login(&s, other.as_bytes()), Authenticate::Failed(m) if m.contains("authorization id")));
    }

    #[test]
    fn unsecured_tokens_only_with_the_unsecured_validator() {
        let unsigned = |c: &serde_json::Value| {
            format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(serde_json::to_vec(c).unwrap().as_slice()))
        };
        let u = UnsecuredOAuthBearer {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scopes: vec!["write".into()],
            clock_skew_ms: 0,
        };
        let s = oauth_settings(OAuthBearerValidation::Unsecured(u), 0);
        match login(&s, &message(&unsigned(&claims("dev", NOW + 60)))) {
            Authenticate::Done { principal, session_lifetime_ms, .. } => {
                assert_eq!(principal, Principal::user("dev"));
                assert_eq!(session_lifetime_ms, 60_000);
            }
            other => panic!("{other:?}"),
        }
        assert_refused(login(&s, &message(&unsigned(&claims("dev", NOW)))), "expired");
        let mut narrow = claims("dev", NOW + 60);
        narrow["scope"] = json!(["read"]);
        assert_refused(login(&s, &message(&unsigned(&narrow))), "lacks a required scope");
        let (ec, jwk) = ec_key("k");
        let signed = sign(&ec, jsonwebtoken::Algorithm::ES256, Some("k"), &claims("dev", NOW + 60));
        assert_refused(login(&s, &message(&signed)), "a signed token to the unsecured validator");
        let secured_settings = oauth_settings(OAuthBearerValidation::Secured(secured(&[jwk], &[], None)), 0);
        assert_refused(login(&secured_settings, &message(&unsigned(&claims("dev", NOW + 60)))), "alg none, secured");
    }
}
