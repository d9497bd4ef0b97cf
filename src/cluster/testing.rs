//! A private PostgreSQL server for tests: `initdb` in a temp dir, `postgres` on a free port of
//! 127.0.0.1 (and a socket in the temp dir), stopped when dropped. As root (CI), the server
//! runs as the `postgres` user Debian's package creates, since PostgreSQL refuses to run as
//! root. Without PostgreSQL's programs the server is not started: tests then fail when
//! `GREGOR_REQUIRE_POSTGRES=1` (the README's test command sets it) and are skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PgServer {
    pub url: String,
    child: Child,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("GREGOR_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args...`, as the `postgres` user when we are root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgServer {
    /// A running server, or `None` (with a note) when PostgreSQL is not installed and not required.
    pub fn start() -> Option<PgServer> {
        let Some(bin) = bin_dir() else {
            let required = std::env::var("GREGOR_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(!required, "PostgreSQL is required (GREGOR_REQUIRE_POSTGRES=1) but no initdb was found");
            eprintln!("note: PostgreSQL not installed (no /usr/lib/postgresql/*/bin/initdb): test skipped");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let status = Command::new("chown").arg("postgres:").arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown of the PostgreSQL test dir to postgres failed");
        }
        let out = command(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "gregor", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let child = spawn_postgres(&bin, &data, port, dir.path());
        let url = format!("host=127.0.0.1 port={port} user=gregor dbname=postgres");
        let server = PgServer { url, child, bin, data, port, _dir: dir };
        server.wait_ready();
        Some(server)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Polls until the server accepts connections.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let ready = Command::new(self.bin.join("pg_isready"))
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "gregor"])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ready {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (fast shutdown: sessions are cut) and leaves it stopped.
    pub fn stop(&mut self) {
        assert!(self.pg_ctl_stop("fast"), "pg_ctl stop failed");
        let _ = self.child.wait();
    }

    /// `pg_ctl stop` in shutdown `mode`, waiting for it; whether it worked.
    fn pg_ctl_stop(&self, mode: &str) -> bool {
        command(&self.bin.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts the stopped server again on the same port and data.
    pub fn start_again(&mut self) {
        let sockets = self.data.parent().expect("the data dir is in the temp dir").to_owned();
        self.child = spawn_postgres(&self.bin, &self.data, self.port, &sockets);
        self.wait_ready();
    }
}

fn spawn_postgres(bin: &Path, data: &Path, port: u16, sockets: &Path) -> Child {
    command(&bin.join("postgres"))
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-k"])
        .arg(sockets)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // An immediate shutdown: the data is thrown away anyway.
        self.pg_ctl_stop("immediate");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
