// The SASL exchange driven by arbitrary bytes: shared by the cargo-fuzz target
// `fuzz_targets/sasl_exchange.rs` and the proptest in `src/auth/sasl/tests.rs`, which both
// `include!` this file after importing `Authenticator`, `Admit`, `Authenticate`, `Handshake`,
// `RequestKind`, `SaslMechanism`, `SaslSettings`, `Secret`, `ScramStore`, `Arc`, `HashMap`,
// `Duration` and `Instant` (from `gregor::...` in the fuzz crate, `crate::...` in the tests).
//
// The bytes are read as a script of requests on one connection of a SASL listener, served
// the way `handlers::sasl` serves them: every request goes through `admit` first, and the
// handshake and authenticate steps only when `admit` hands them over. The script ends where
// the broker would close the connection. Besides "no panic", every step checks the one
// property that matters most: nothing but ApiVersions and the SASL exchange is ever served
// before `Authenticate::Done`.

/// The SCRAM users the store behind the script holds (user, mechanism, password).
pub const SCRIPT_SCRAM_USERS: [(&str, i8, &str); 2] = [("bob", 1, "bob-secret"), ("carol", 2, "carol-secret")];

/// The listener settings a script runs under: every mechanism, PLAIN user alice, and (when
/// `reauth` is set) sessions of one second, so expiry and re-authentication are reachable.
pub fn script_settings(reauth: bool) -> Arc<SaslSettings> {
    let lifetime = if reauth { 1000 } else { 0 };
    Arc::new(SaslSettings {
        listener: "SASL_SSL".into(),
        mechanisms: SaslMechanism::ALL.to_vec(),
        plain_users: Arc::new(HashMap::from([("alice".to_string(), Secret("alice-secret".into()))])),
        reauth_ms: SaslMechanism::ALL.iter().map(|m| (*m, lifetime)).collect(),
        failed_authentication_delay_ms: 0,
        // OAUTHBEARER is offered with no validator: every token is refused, its parsing still runs.
        oauthbearer: None,
    })
}

/// Reads a script's bytes one at a time; past the end it reads zeros.
struct ScriptBytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl ScriptBytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.at.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.at = start + n;
        &self.data[start..end]
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// Runs the script in `data` against a fresh authenticator; panics on a broken invariant.
/// Returns how many logins succeeded and how many other requests were served after them.
pub fn run_sasl_script(data: &[u8], store: &ScramStore) -> (usize, usize) {
    let mut input = ScriptBytes { data, at: 0 };
    let mut auth = Authenticator::new(script_settings(input.byte() & 1 == 1));
    let mut now = Instant::now();
    let mut authenticated_once = false;
    let (mut logins, mut served) = (0, 0);
    // The last server-first message of a SCRAM exchange, to build a client-final from.
    let mut server_first: Option<String> = None;
    for _ in 0..64 {
        if input.done() {
            break;
        }
        let op = input.byte() % 9;
        let kind = match op {
            0 => RequestKind::ApiVersions,
            1 => RequestKind::SaslHandshake,
            2..=6 => RequestKind::SaslAuthenticate,
            7 => RequestKind::Other,
            _ => {
                // Time passes: up to 25.5 s, beyond any session of the settings above.
                now += Duration::from_millis(u64::from(input.byte()) * 100);
                continue;
            }
        };
        let admit = auth.admit(kind, now);
        if admit == Admit::Serve {
            // The property: only ApiVersions is served to a client that has not logged in.
            assert!(
                kind == RequestKind::ApiVersions || auth.is_authenticated(),
                "{kind:?} served before authentication"
            );
            assert!(kind != RequestKind::Other || authenticated_once, "{kind:?} served without a login");
            served += usize::from(kind == RequestKind::Other);
            continue;
        }
        match admit {
            Admit::Serve => unreachable!("handled above"),
            Admit::Close(_) | Admit::IllegalHandshake => return (logins, served),
            Admit::Handshake => {
                assert_eq!(kind, RequestKind::SaslHandshake, "admit chose a handshake for {kind:?}");
                let mechanism = match input.byte() % 6 {
                    0 => "PLAIN".to_string(),
                    1 => "SCRAM-SHA-256".to_string(),
                    2 => "SCRAM-SHA-512".to_string(),
                    3 => "GSSAPI".to_string(),
                    4 => "OAUTHBEARER".to_string(),
                    _ => {
                        let n = usize::from(input.byte() % 24);
                        String::from_utf8_lossy(input.take(n)).into_owned()
                    }
                };
                server_first = None;
                if auth.handshake(&mechanism, now) == Handshake::Unsupported {
                    assert!(SaslMechanism::from_kafka_name(&mechanism).is_none(), "{mechanism} refused");
                    return (logins, served);
                }
            }
            Admit::Authenticate => {
                assert_eq!(kind, RequestKind::SaslAuthenticate, "admit chose authenticate for {kind:?}");
                let token: Vec<u8> = match op {
                    // Raw bytes.
                    2 => {
                        let n = usize::from(input.byte());
                        input.take(n).to_vec()
                    }
                    // PLAIN, right or wrong.
                    3 => {
                        let password = if input.byte() & 1 == 0 { "alice-secret" } else { "wrong" };
                        format!("\0alice\0{password}").into_bytes()
                    }
                    // A SCRAM client-first for a user that exists, or not, with a chosen nonce.
                    4 => {
                        let user = ["bob", "carol", "nobody", "=2C", ""][usize::from(input.byte() % 5)];
                        let n = usize::from(input.byte() % 32);
                        let nonce = String::from_utf8_lossy(input.take(n)).into_owned();
                        format!("n,,n={user},r={nonce}").into_bytes()
                    }
                    // A SCRAM client-final that carries the server's nonce and a wrong proof.
                    5 => {
                        let nonce = server_first
                            .as_deref()
                            .and_then(|s| s.split(',').find_map(|a| a.strip_prefix("r=")))
                            .unwrap_or("none")
                            .to_string();
                        let n = usize::from(input.byte() % 64);
                        let proof: String = input.take(n).iter().map(|b| char::from(b'A' + b % 26)).collect();
                        format!("c=biws,r={nonce},p={proof}").into_bytes()
                    }
                    // A SCRAM client-final with its tail made of raw bytes.
                    _ => {
                        let n = usize::from(input.byte());
                        [b"c=biws,r=".as_slice(), input.take(n)].concat()
                    }
                };
                match auth.authenticate(&token, store, now) {
                    Authenticate::Continue(reply) => {
                        assert!(!auth.is_authenticated() || authenticated_once, "a half exchange authenticated");
                        server_first = Some(String::from_utf8_lossy(&reply).into_owned());
                    }
                    Authenticate::Done { principal, session_lifetime_ms, .. } => {
                        assert!(auth.is_authenticated(), "Done without an authenticated session");
                        assert!(session_lifetime_ms >= 0, "negative session lifetime");
                        // Only a right password logs in: garbage never does.
                        let known = principal.name == "alice"
                            || SCRIPT_SCRAM_USERS.iter().any(|(user, _, _)| principal.name == *user);
                        assert!(known, "logged in as {principal}, who has no credentials");
                        if principal.name == "alice" {
                            // "\0alice\0alice-secret", or with alice as the authzid as well.
                            assert!(token.ends_with(b"\0alice\0alice-secret"), "PLAIN accepted {token:?}");
                        }
                        authenticated_once = true;
                        logins += 1;
                        server_first = None;
                    }
                    Authenticate::Failed(message) => {
                        assert!(!message.is_empty(), "a failure without a message");
                        return (logins, served);
                    }
                }
            }
        }
    }
    (logins, served)
}
