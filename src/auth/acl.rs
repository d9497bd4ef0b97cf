//! ACLs with Kafka's model and Kafka's decision rules (matched against Kafka 4.1's
//! `StandardAuthorizer`):
//!
//! - an ACL names a resource (type, name, pattern: LITERAL — the name, or `*` for every name —
//!   or PREFIXED), a principal (`User:alice`, or `User:*` for all), a host (an IP, or `*`), an
//!   operation and a permission (ALLOW or DENY);
//! - super users are allowed everything; otherwise a matching DENY wins over any ALLOW;
//! - an ALLOW for READ, WRITE, DELETE or ALTER also allows DESCRIBE, and one for ALTER_CONFIGS
//!   also allows DESCRIBE_CONFIGS (a DENY implies nothing); ALL matches every operation;
//! - when no ACL at all names the resource, `allow.everyone.if.no.acl.found` decides; when some
//!   do but none allows the request, it is denied.
//!
//! The ACLs are kept in memory and by a [`Keeper`] (on one node `<log.dir>/__acls.json`, one
//! JSON object per line; in shared mode the coordination store, so that every broker of the
//! cluster enforces the same ACLs), written before a change is acknowledged.

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::kept::{Keeper, Records};

/// Kafka's resource type codes.
pub mod resource {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
}

/// Kafka's pattern type codes.
pub mod pattern {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's operation codes.
pub mod op {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
    pub const TWO_PHASE_COMMIT: i8 = 15;
}

/// Kafka's permission codes.
pub mod permission {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The one name a CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";
const WILDCARD: &str = "*";

/// One ACL (Kafka's AclBinding).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// What DescribeAcls and DeleteAcls select (Kafka's AclBindingFilter): `None` and the ANY
/// codes match everything; pattern MATCH selects every ACL that applies to the named resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

/// Why an ACL or a filter was refused, or the authorizer is off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// Kafka: SECURITY_DISABLED.
    #[error("No Authorizer is configured on the broker (set authorizer.class.name to use ACLs).")]
    Disabled,
    /// Kafka: INVALID_REQUEST.
    #[error("{0}")]
    Invalid(String),
    /// Keeping the ACLs failed (Kafka: UNKNOWN_SERVER_ERROR).
    #[error("the ACLs could not be stored: {0}")]
    Storage(String),
}

fn known_operation(o: i8) -> bool {
    (op::ALL..=op::TWO_PHASE_COMMIT).contains(&o)
}

fn known_resource(r: i8) -> bool {
    (resource::TOPIC..=resource::USER).contains(&r)
}

impl Acl {
    /// Kafka's checks for a new ACL (as its AclControlManager makes them).
    pub fn validate(&self) -> Result<(), AclError> {
        let bad = |m: String| Err(AclError::Invalid(m));
        if !known_resource(self.resource_type) {
            return bad(format!("Invalid resource type {} for a new ACL.", self.resource_type));
        }
        if !matches!(self.pattern_type, pattern::LITERAL | pattern::PREFIXED) {
            return bad(format!("Invalid pattern type {} for a new ACL: use LITERAL or PREFIXED.", self.pattern_type));
        }
        if !known_operation(self.operation) {
            return bad(format!("Invalid operation {} for a new ACL.", self.operation));
        }
        if !matches!(self.permission, permission::ALLOW | permission::DENY) {
            return bad(format!("Invalid permission type {} for a new ACL: use ALLOW or DENY.", self.permission));
        }
        if self.resource_name.is_empty() {
            return bad("Resource name should not be empty.".into());
        }
        if self.resource_type == resource::CLUSTER && self.resource_name != CLUSTER_NAME {
            return bad(format!("The only valid name for the CLUSTER resource is {CLUSTER_NAME}."));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => return bad(format!("Could not parse principal '{}': expected Type:name.", self.principal)),
        }
        if self.host.is_empty() {
            return bad("Host should not be empty (use * for every host).".into());
        }
        Ok(())
    }

    /// Whether this ACL is about `name` of its resource type.
    fn names(&self, name: &str) -> bool {
        match self.pattern_type {
            pattern::LITERAL => self.resource_name == name || self.resource_name == WILDCARD,
            pattern::PREFIXED => name.starts_with(&self.resource_name),
            _ => false,
        }
    }

    /// ALLOW or DENY when this ACL applies to `principal` at `host` doing `operation`; `None`
    /// when it does not apply.
    fn decides(&self, principal: &str, host: &str, operation: i8) -> Option<bool> {
        if self.principal != principal && self.principal != "User:*" {
            return None;
        }
        if self.host != WILDCARD && self.host != host {
            return None;
        }
        let allow = self.permission == permission::ALLOW;
        if self.operation != op::ALL && self.operation != operation {
            let implied = allow
                && match operation {
                    op::DESCRIBE => matches!(self.operation, op::READ | op::WRITE | op::DELETE | op::ALTER),
                    op::DESCRIBE_CONFIGS => self.operation == op::ALTER_CONFIGS,
                    _ => false,
                };
            if !implied {
                return None;
            }
        }
        Some(allow)
    }
}

impl AclFilter {
    /// Kafka's checks for a filter: no UNKNOWN codes.
    pub fn validate(&self) -> Result<(), AclError> {
        let ok = (self.resource_type == resource::ANY || known_resource(self.resource_type))
            && (pattern::ANY..=pattern::PREFIXED).contains(&self.pattern_type)
            && (self.operation == op::ANY || known_operation(self.operation))
            && (permission::ANY..=permission::ALLOW).contains(&self.permission);
        if ok {
            Ok(())
        } else {
            Err(AclError::Invalid("The filter has an unknown resource, pattern, operation or permission type.".into()))
        }
    }

    pub fn matches(&self, acl: &Acl) -> bool {
        let resource = self.resource_type == resource::ANY || self.resource_type == acl.resource_type;
        let name = self.resource_name.as_deref();
        let pattern = match self.pattern_type {
            pattern::ANY => name.is_none_or(|n| acl.resource_name == n),
            pattern::MATCH => name.is_none_or(|n| acl.names(n)),
            p => acl.pattern_type == p && name.is_none_or(|n| acl.resource_name == n),
        };
        resource
            && pattern
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == op::ANY || self.operation == acl.operation)
            && (self.permission == permission::ANY || self.permission == acl.permission)
    }
}

/// The ACL store and the decisions made on it.
#[derive(Debug)]
pub struct Authorizer {
    enabled: bool,
    super_users: Vec<String>,
    allow_if_no_acl: bool,
    acls: Records<BTreeSet<Acl>>,
}

/// The name of the ACLs' document.
pub const DOCUMENT: &str = "acls";

impl Authorizer {
    /// Loads the ACLs `keeper` keeps. With `enabled` false every request is allowed.
    pub fn open(
        keeper: Arc<dyn Keeper>,
        enabled: bool,
        super_users: Vec<String>,
        allow_if_no_acl: bool,
    ) -> io::Result<Self> {
        Ok(Self { enabled, super_users, allow_if_no_acl, acls: Records::open(keeper, DOCUMENT)? })
    }

    /// The ACLs as kept, for a broker to take up what other brokers changed.
    pub fn records(&self) -> &Records<BTreeSet<Acl>> {
        &self.acls
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `principal` connected from `host` may do `operation` on the resource.
    pub fn authorize(&self, principal: &str, host: &str, operation: i8, resource_type: i8, name: &str) -> bool {
        if !self.enabled || self.super_users.iter().any(|u| u == principal) {
            return true;
        }
        let acls = self.acls.get();
        let mut named = false;
        let mut allowed = false;
        for acl in acls.iter().filter(|a| a.resource_type == resource_type && a.names(name)) {
            named = true;
            match acl.decides(principal, host, operation) {
                Some(false) => return false,
                Some(true) => allowed = true,
                None => {}
            }
        }
        if named {
            allowed
        } else {
            self.allow_if_no_acl
        }
    }

    /// Whether `principal` at `host` may do `operation` on *some* resource of `resource_type`
    /// (Kafka's `authorizeByResourceType`, which InitProducerId asks for WRITE on any topic): a
    /// matching ALLOW on any name that no DENY on every name (`*` or the empty prefix) undoes;
    /// with no ACL at all on that resource type, `allow.everyone.if.no.acl.found` decides.
    pub fn authorize_any(&self, principal: &str, host: &str, operation: i8, resource_type: i8) -> bool {
        if !self.enabled || self.super_users.iter().any(|u| u == principal) {
            return true;
        }
        let acls = self.acls.get();
        let of_type: Vec<&Acl> = acls.iter().filter(|a| a.resource_type == resource_type).collect();
        if of_type.is_empty() {
            return self.allow_if_no_acl;
        }
        let denied_everywhere = of_type.iter().any(|a| {
            a.decides(principal, host, operation) == Some(false)
                && ((a.pattern_type == pattern::LITERAL && a.resource_name == WILDCARD)
                    || (a.pattern_type == pattern::PREFIXED && a.resource_name.is_empty()))
        });
        !denied_everywhere && of_type.iter().any(|a| a.decides(principal, host, operation) == Some(true))
    }

    /// Adds ACLs (an ACL already present is no change); one result per ACL, in order. Valid
    /// ones are stored durably before this returns.
    pub fn create(&self, new: Vec<Acl>) -> Vec<Result<(), AclError>> {
        if !self.enabled {
            return new.iter().map(|_| Err(AclError::Disabled)).collect();
        }
        let (results, kept) = self.acls.change(|acls| {
            new.iter()
                .map(|a| {
                    a.validate()?;
                    acls.insert(a.clone());
                    Ok(())
                })
                .collect::<Vec<_>>()
        });
        unless_kept(results, kept)
    }

    /// The ACLs `filter` selects.
    pub fn describe(&self, filter: &AclFilter) -> Result<Vec<Acl>, AclError> {
        if !self.enabled {
            return Err(AclError::Disabled);
        }
        filter.validate()?;
        Ok(self.acls.get().iter().filter(|a| filter.matches(a)).cloned().collect())
    }

    /// Removes what each filter selects; per filter, the ACLs it removed.
    pub fn delete(&self, filters: &[AclFilter]) -> Vec<Result<Vec<Acl>, AclError>> {
        if !self.enabled {
            return filters.iter().map(|_| Err(AclError::Disabled)).collect();
        }
        let (results, kept) = self.acls.change(|acls| {
            filters
                .iter()
                .map(|f| {
                    f.validate()?;
                    let gone: Vec<Acl> = acls.iter().filter(|a| f.matches(a)).cloned().collect();
                    for a in &gone {
                        acls.remove(a);
                    }
                    Ok(gone)
                })
                .collect::<Vec<_>>()
        });
        unless_kept(results, kept)
    }
}

/// The results of a change, each valid one failed when the change could not be kept.
fn unless_kept<T>(results: Vec<Result<T, AclError>>, kept: io::Result<()>) -> Vec<Result<T, AclError>> {
    match kept {
        Ok(()) => results,
        Err(e) => {
            let failed = AclError::Storage(e.to_string());
            results.into_iter().map(|r| r.and(Err(failed.clone()))).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::kept::FileKeeper;
    use std::path::Path;

    fn acl(rt: i8, name: &str, pt: i8, principal: &str, host: &str, o: i8, p: i8) -> Acl {
        Acl {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: host.into(),
            operation: o,
            permission: p,
        }
    }

    fn any_filter() -> AclFilter {
        AclFilter {
            resource_type: resource::ANY,
            resource_name: None,
            pattern_type: pattern::ANY,
            principal: None,
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        }
    }

    fn authorizer(dir: &Path, allow_if_no_acl: bool) -> Authorizer {
        Authorizer::open(FileKeeper::new(dir), true, vec!["User:root".into()], allow_if_no_acl).unwrap()
    }

    #[test]
    fn decisions_follow_kafkas_rules() {
        let dir = tempfile::tempdir().unwrap();
        let a = authorizer(dir.path(), false);
        use {op::*, pattern::*, permission::*, resource::*};
        let results = a.create(vec![
            acl(TOPIC, "orders", LITERAL, "User:alice", "*", READ, ALLOW),
            acl(TOPIC, "pay-", PREFIXED, "User:bob", "*", WRITE, ALLOW),
            acl(TOPIC, "pay-secret", LITERAL, "User:bob", "*", ALL, DENY),
            acl(TOPIC, "*", LITERAL, "User:carol", "10.0.0.1", DESCRIBE, ALLOW),
            acl(GROUP, "billing", LITERAL, "User:*", "*", READ, ALLOW),
            acl(TOPIC, "audit", LITERAL, "User:dave", "*", READ, DENY),
            acl(TOPIC, "audit", LITERAL, "User:*", "*", ALL, ALLOW),
            acl(TOPIC, "conf", LITERAL, "User:erin", "*", ALTER_CONFIGS, ALLOW),
        ]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let can = |p: &str, host: &str, o: i8, rt: i8, n: &str| a.authorize(p, host, o, rt, n);
        assert!(can("User:alice", "1.2.3.4", READ, TOPIC, "orders"));
        assert!(can("User:alice", "1.2.3.4", DESCRIBE, TOPIC, "orders"), "READ implies DESCRIBE");
        assert!(!can("User:alice", "1.2.3.4", WRITE, TOPIC, "orders"));
        assert!(!can("User:alice", "1.2.3.4", READ, TOPIC, "orders2"), "literal is exact");
        assert!(can("User:bob", "h", WRITE, TOPIC, "pay-in"), "prefixed");
        assert!(!can("User:bob", "h", WRITE, TOPIC, "pay-secret"), "DENY wins");
        assert!(!can("User:bob", "h", WRITE, TOPIC, "pa"));
        assert!(can("User:carol", "10.0.0.1", DESCRIBE, TOPIC, "anything"), "wildcard resource");
        assert!(!can("User:carol", "10.0.0.2", DESCRIBE, TOPIC, "anything"), "host must match");
        assert!(can("User:zed", "h", READ, GROUP, "billing"), "wildcard principal");
        assert!(!can("User:dave", "h", READ, TOPIC, "audit"), "a DENY for one beats an ALLOW for all");
        assert!(can("User:dave", "h", WRITE, TOPIC, "audit"));
        assert!(can("User:erin", "h", DESCRIBE_CONFIGS, TOPIC, "conf"), "ALTER_CONFIGS implies DESCRIBE_CONFIGS");
        assert!(!can("User:erin", "h", DESCRIBE, TOPIC, "conf"));
        // No ACL names the resource: allow.everyone.if.no.acl.found decides.
        assert!(!can("User:alice", "h", READ, GROUP, "other"));
        assert!(can("User:root", "h", ALTER, CLUSTER, CLUSTER_NAME), "super user");
        let open = Authorizer::open(FileKeeper::new(dir.path()), true, vec![], true).unwrap();
        assert!(open.authorize("User:alice", "h", READ, GROUP, "other"));
        assert!(!open.authorize("User:alice", "h", WRITE, TOPIC, "orders"), "named resources stay closed");
        // A DENY for READ does not deny DESCRIBE.
        a.create(vec![
            acl(TOPIC, "x", LITERAL, "User:f", "*", READ, DENY),
            acl(TOPIC, "x", LITERAL, "User:f", "*", DESCRIBE, ALLOW),
        ]);
        assert!(can("User:f", "h", DESCRIBE, TOPIC, "x"));
        let off = Authorizer::open(FileKeeper::new(dir.path()), false, vec![], false).unwrap();
        assert!(
            off.authorize("User:nobody", "h", ALTER, CLUSTER, CLUSTER_NAME),
            "without an authorizer all is allowed"
        );
        assert_eq!(off.describe(&any_filter()), Err(AclError::Disabled));
    }

    #[test]
    fn filters_select_and_acls_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        use {op::*, pattern::*, permission::*, resource::*};
        {
            let a = authorizer(dir.path(), false);
            a.create(vec![
                acl(TOPIC, "orders", LITERAL, "User:alice", "*", READ, ALLOW),
                acl(TOPIC, "ord", PREFIXED, "User:bob", "*", WRITE, ALLOW),
                acl(TOPIC, "*", LITERAL, "User:carol", "*", DESCRIBE, ALLOW),
                acl(GROUP, "orders", LITERAL, "User:alice", "*", READ, ALLOW),
            ]);
            let bad = a.create(vec![
                acl(CLUSTER, "other", LITERAL, "User:a", "*", ALTER, ALLOW),
                acl(TOPIC, "t", pattern::MATCH, "User:a", "*", READ, ALLOW),
                acl(TOPIC, "t", LITERAL, "alice", "*", READ, ALLOW),
                acl(TOPIC, "t", LITERAL, "User:a", "*", op::ANY, ALLOW),
            ]);
            assert!(bad.iter().all(|r| matches!(r, Err(AclError::Invalid(_)))), "{bad:?}");
            let matching = AclFilter {
                resource_type: TOPIC,
                resource_name: Some("orders".into()),
                pattern_type: pattern::MATCH,
                ..any_filter()
            };
            assert_eq!(a.describe(&matching).unwrap().len(), 3, "literal, prefixed and wildcard apply");
            let literal = AclFilter { pattern_type: LITERAL, ..matching.clone() };
            assert_eq!(a.describe(&literal).unwrap().len(), 1);
            let by_principal = AclFilter { principal: Some("User:alice".into()), ..any_filter() };
            assert_eq!(a.describe(&by_principal).unwrap().len(), 2);
            let gone = a.delete(&[AclFilter { resource_type: GROUP, ..any_filter() }]);
            assert_eq!(gone[0].as_ref().unwrap().len(), 1);
        }
        let again = authorizer(dir.path(), false);
        assert_eq!(again.describe(&any_filter()).unwrap().len(), 3, "what was stored is back after a restart");
        assert!(again.authorize("User:bob", "h", WRITE, TOPIC, "orders-eu"));
    }
}
