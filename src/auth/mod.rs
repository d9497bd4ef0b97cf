//! Who may do what: the ACL authorizer ([`acl`]) and SCRAM credentials ([`scram`]).

pub mod acl;
pub mod scram;
