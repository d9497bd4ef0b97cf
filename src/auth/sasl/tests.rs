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
    let store = ScramStore::open(dir.path()).unwrap();
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
    let first_bare = format!("n={user},r=clientnonce123");
    let server_first = match auth.authenticate(format!("n,,{first_bare}").as_bytes(), store, now) {
        Authenticate::Continue(b) => String::from_utf8(b).unwrap(),
        other => return other,
    };
    let mut attrs = server_first.split(',');
    let nonce = attrs.next().unwrap().strip_prefix("r=").unwrap().to_string();
    assert!(nonce.starts_with("clientnonce123") && nonce.len() > "clientnonce123".len() + 16);
    let salt = B64.decode(attrs.next().unwrap().strip_prefix("s=").unwrap()).unwrap();
    let iterations: i32 = attrs.next().unwrap().strip_prefix("i=").unwrap().parse().unwrap();
    let salted = scram::salt_password(mechanism, password, &salt, iterations);
    let client_key = scram::hmac(mechanism, &salted, b"Client Key");
    let stored_key = scram::hash(mechanism, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = scram::hmac(mechanism, &stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    let outcome = auth.authenticate(format!("{without_proof},p={}", B64.encode(proof)).as_bytes(), store, now);
    if let Authenticate::Done { reply, .. } = &outcome {
        let server_key = scram::hmac(mechanism, &salted, b"Server Key");
        let expected = format!("v={}", B64.encode(scram::hmac(mechanism, &server_key, auth_message.as_bytes())));
        assert_eq!(String::from_utf8(reply.clone()).unwrap(), expected, "the server proves it knows the key");
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
