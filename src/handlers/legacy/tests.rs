//! Every bridge against both codecs: a request in each legacy version reaches the handler's
//! codec, and an answer in the bridge's version reaches the client's.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol_legacy::messages as old;
use kafka_protocol_legacy::messages::{RequestKind, ResponseKind};
use kafka_protocol_legacy::protocol::Decodable;

use super::*;
use crate::handlers::{supported, Frame, SUPPORTED};

fn default_request(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => RequestKind::Produce(Default::default()),
        ApiKey::Fetch => RequestKind::Fetch(Default::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(Default::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(Default::default()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(Default::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(Default::default()),
        other => panic!("no default request for {other:?}"),
    }
}

fn default_response(key: ApiKey) -> ResponseKind {
    match key {
        ApiKey::Produce => ResponseKind::Produce(Default::default()),
        ApiKey::Fetch => ResponseKind::Fetch(Default::default()),
        ApiKey::ListOffsets => ResponseKind::ListOffsets(Default::default()),
        ApiKey::OffsetForLeaderEpoch => ResponseKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::CreateTopics => ResponseKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => ResponseKind::DeleteTopics(Default::default()),
        ApiKey::DescribeLogDirs => ResponseKind::DescribeLogDirs(Default::default()),
        ApiKey::DescribeConfigs => ResponseKind::DescribeConfigs(Default::default()),
        ApiKey::OffsetCommit => ResponseKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => ResponseKind::OffsetFetch(Default::default()),
        ApiKey::DescribeAcls => ResponseKind::DescribeAcls(Default::default()),
        ApiKey::CreateAcls => ResponseKind::CreateAcls(Default::default()),
        ApiKey::DeleteAcls => ResponseKind::DeleteAcls(Default::default()),
        other => panic!("no default response for {other:?}"),
    }
}

/// A response frame as a handler writes it: size, correlation id, body (the bridges' versions
/// all use response header v0).
fn frame_of(response: &ResponseKind, version: i16) -> Frame {
    let mut out = BytesMut::new();
    out.put_i32(0);
    out.put_i32(7);
    response.encode(&mut out, version).unwrap();
    let size = (out.len() - 4) as i32;
    out[0..4].copy_from_slice(&size.to_be_bytes());
    Frame::One(out.freeze())
}

fn answer(crossing: Crossing, response: &ResponseKind) -> ResponseKind {
    let mut b = crossing.response(&frame_of(response, crossing.bridge.to)).unwrap();
    assert_eq!(b.get_i32() as usize, b.len(), "the size prefix");
    let header = old::ResponseHeader::decode(&mut b, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    let back = ResponseKind::decode(old_key(crossing.bridge.key).unwrap(), &mut b, crossing.from).unwrap();
    assert!(b.is_empty(), "{} bytes left over", b.len());
    back
}

#[test]
fn every_bridge_ends_at_the_registrys_oldest_version() {
    for b in BRIDGES {
        let modern = SUPPORTED.iter().find(|a| a.key == b.key).expect("a bridge to a registered API");
        assert_eq!(modern.min, b.to, "{:?}", b.key);
        assert_eq!(supported(b.key).unwrap().min, b.min, "{:?} is advertised from v{}", b.key, b.min);
        assert!(b.min < b.to);
    }
}

#[test]
fn requests_in_every_legacy_version_reach_the_handlers_codec() {
    for b in BRIDGES {
        for v in b.min..b.to {
            let mut body = BytesMut::new();
            default_request(b.key).encode(&mut body, v).unwrap();
            let carried = Crossing::new(*b, v).request(body.freeze()).unwrap_or_else(|e| panic!("{e}"));
            assert!(crate::handlers::decode_only(request_frame(b.key, b.to, carried)).is_ok(), "{:?} v{v}", b.key);
        }
    }
}

/// A request frame without the size prefix, as `dispatch` gets it.
fn request_frame(key: ApiKey, version: i16, body: Bytes) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(key as i16);
    out.put_i16(version);
    out.put_i32(1);
    out.put_i16(-1); // no client id
    out.extend_from_slice(&body);
    out.freeze()
}

#[test]
fn answers_reach_every_legacy_version() {
    for b in BRIDGES {
        for v in b.min..b.to {
            let back = answer(Crossing::new(*b, v), &default_response(b.key));
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&default_response(b.key)));
        }
    }
}

#[test]
fn a_legacy_frame_reaches_decode_only_through_its_bridge() {
    let mut body = BytesMut::new();
    default_request(ApiKey::OffsetCommit).encode(&mut body, 0).unwrap();
    assert_eq!(
        crate::handlers::decode_only(request_frame(ApiKey::OffsetCommit, 0, body.freeze())),
        Ok(ApiKey::OffsetCommit)
    );
    assert!(crate::handlers::decode_only(request_frame(ApiKey::OffsetCommit, 0, Bytes::from_static(&[1, 2]))).is_err());
}

#[test]
fn list_offsets_v0_answers_a_list_of_one_offset() {
    use old::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    let bridge = bridge(ApiKey::ListOffsets, 0).unwrap();
    let partition = |error_code, offset| {
        ListOffsetsPartitionResponse::default().with_error_code(error_code).with_offset(offset).with_timestamp(-1)
    };
    let response = ResponseKind::ListOffsets(old::ListOffsetsResponse::default().with_topics(vec![
        ListOffsetsTopicResponse::default().with_partitions(vec![partition(0, 42), partition(3, -1)]),
    ]));
    let ResponseKind::ListOffsets(back) = answer(Crossing::new(bridge, 0), &response) else { unreachable!() };
    let offsets: Vec<_> =
        back.topics[0].partitions.iter().map(|p| (p.error_code, p.old_style_offsets.clone())).collect();
    assert_eq!(offsets, vec![(0, vec![42]), (3, vec![])]);
}

#[test]
fn describe_configs_v0_says_is_default_from_the_source() {
    use old::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
    let bridge = bridge(ApiKey::DescribeConfigs, 0).unwrap();
    let config = |source| DescribeConfigsResourceResult::default().with_config_source(source);
    let response = ResponseKind::DescribeConfigs(
        old::DescribeConfigsResponse::default()
            .with_results(vec![DescribeConfigsResult::default().with_configs(vec![config(5), config(1)])]),
    );
    let ResponseKind::DescribeConfigs(back) = answer(Crossing::new(bridge, 0), &response) else { unreachable!() };
    let defaults: Vec<_> = back.results[0].configs.iter().map(|c| c.is_default).collect();
    assert_eq!(defaults, vec![true, false]);
}

#[test]
fn versions_the_registry_serves_cross_no_bridge() {
    for a in SUPPORTED {
        for v in a.min..=a.max {
            assert!(bridge(a.key, v).is_none(), "{:?} v{v}", a.key);
        }
    }
}
