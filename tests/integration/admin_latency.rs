//! Slow admin work never holds up other connections: while a CreateTopics of thousands of
//! partitions creates its files, an ApiVersions on another connection is answered at once.
//! The runtime here has a single thread, the strictest case: a handler that did the file work on
//! the runtime's thread would stall every connection until it finished.

use std::time::{Duration, Instant};

use crate::common::{RawClient, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{ApiVersionsRequest, CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

#[tokio::test]
async fn api_versions_is_answered_while_a_large_create_topics_runs() {
    let broker = TestBroker::start().await;
    let mut admin = RawClient::connect(broker.addr).await;
    let mut other = RawClient::connect(broker.addr).await;
    other.call(3, &ApiVersionsRequest::default()).await;

    let create = CreateTopicsRequest::default().with_timeout_ms(60_000).with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("wide")))
        .with_num_partitions(4000)
        .with_replication_factor(-1)]);
    let started = Instant::now();
    let (id, frame) = admin.frame(7, &create);
    admin.send_raw(&frame).await;

    // Ask while the creation is under way, and time the answer.
    let mut slowest = Duration::ZERO;
    let mut asked = 0;
    let created = loop {
        let t = Instant::now();
        other.call(3, &ApiVersionsRequest::default()).await;
        slowest = slowest.max(t.elapsed());
        asked += 1;
        // Check for the CreateTopics answer without waiting for it.
        let mut probe = [0u8; 1];
        if asked >= 3 && admin_has_data(&mut admin, &mut probe).await {
            break admin.read_response::<CreateTopicsRequest>(7, id).await;
        }
    };
    let took = started.elapsed();
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0].error_message);
    // Generous: the point is "milliseconds, not the length of the creation". The creation
    // itself takes seconds here; a stalled runtime would make the slowest answer about as long.
    assert!(
        slowest < Duration::from_millis(500) && slowest * 4 < took,
        "slowest ApiVersions answer {slowest:?} while a 4000-partition CreateTopics took {took:?}"
    );
    broker.stop().await;
}

/// True once the admin connection has bytes to read (its response arrived).
async fn admin_has_data(c: &mut RawClient, probe: &mut [u8; 1]) -> bool {
    matches!(tokio::time::timeout(Duration::from_millis(1), c.stream.peek(probe)).await, Ok(Ok(n)) if n > 0)
}
