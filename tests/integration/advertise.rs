//! Auto-advertise: with no advertised address configured, a broker bound to every interface
//! tells each client the address that client dialled, not its host name, so the same broker
//! reached under two addresses works through both. A configured address always wins.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::common::RawClient;
use gregor::broker::Broker;
use gregor::config::{Config, Overrides};
use kafka_protocol::messages::{FindCoordinatorRequest, MetadataRequest};
use kafka_protocol::protocol::StrBytes;

/// A broker bound to 0.0.0.0 whose own name is "gregor-host" (what the binary would take from
/// the host name); returns its port and the stop handle.
async fn start(advertised: Option<&str>) -> (u16, tokio::sync::oneshot::Sender<()>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let overrides = Overrides {
        listen: Some("0.0.0.0:0".into()),
        advertised: advertised.map(str::to_string),
        data_dir: Some(tmp.path().to_owned()),
        ..Default::default()
    };
    let config = Config::load(None, &Default::default(), &overrides).unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (host, node_port) = match advertised {
        Some(a) => (a.split(':').next().unwrap().to_string(), a.rsplit(':').next().unwrap().parse().unwrap()),
        None => ("gregor-host".to_string(), port),
    };
    let broker = Arc::new(Broker::open(Arc::new(config), host, node_port).unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(gregor::server::run(listener, broker, async {
        let _ = rx.await;
    }));
    (port, tx, tmp)
}

async fn told(dial: SocketAddr) -> Vec<(String, i32)> {
    let mut c = RawClient::connect(dial).await;
    let md = c.call(12, &MetadataRequest::default().with_topics(Some(vec![]))).await;
    let fc = c.call(3, &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))).await;
    vec![(md.brokers[0].host.to_string(), md.brokers[0].port), (fc.host.to_string(), fc.port)]
}

#[tokio::test]
async fn each_client_is_told_the_address_it_dialled() {
    let (port, stop, _tmp) = start(None).await;
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let want = (ip.to_string(), i32::from(port));
        assert_eq!(told(format!("{ip}:{port}").parse().unwrap()).await, vec![want.clone(), want], "dialled {ip}");
    }
    let _ = stop.send(());
}

#[tokio::test]
async fn a_configured_advertised_address_wins() {
    let (port, stop, _tmp) = start(Some("kafka:29092")).await;
    let want = ("kafka".to_string(), 29092);
    assert_eq!(told(format!("127.0.0.2:{port}").parse().unwrap()).await, vec![want.clone(), want]);
    let _ = stop.send(());
}
