//! CreateAcls, DescribeAcls, DeleteAcls: the ACL store of [`crate::auth::acl`] on the wire.
//! Without `authorizer.class.name` they answer SECURITY_DISABLED, as Kafka does.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};

use super::common::{off_runtime, str_bytes};
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::auth::acl::{Acl, AclError, AclFilter};
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};

fn failure(e: &AclError) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    (e.kafka_code().code(), Some(str_bytes(&e.to_string())))
}

/// Kafka 4.1 (AclApis): listing ACLs needs DESCRIBE on the cluster, changing them ALTER.
fn cluster_refusal(ctx: &Ctx, operation: i8) -> Option<(i16, Option<kafka_protocol::protocol::StrBytes>)> {
    (!ctx.cluster_allows(operation)).then(|| {
        let e = ResponseError::ClusterAuthorizationFailed;
        (e.code(), Some(str_bytes(&e.to_string())))
    })
}

pub async fn handle_create(ctx: &Ctx, req: CreateAclsRequest) -> Reply {
    if let Some((code, message)) = cluster_refusal(ctx, op::ALTER) {
        let results = req
            .creations
            .iter()
            .map(|_| AclCreationResult::default().with_error_code(code).with_error_message(message.clone()))
            .collect();
        return ctx.reply(&CreateAclsResponse::default().with_results(results));
    }
    let acls: Vec<Acl> = req
        .creations
        .into_iter()
        .map(|c| Acl {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission: c.permission_type,
        })
        .collect();
    let broker = ctx.broker.clone();
    // The store fsyncs: off the runtime's threads.
    let results = off_runtime(move || Ok::<_, std::io::Error>(broker.acls.create(acls))).await.unwrap_or_default();
    let results = results
        .iter()
        .map(|r| match r {
            Ok(()) => AclCreationResult::default(),
            Err(e) => {
                let (code, message) = failure(e);
                AclCreationResult::default().with_error_code(code).with_error_message(message)
            }
        })
        .collect();
    ctx.reply(&CreateAclsResponse::default().with_results(results))
}

pub async fn handle_describe(ctx: &Ctx, req: DescribeAclsRequest) -> Reply {
    let filter = AclFilter {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.map(|s| s.to_string()),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.map(|s| s.to_string()),
        host: req.host_filter.map(|s| s.to_string()),
        operation: req.operation,
        permission: req.permission_type,
    };
    if let Some((code, message)) = cluster_refusal(ctx, op::DESCRIBE) {
        return ctx.reply(&DescribeAclsResponse::default().with_error_code(code).with_error_message(message));
    }
    let resp = match ctx.broker.acls.describe(&filter) {
        Ok(acls) => {
            // Grouped by resource pattern, as Kafka answers.
            let mut resources: Vec<DescribeAclsResource> = Vec::new();
            for a in acls {
                let entry = AclDescription::default()
                    .with_principal(str_bytes(&a.principal))
                    .with_host(str_bytes(&a.host))
                    .with_operation(a.operation)
                    .with_permission_type(a.permission);
                match resources.last_mut().filter(|r| {
                    r.resource_type == a.resource_type
                        && r.pattern_type == a.pattern_type
                        && r.resource_name.as_str() == a.resource_name
                }) {
                    Some(r) => r.acls.push(entry),
                    None => resources.push(
                        DescribeAclsResource::default()
                            .with_resource_type(a.resource_type)
                            .with_resource_name(str_bytes(&a.resource_name))
                            .with_pattern_type(a.pattern_type)
                            .with_acls(vec![entry]),
                    ),
                }
            }
            DescribeAclsResponse::default().with_resources(resources)
        }
        Err(e) => {
            let (code, message) = failure(&e);
            DescribeAclsResponse::default().with_error_code(code).with_error_message(message)
        }
    };
    ctx.reply(&resp)
}

pub async fn handle_delete(ctx: &Ctx, req: DeleteAclsRequest) -> Reply {
    if let Some((code, message)) = cluster_refusal(ctx, op::ALTER) {
        let results = req
            .filters
            .iter()
            .map(|_| DeleteAclsFilterResult::default().with_error_code(code).with_error_message(message.clone()))
            .collect();
        return ctx.reply(&DeleteAclsResponse::default().with_filter_results(results));
    }
    let filters: Vec<AclFilter> = req
        .filters
        .into_iter()
        .map(|f| AclFilter {
            resource_type: f.resource_type_filter,
            resource_name: f.resource_name_filter.map(|s| s.to_string()),
            pattern_type: f.pattern_type_filter,
            principal: f.principal_filter.map(|s| s.to_string()),
            host: f.host_filter.map(|s| s.to_string()),
            operation: f.operation,
            permission: f.permission_type,
        })
        .collect();
    let broker = ctx.broker.clone();
    let results = off_runtime(move || Ok::<_, std::io::Error>(broker.acls.delete(&filters))).await.unwrap_or_default();
    let filter_results = results
        .into_iter()
        .map(|r| match r {
            Ok(gone) => DeleteAclsFilterResult::default().with_matching_acls(
                gone.into_iter()
                    .map(|a| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(a.resource_type)
                            .with_resource_name(str_bytes(&a.resource_name))
                            .with_pattern_type(a.pattern_type)
                            .with_principal(str_bytes(&a.principal))
                            .with_host(str_bytes(&a.host))
                            .with_operation(a.operation)
                            .with_permission_type(a.permission)
                    })
                    .collect(),
            ),
            Err(e) => {
                let (code, message) = failure(&e);
                DeleteAclsFilterResult::default().with_error_code(code).with_error_message(message)
            }
        })
        .collect();
    ctx.reply(&DeleteAclsResponse::default().with_filter_results(filter_results))
}
