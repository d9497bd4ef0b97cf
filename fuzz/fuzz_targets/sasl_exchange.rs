//! Fuzzes the server side of the SASL exchange (PLAIN, SCRAM-SHA-256/512): the input is a
//! script of requests on one SASL connection (see `../sasl_script.rs`, which the proptest in
//! `src/auth/sasl/tests.rs` runs too). No step may panic, and nothing but ApiVersions and the
//! SASL exchange may be served before a login succeeds.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gregor::auth::sasl::{Admit, Authenticate, Authenticator, Handshake, RequestKind};
use gregor::auth::scram::{salt_password, ScramStore, Upsertion};
use gregor::config::{SaslMechanism, SaslSettings, Secret};
use libfuzzer_sys::fuzz_target;

include!("../sasl_script.rs");

/// One credential store for the whole run, in a directory of this process's own.
fn store() -> &'static ScramStore {
    static STORE: OnceLock<ScramStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gregor-fuzz-sasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for the SCRAM store");
        let store = ScramStore::open(&dir).expect("the SCRAM store opens");
        let salt = b"fuzz-salt".to_vec();
        let upsertions: Vec<Upsertion> = SCRIPT_SCRAM_USERS
            .iter()
            .map(|(user, mechanism, password)| Upsertion {
                user: user.to_string(),
                mechanism: *mechanism,
                iterations: 4096,
                salt: salt.clone(),
                salted_password: salt_password(*mechanism, password, &salt, 4096),
            })
            .collect();
        assert!(store.alter(&[], &upsertions).iter().all(|(_, r)| r.is_ok()));
        store
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = run_sasl_script(data, store());
});
