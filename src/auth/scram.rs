//! SCRAM credentials (SCRAM-SHA-256 and SCRAM-SHA-512, RFC 5802/7677), managed as Kafka
//! manages them with KIP-554's AlterUserScramCredentials and DescribeUserScramCredentials.
//!
//! A client never sends a password: it sends a salt, an iteration count and the salted
//! password (PBKDF2 of the password). The broker keeps only what SCRAM needs to check a client
//! and prove itself — the salt, the iterations, `StoredKey = H(HMAC(salted, "Client Key"))` and
//! `ServerKey = HMAC(salted, "Server Key")` — never the password or the salted password. A
//! [`Keeper`] keeps them (on one node `<log.dir>/__scram_credentials.json`, readable by the
//! broker's user only; in shared mode the coordination store, so that a user can log in to
//! every broker of the cluster), written before a change is acknowledged. The rules for a request (validation,
//! messages, one change per user per request) are those of Kafka 4.1's ScramControlManager.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use super::kept::{Keeper, Lines, Records};

/// Kafka's mechanism codes.
pub const SCRAM_SHA_256: i8 = 1;
pub const SCRAM_SHA_512: i8 = 2;
/// Kafka's bounds on the iteration count.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// What is kept for one user and mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// A credential to set, as AlterUserScramCredentials carries it.
#[derive(Debug, Clone)]
pub struct Upsertion {
    pub user: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// Kafka: UNACCEPTABLE_CREDENTIAL.
    #[error("{0}")]
    Unacceptable(String),
    /// Kafka: UNSUPPORTED_SASL_MECHANISM.
    #[error("Unknown SCRAM mechanism")]
    UnknownMechanism,
    /// Kafka: RESOURCE_NOT_FOUND.
    #[error("{0}")]
    NotFound(&'static str),
    /// Kafka: DUPLICATE_RESOURCE.
    #[error("{0}")]
    Duplicate(&'static str),
    /// Writing the credentials failed (Kafka: UNKNOWN_SERVER_ERROR).
    #[error("the credentials could not be stored: {0}")]
    Storage(String),
}

/// HMAC with the mechanism's hash.
pub fn hmac(mechanism: i8, key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    match mechanism {
        SCRAM_SHA_512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// What a client derives from its password before SCRAM (RFC 5802's Hi: PBKDF2 with the
/// mechanism's HMAC); the broker never sees it, admin clients send it with AlterUserScramCredentials.
pub fn salt_password(mechanism: i8, password: &str, salt: &[u8], iterations: i32) -> Vec<u8> {
    let mut u = hmac(mechanism, password.as_bytes(), &[salt, &1u32.to_be_bytes()].concat());
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(mechanism, password.as_bytes(), &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// The mechanism's hash.
pub fn hash(mechanism: i8, data: &[u8]) -> Vec<u8> {
    match mechanism {
        SCRAM_SHA_512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

impl Credential {
    /// The stored and server keys of a salted password.
    pub fn from_salted(mechanism: i8, salt: Vec<u8>, salted_password: &[u8], iterations: i32) -> Self {
        let client_key = hmac(mechanism, salted_password, b"Client Key");
        Self {
            salt,
            stored_key: hash(mechanism, &client_key),
            server_key: hmac(mechanism, salted_password, b"Server Key"),
            iterations,
        }
    }
}

fn check_user_and_mechanism(user: &str, mechanism: i8) -> Result<(), ScramError> {
    if user.is_empty() {
        return Err(ScramError::Unacceptable("Username must not be empty".into()));
    }
    if !matches!(mechanism, SCRAM_SHA_256 | SCRAM_SHA_512) {
        return Err(ScramError::UnknownMechanism);
    }
    Ok(())
}

/// One line of the credentials' document.
#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    user: String,
    mechanism: i8,
    #[serde(flatten)]
    credential: Credential,
}

/// The credentials of every user.
#[derive(Debug)]
pub struct ScramStore {
    credentials: Records<Credentials>,
}

/// Every user's credentials, by (user, mechanism).
type Credentials = BTreeMap<(String, i8), Credential>;

impl Lines for Credentials {
    type Line = Line;
    fn from_lines(lines: Vec<Line>) -> Result<Self, String> {
        Ok(lines.into_iter().map(|l| ((l.user, l.mechanism), l.credential)).collect())
    }
    fn to_lines(&self) -> Vec<Line> {
        self.iter()
            .map(|((user, mechanism), credential)| Line {
                user: user.clone(),
                mechanism: *mechanism,
                credential: credential.clone(),
            })
            .collect()
    }
}

/// A user's (mechanism, iterations), or why they cannot be described.
pub type Described = Result<Vec<(i8, i32)>, ScramError>;

/// The name of the credentials' document.
pub const DOCUMENT: &str = "scram_credentials";
const TWICE: &str = "A user credential cannot be altered twice in the same request";

impl ScramStore {
    pub fn open(keeper: Arc<dyn Keeper>) -> io::Result<Self> {
        Ok(Self { credentials: Records::open(keeper, DOCUMENT)? })
    }

    /// The credentials as kept, for a broker to take up what other brokers changed.
    pub fn records(&self) -> &Records<Credentials> {
        &self.credentials
    }

    /// The credential a SCRAM exchange checks `user` against.
    pub fn get(&self, user: &str, mechanism: i8) -> Option<Credential> {
        self.credentials.get().get(&(user.to_string(), mechanism)).cloned()
    }

    /// Applies deletions and upsertions; one result per user named, in Kafka's order
    /// (deletions, upsertions, then the failures). Stored durably before this returns.
    pub fn alter(&self, deletions: &[(String, i8)], upsertions: &[Upsertion]) -> Vec<(String, Result<(), ScramError>)> {
        let ((mut results, failed), kept) = self.credentials.change(|creds| alter(creds, deletions, upsertions));
        if let Err(e) = kept {
            for r in &mut results {
                r.1 = Err(ScramError::Storage(e.to_string()));
            }
        }
        results.extend(failed.into_iter().map(|(u, e)| (u, Err(e))));
        results
    }

    /// Each user's mechanisms and iterations: every user with `None` or an empty list.
    pub fn describe(&self, users: Option<&[String]>) -> Vec<(String, Described)> {
        let creds = self.credentials.get();
        let mut by_user: BTreeMap<&str, Vec<(i8, i32)>> = BTreeMap::new();
        for ((user, mechanism), c) in creds.iter() {
            by_user.entry(user).or_default().push((*mechanism, c.iterations));
        }
        match users.filter(|u| !u.is_empty()) {
            None => by_user.into_iter().map(|(u, m)| (u.to_string(), Ok(m))).collect(),
            Some(users) => {
                let mut count: HashMap<&str, usize> = HashMap::new();
                users.iter().for_each(|u| *count.entry(u).or_default() += 1);
                let mut seen = HashSet::new();
                users
                    .iter()
                    .filter(|u| seen.insert(u.as_str()))
                    .map(|u| {
                        let r = if count[u.as_str()] > 1 {
                            Err(ScramError::Duplicate(
                                "Cannot describe SCRAM credentials for the same user twice in a single request",
                            ))
                        } else {
                            by_user.get(u.as_str()).cloned().ok_or(ScramError::NotFound(
                                "Attempt to describe a user credential that does not exist",
                            ))
                        };
                        (u.clone(), r)
                    })
                    .collect()
            }
        }
    }
}

/// The ok results (deletions, then upsertions) and the failures of one alteration.
type Altered = (Vec<(String, Result<(), ScramError>)>, Vec<(String, ScramError)>);

/// Makes an alteration to `creds` as Kafka's ScramControlManager checks it.
fn alter(creds: &mut Credentials, deletions: &[(String, i8)], upsertions: &[Upsertion]) -> Altered {
    let mut failed: Vec<(String, ScramError)> = Vec::new();
    let mut failed_users: HashSet<String> = HashSet::new();
    let mut deletes: Vec<&(String, i8)> = Vec::new();
    let mut upserts: Vec<&Upsertion> = Vec::new();
    let mut fail = |user: &str, e: ScramError, failed_users: &mut HashSet<String>| {
        failed_users.insert(user.to_string());
        failed.push((user.to_string(), e));
    };
    for d in deletions {
        if failed_users.contains(&d.0) {
            continue;
        }
        if let Some(i) = deletes.iter().position(|x| x.0 == d.0) {
            deletes.remove(i);
            fail(&d.0, ScramError::Duplicate(TWICE), &mut failed_users);
            continue;
        }
        let valid = check_user_and_mechanism(&d.0, d.1).and_then(|()| {
            creds
                .contains_key(d)
                .then_some(())
                .ok_or(ScramError::NotFound("Attempt to delete a user credential that does not exist"))
        });
        match valid {
            Ok(()) => deletes.push(d),
            Err(e) => fail(&d.0, e, &mut failed_users),
        }
    }
    for u in upsertions {
        if failed_users.contains(&u.user) {
            continue;
        }
        let was_deleted = deletes.iter().position(|x| x.0 == u.user).map(|i| deletes.remove(i)).is_some();
        let was_upserted = upserts.iter().position(|x| x.user == u.user).map(|i| upserts.remove(i)).is_some();
        if was_deleted || was_upserted {
            fail(&u.user, ScramError::Duplicate(TWICE), &mut failed_users);
            continue;
        }
        let valid = check_user_and_mechanism(&u.user, u.mechanism).and_then(|()| {
            if u.iterations < MIN_ITERATIONS {
                Err(ScramError::Unacceptable("Too few iterations".into()))
            } else if u.iterations > MAX_ITERATIONS {
                Err(ScramError::Unacceptable("Too many iterations".into()))
            } else {
                Ok(())
            }
        });
        match valid {
            Ok(()) => upserts.push(u),
            Err(e) => fail(&u.user, e, &mut failed_users),
        }
    }
    for d in &deletes {
        creds.remove(*d);
    }
    for u in &upserts {
        let c = Credential::from_salted(u.mechanism, u.salt.clone(), &u.salted_password, u.iterations);
        creds.insert((u.user.clone(), u.mechanism), c);
    }
    let results =
        deletes.iter().map(|d| (d.0.clone(), Ok(()))).chain(upserts.iter().map(|u| (u.user.clone(), Ok(())))).collect();
    (results, failed)
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    use ring::rand::SecureRandom;
    // The system generator fails only if the OS has none: then nothing here is safe to run.
    ring::rand::SystemRandom::new().fill(buf).expect("the operating system's random number generator works");
}

/// A fresh nonce: 24 random bytes, base64 (printable, no `,`).
pub(crate) fn nonce() -> String {
    let mut b = [0u8; 24];
    random_bytes(&mut b);
    B64.encode(b)
}

/// The client's side of one SCRAM exchange (RFC 5802), as a broker runs it to log in to
/// another broker: [`ScramClient::first`], then [`ScramClient::answer`] to the server-first
/// message, then [`ScramClient::verify`] of the server-final one, which proves the server
/// knows the user's keys. No channel binding, no authorization id.
pub struct ScramClient {
    mechanism: i8,
    password: String,
    nonce: String,
    client_first_bare: String,
    /// The server signature the server-final message must carry, once the proof is sent.
    expected: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient").field("mechanism", &self.mechanism).finish_non_exhaustive()
    }
}

impl ScramClient {
    pub fn new(mechanism: i8, user: &str, password: &str) -> Self {
        Self::with_nonce(mechanism, user, password, nonce())
    }

    fn with_nonce(mechanism: i8, user: &str, password: &str, nonce: String) -> Self {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        Self {
            mechanism,
            password: password.to_string(),
            client_first_bare: format!("n={name},r={nonce}"),
            nonce,
            expected: None,
        }
    }

    /// The client-first message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message (with the proof) answering the server-first one. Refuses a
    /// server nonce that does not extend this client's, and an iteration count outside
    /// Kafka's bounds (a server asking for more would make the client spin).
    pub fn answer(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first).map_err(|_| "the server-first message is not UTF-8")?;
        let mut attrs = text.split(',');
        let malformed = || format!("malformed server-first message `{text}`");
        let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or_else(malformed)?;
        let salt = attrs.next().and_then(|a| a.strip_prefix("s=")).ok_or_else(malformed)?;
        let iterations = attrs.next().and_then(|a| a.strip_prefix("i=")).ok_or_else(malformed)?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend the client's".into());
        }
        let salt = B64.decode(salt).map_err(|_| malformed())?;
        let iterations: i32 = iterations.parse().map_err(|_| malformed())?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "the server asks for {iterations} iterations, outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        let salted = salt_password(self.mechanism, &self.password, &salt, iterations);
        let client_key = hmac(self.mechanism, &salted, b"Client Key");
        let stored_key = hash(self.mechanism, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = hmac(self.mechanism, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let server_key = hmac(self.mechanism, &salted, b"Server Key");
        self.expected = Some(hmac(self.mechanism, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server's signature, or the error it names.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).map_err(|_| "the server-final message is not UTF-8")?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("the server refused the proof: {error}"));
        }
        let signature = text.strip_prefix("v=").and_then(|v| B64.decode(v).ok());
        match (&self.expected, signature) {
            (Some(expected), Some(got)) if *expected == got => Ok(()),
            (None, _) => Err("the server answered before the proof was sent".into()),
            _ => Err("the server did not prove that it knows the user's keys".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::kept::FileKeeper;

    /// RFC 7677's SCRAM-SHA-256 example, byte for byte.
    #[test]
    fn the_client_exchange_matches_the_rfc_example_and_checks_the_server() {
        let nonce = "rOprNGfwEbeRWgbNEkqO".to_string();
        let mut client = ScramClient::with_nonce(SCRAM_SHA_256, "user", "pencil", nonce);
        assert_eq!(client.first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(client.verify(b"v=x"), Err("the server answered before the proof was sent".into()));
        let fin = client.answer(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), Ok(()));
        assert!(client.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=").is_err());
        assert_eq!(client.verify(b"e=invalid-proof"), Err("the server refused the proof: invalid-proof".into()));
    }

    #[test]
    fn the_client_refuses_a_server_that_does_not_follow_the_exchange() {
        let answer = |server_first: &str| {
            ScramClient::with_nonce(SCRAM_SHA_512, "a,b=c", "pw", "abc".into()).answer(server_first.as_bytes())
        };
        let ours = ScramClient::with_nonce(SCRAM_SHA_512, "a,b=c", "pw", "abc".into());
        assert_eq!(ours.first(), b"n,,n=a=2Cb=3Dc,r=abc", "`,` and `=` in a name are escaped");
        assert!(answer("r=abcdef,s=c2FsdA==,i=4096").is_ok());
        assert_eq!(answer("r=abc,s=c2FsdA==,i=4096"), Err("the server's nonce does not extend the client's".into()));
        assert_eq!(answer("r=xyzdef,s=c2FsdA==,i=4096"), Err("the server's nonce does not extend the client's".into()));
        assert!(answer("r=abcdef,s=c2FsdA==,i=100000000").unwrap_err().contains("100000000 iterations"));
        assert!(answer("r=abcdef,s=!!,i=4096").unwrap_err().starts_with("malformed"));
        assert!(answer("s=c2FsdA==,r=abcdef,i=4096").unwrap_err().starts_with("malformed"));
    }

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Upsertion {
        Upsertion { user: user.into(), mechanism, iterations, salt: b"salt".to_vec(), salted_password: b"pw".to_vec() }
    }

    #[test]
    fn keys_match_rfc_7677s_example() {
        // RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==,
        // 4096 iterations; the client proof and server signature there follow from these keys.
        let salted = hex("c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d");
        let c = Credential::from_salted(SCRAM_SHA_256, Vec::new(), &salted, 4096);
        let client_key = hmac(SCRAM_SHA_256, &salted, b"Client Key");
        assert_eq!(c.stored_key, hash(SCRAM_SHA_256, &client_key));
        let auth_message = b"n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = hmac(SCRAM_SHA_256, &c.server_key, auth_message);
        // v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4= in the RFC.
        assert_eq!(signature, hex("eabae24d1062db75a9451ff0b6ea7e98c8546549ff741e672d3251b2397de46e"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn requests_are_checked_as_kafka_checks_them_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = ScramStore::open(FileKeeper::new(dir.path())).unwrap();
        let r = store.alter(&[], &[upsert("alice", SCRAM_SHA_256, 4096), upsert("alice2", SCRAM_SHA_512, 8192)]);
        assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
        let r = store.alter(
            &[("nobody".into(), SCRAM_SHA_256)],
            &[upsert("few", SCRAM_SHA_256, 100), upsert("", SCRAM_SHA_256, 4096), upsert("odd", 9, 4096)],
        );
        let errs: BTreeMap<_, _> = r.into_iter().map(|(u, r)| (u, r.unwrap_err())).collect();
        assert!(matches!(errs["nobody"], ScramError::NotFound(_)));
        assert_eq!(errs["few"], ScramError::Unacceptable("Too few iterations".into()));
        assert!(matches!(errs[""], ScramError::Unacceptable(_)));
        assert_eq!(errs["odd"], ScramError::UnknownMechanism);
        // One change per user per request, whatever the mechanism.
        let r = store.alter(&[("alice".into(), SCRAM_SHA_256)], &[upsert("alice", SCRAM_SHA_512, 4096)]);
        assert_eq!(r, vec![("alice".to_string(), Err(ScramError::Duplicate(TWICE)))]);
        assert!(store.get("alice", SCRAM_SHA_256).is_some(), "a refused request changes nothing");

        let described = store.describe(Some(&["alice".into(), "ghost".into()]));
        assert_eq!(described[0], ("alice".into(), Ok(vec![(SCRAM_SHA_256, 4096)])));
        assert!(matches!(described[1].1, Err(ScramError::NotFound(_))));
        let twice = store.describe(Some(&["alice".into(), "alice".into()]));
        assert_eq!(twice.len(), 1);
        assert!(matches!(twice[0].1, Err(ScramError::Duplicate(_))));
        assert_eq!(store.describe(None).len(), 2);

        let r = store.alter(&[("alice2".into(), SCRAM_SHA_512)], &[]);
        assert!(r[0].1.is_ok());
        let again = ScramStore::open(FileKeeper::new(dir.path())).unwrap();
        assert_eq!(again.describe(None), vec![("alice".to_string(), Ok(vec![(SCRAM_SHA_256, 4096)]))]);
        let text = std::fs::read_to_string(dir.path().join("__scram_credentials.json")).unwrap();
        assert!(!text.contains("\"pw\"") && !text.contains("[112,119]"), "the salted password is not stored: {text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("__scram_credentials.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
