//! Descriptors are a budget: 20,000 partitions on one broker under `ulimit -n 4096`. Every
//! partition is created, written and read by librdkafka, before and after a restart under the
//! same limit, and the broker never holds more descriptors than the limit allows. Before segment
//! files were opened on demand each partition kept three open, and creation failed with EMFILE
//! past about 1,300 partitions.

mod common;

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::BrokerProcess;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const LIMIT: u64 = 4096;
const TOPICS: usize = 20;
const PARTITIONS: i32 = 1000;

fn spawn(dir: &std::path::Path) -> BrokerProcess {
    BrokerProcess::spawn_with(dir, &[], |cmd| {
        // SAFETY: setrlimit is async-signal-safe; the closure runs in the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: LIMIT, rlim_max: LIMIT };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}

fn descriptors(b: &BrokerProcess) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", b.child.id())).map_or(0, |d| d.count())
}

/// Reads every partition from the start; returns the values seen, keyed by (topic, partition).
fn read_everything(bootstrap: &str) -> HashSet<(String, i32)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "many-partitions")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in 0..TOPICS {
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(&format!("many-{t}"), p, Offset::Offset(0)).unwrap();
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < TOPICS * PARTITIONS as usize && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            assert_eq!(m.payload(), Some(format!("{}/{}", m.topic(), m.partition()).as_bytes()));
            seen.insert((m.topic().to_string(), m.partition()));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_partitions_fit_under_ulimit_4096() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut broker = spawn(&data);
    let bootstrap = broker.addr.to_string();

    let started = Instant::now();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("admin client");
    let names: Vec<String> = (0..TOPICS).map(|t| format!("many-{t}")).collect();
    let new: Vec<NewTopic> = names.iter().map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1))).collect();
    // Creating 20,000 partitions takes a while on a loaded machine: give the request the
    // same room as the operation (librdkafka's default request timeout is shorter).
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(180)))
        .request_timeout(Some(Duration::from_secs(200)));
    for r in admin.create_topics(&new, &options).await.expect("create_topics") {
        r.expect("topic created");
    }
    assert!(descriptors(&broker) <= LIMIT as usize);
    eprintln!("created after {:?}", started.elapsed());

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "20")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer");
    let mut pending = Vec::with_capacity(TOPICS * PARTITIONS as usize);
    for name in &names {
        for p in 0..PARTITIONS {
            let value = format!("{name}/{p}");
            let record = FutureRecord::<(), _>::to(name).partition(p).payload(&value);
            pending.push(producer.send_result(record).expect("queue"));
        }
    }
    for delivery in pending {
        delivery.await.expect("delivery future").expect("delivered");
    }
    eprintln!("produced after {:?}", started.elapsed());
    assert_eq!(read_everything(&bootstrap).len(), TOPICS * PARTITIONS as usize, "records read back");
    eprintln!("read after {:?}", started.elapsed());
    let held = descriptors(&broker);
    assert!(held <= LIMIT as usize, "{held} descriptors open");
    assert!(broker.is_running());
    assert!(!broker.log().contains("Too many open files"), "{}", broker.log());

    // A clean stop fsyncs all 20,000; the restart recovers them under the same limit.
    broker.signal(libc::SIGTERM);
    assert!(broker.wait_exit(Duration::from_secs(120)).expect("stopped").success(), "{}", broker.log());
    eprintln!("stopped after {:?}", started.elapsed());
    let broker = spawn(&data);
    eprintln!("restarted after {:?}", started.elapsed());
    let bootstrap = broker.addr.to_string();
    assert_eq!(read_everything(&bootstrap).len(), TOPICS * PARTITIONS as usize, "records read after restart");
    assert!(!broker.log().contains("Too many open files"), "{}", broker.log());
}
