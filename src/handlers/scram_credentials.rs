//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): the SCRAM
//! credentials of [`crate::auth::scram`] on the wire.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};

use super::common::{off_runtime, str_bytes};
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::auth::scram::Upsertion;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};

const DENIED: ResponseError = ResponseError::ClusterAuthorizationFailed;

pub async fn handle_describe(ctx: &Ctx, req: DescribeUserScramCredentialsRequest) -> Reply {
    // Kafka 4.1: DESCRIBE on the cluster.
    if !ctx.cluster_allows(op::DESCRIBE) {
        return ctx.reply(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(DENIED.code())
                .with_error_message(Some(str_bytes(&DENIED.to_string()))),
        );
    }
    let users: Option<Vec<String>> = req.users.map(|u| u.into_iter().map(|n| n.name.to_string()).collect());
    let results = ctx
        .broker
        .scram
        .describe(users.as_deref())
        .into_iter()
        .map(|(user, r)| {
            let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(&user));
            match r {
                Ok(infos) => result.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(m, i)| CredentialInfo::default().with_mechanism(m).with_iterations(i))
                        .collect(),
                ),
                Err(e) => {
                    result.with_error_code(e.kafka_code().code()).with_error_message(Some(str_bytes(&e.to_string())))
                }
            }
        })
        .collect();
    ctx.reply(&DescribeUserScramCredentialsResponse::default().with_results(results))
}

pub async fn handle_alter(ctx: &Ctx, req: AlterUserScramCredentialsRequest) -> Reply {
    // Kafka 4.1: ALTER on the cluster; every user named gets the refusal.
    if !ctx.cluster_allows(op::ALTER) {
        let users = req.deletions.iter().map(|d| &d.name).chain(req.upsertions.iter().map(|u| &u.name));
        let results = users
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(u.clone())
                    .with_error_code(DENIED.code())
                    .with_error_message(Some(str_bytes(&DENIED.to_string())))
            })
            .collect();
        return ctx.reply(&AlterUserScramCredentialsResponse::default().with_results(results));
    }
    let deletions: Vec<(String, i8)> = req.deletions.into_iter().map(|d| (d.name.to_string(), d.mechanism)).collect();
    let upsertions: Vec<Upsertion> = req
        .upsertions
        .into_iter()
        .map(|u| Upsertion {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let broker = ctx.broker.clone();
    // The store fsyncs: off the runtime's threads.
    let results = off_runtime(move || Ok::<_, std::io::Error>(broker.scram.alter(&deletions, &upsertions)))
        .await
        .unwrap_or_default();
    let results = results
        .into_iter()
        .map(|(user, r)| {
            let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(&user));
            match r {
                Ok(()) => result,
                Err(e) => {
                    result.with_error_code(e.kafka_code().code()).with_error_message(Some(str_bytes(&e.to_string())))
                }
            }
        })
        .collect();
    ctx.reply(&AlterUserScramCredentialsResponse::default().with_results(results))
}
