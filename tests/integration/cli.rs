//! The binary's own commands: `--version`, `healthcheck` (the container HEALTHCHECK) and
//! `--log-format json`.

use std::process::Command;

use crate::common::{self, BrokerProcess};

fn gregor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
}

#[test]
fn version_names_the_commit_and_the_protocol() {
    let out = gregor().arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.starts_with(&format!("gregor {}", env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(text.contains("commit ") && text.contains("Kafka 4.1"), "{text}");
}

#[test]
fn healthcheck_passes_against_a_running_broker_and_fails_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let broker = BrokerProcess::spawn(&data, &[("RUST_LOG", "info")]);
    // The wildcard form the container image uses is dialled on 127.0.0.1.
    let listen = format!("0.0.0.0:{}", broker.addr.port());
    let ok = gregor().args(["--listen", &listen, "healthcheck"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok:"));
    // Configured through the environment, as in a container.
    let env = gregor().arg("healthcheck").env("GREGOR__SERVER__LISTEN", broker.addr.to_string()).output().unwrap();
    assert!(env.status.success());
    drop(broker);
    let down = gregor().args(["--listen", &listen, "healthcheck", "--timeout", "2"]).output().unwrap();
    assert!(!down.status.success());
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("no broker answers"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let broker = BrokerProcess::spawn_at(&data, addr, &[], |c| {
        c.arg("--log-format").arg("json");
    });
    common::wait_for_sync(std::time::Duration::from_secs(10), || broker.log().contains("listening"));
    let log = broker.log();
    let first = log.lines().next().expect("a log line");
    assert!(first.starts_with('{') && first.ends_with('}') && first.contains("\"level\""), "{first}");
}
