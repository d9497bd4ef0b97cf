//! Named listeners configured as a docker-compose file configures the apache/kafka image: one
//! listener for the other containers, one for the host, a KRaft controller listener that is
//! accepted and not opened. Each listener tells its clients its own advertised address, and
//! librdkafka produces through one and consumes in a group through the other.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{self, RawClient};
use kafka_protocol::messages::{FindCoordinatorRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn told(dial: SocketAddr) -> Vec<(String, i32)> {
    let mut c = RawClient::connect(dial).await;
    let md = c.call(12, &MetadataRequest::default().with_topics(Some(vec![]))).await;
    let fc = c.call(3, &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))).await;
    vec![(md.brokers[0].host.to_string(), md.brokers[0].port), (fc.host.to_string(), fc.port)]
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_style_listeners_each_advertise_their_own_address() {
    let tmp = tempfile::tempdir().unwrap();
    let (internal, host, controller) = (free_port(), free_port(), free_port());
    let env = [
        ("KAFKA_NODE_ID", "1".to_string()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
        (
            "KAFKA_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller},PLAINTEXT_HOST://127.0.0.1:{host}"),
        ),
        ("KAFKA_ADVERTISED_LISTENERS", format!("PLAINTEXT://127.0.0.1:{internal},PLAINTEXT_HOST://localhost:{host}")),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT".into(),
        ),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", format!("1@127.0.0.1:{controller}")),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        ("KAFKA_HEAP_OPTS", "-Xmx512m".into()),
        ("KAFKA_LOG_DIRS", tmp.path().join("data").display().to_string()),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gregor"));
    cmd.envs(env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null()).stderr(Stdio::null());
    let mut broker = Killed(cmd.spawn().unwrap());
    let internal_addr: SocketAddr = format!("127.0.0.1:{internal}").parse().unwrap();
    let host_addr: SocketAddr = format!("127.0.0.1:{host}").parse().unwrap();
    common::wait_for_sync(Duration::from_secs(30), || {
        assert!(broker.0.try_wait().unwrap().is_none(), "gregor exited");
        TcpStream::connect(internal_addr).is_ok() && TcpStream::connect(host_addr).is_ok()
    });
    assert!(TcpStream::connect(("127.0.0.1", controller)).is_err(), "the controller listener is not opened");

    let via_internal = ("127.0.0.1".to_string(), i32::from(internal));
    assert_eq!(told(internal_addr).await, vec![via_internal.clone(), via_internal]);
    let via_host = ("localhost".to_string(), i32::from(host));
    assert_eq!(told(host_addr).await, vec![via_host.clone(), via_host]);

    // Produce through one listener, consume in a group through the other.
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", internal_addr.to_string()).set("acks", "all").create().unwrap();
    for i in 0..20 {
        let value = format!("v{i}");
        producer.send(BaseRecord::<str, str>::to("orders").key("k").payload(&value)).unwrap();
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30)).unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("localhost:{host}"))
        .set("group.id", "shop")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["orders"]).unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 20 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(seen, (0..20).map(|i| format!("v{i}")).collect::<Vec<_>>());
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync).unwrap();
}
