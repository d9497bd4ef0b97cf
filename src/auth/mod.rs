//! Who may do what: the ACL authorizer ([`acl`]).

pub mod acl;
