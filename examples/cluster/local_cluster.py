"""Starts the three brokers of docker-compose.yml as local processes, with the compose file's own
environment for each `gregor-N` service: the container host names (`gregor-N`, `localhost`,
`postgres`) become 127.0.0.1, every listener port a free one, the shared volume
`/srv/gregor-objects` a temp directory, and the `postgres` service a private PostgreSQL
started here from Debian's `postgresql` package (initdb in a temp dir; as the package's
`postgres` user when run as root, since PostgreSQL refuses root).

    python local_cluster.py        # prints the bootstrap addresses, runs until Ctrl-C
    python local_cluster.py --s3   # the same, objects in a bucket of moto's S3 server

`Cluster` is also the entry point of compat-tests/clients/scenarios/cluster_compose.py.
"""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
COMPOSE = os.path.join(HERE, "docker-compose.yml")
sys.path.insert(0, os.path.join(REPO, "examples", "shop"))
from run_local import advertised_listeners, compose_broker_env, free_port, start_gregor  # noqa: E402  (the shop's)
from run_local import localise as shop_localise  # noqa: E402


def gregor_services(path=COMPOSE):
    """Names of the services that run the gregor image, in file order."""
    names, current = [], None
    for line in open(path):
        m = re.match(r"^  ([A-Za-z0-9_-]+):\s*$", line)
        if m:
            current = m.group(1)
        elif current and re.match(r"^    image:\s*gregor(:\S+)?\s*$", line):
            names.append(current)
    return names


def is_root():
    return os.geteuid() == 0


def as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if is_root() else cmd


class Postgres:
    """A private PostgreSQL on a free port of 127.0.0.1 with the database and user the compose
    file's `postgres` service creates (gregor/gregor; trust authentication, so the password in
    the brokers' URL is accepted as it is)."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if os.environ.get("GREGOR_PG_BIN"):
            found = [os.path.join(os.environ["GREGOR_PG_BIN"], "initdb")]
        if not found:
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = os.path.dirname(found[-1])
        # A directory of its own: the postgres user must be able to reach it.
        self.dir = tempfile.mkdtemp(prefix="gregor-pg-")
        if is_root():
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        initdb = subprocess.run(as_postgres([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "gregor",
                                             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]),
                                capture_output=True, text=True)
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr}")
        self.port = free_port()
        self.proc = subprocess.Popen(
            as_postgres([os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-k", self.dir]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while subprocess.run([os.path.join(self.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start within 30 s")
            time.sleep(0.05)
        subprocess.run([os.path.join(self.bin, "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "gregor", "gregor"],
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run(as_postgres([os.path.join(self.bin, "pg_ctl"), "stop", "-D", self.data, "-m", "immediate", "-w"]),
                       capture_output=True)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def localise(env, pg_port, objects_dir):
    """One broker's compose environment made local: host names to 127.0.0.1, its listener ports
    to free ones (as the shop's runner does), PostgreSQL to `pg_port`, the objects volume to
    `objects_dir`."""
    out, _ = shop_localise(env, hosts=r"gregor-\d+|localhost")
    out["GREGOR__CLUSTER__POSTGRES_URL"] = out["GREGOR__CLUSTER__POSTGRES_URL"].replace("@postgres:5432/", f"@127.0.0.1:{pg_port}/")
    out["GREGOR__CLUSTER__OBJECT_STORE_URL"] = out["GREGOR__CLUSTER__OBJECT_STORE_URL"].replace("/srv/gregor-objects", objects_dir)
    return out


class S3Server:
    """moto's S3-compatible server (PyPI `moto[server]`, run from this Python) on a free port of
    127.0.0.1, with one empty bucket. It keeps objects in memory and checks no signatures."""

    BUCKET = "gregor-objects"

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(f"{self.url}/{self.BUCKET}", method="PUT"), timeout=5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start within 60 s (log: {log_path})")
                time.sleep(0.1)

    def env(self):
        """What a broker needs to use the bucket: the URL and the standard AWS variables."""
        return {
            "GREGOR__CLUSTER__OBJECT_STORE_URL": f"s3://{self.BUCKET}/cluster",
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "gregor",
            "AWS_SECRET_ACCESS_KEY": "gregor-secret",
        }

    def object_count(self):
        """How many objects the bucket holds (the first 1,000)."""
        with urllib.request.urlopen(f"{self.url}/{self.BUCKET}?list-type=2", timeout=10) as r:
            return r.read().decode().count("<Key>")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Cluster:
    """PostgreSQL and the compose file's brokers, each started as its service would be. With
    `s3=True` the brokers keep their objects in a bucket of a local S3-compatible server
    ([`S3Server`]) instead of the shared volume."""

    def __init__(self, binary, work=None, s3=False):
        self.binary = binary
        self.work = work or tempfile.mkdtemp(prefix="gregor-cluster-")
        self.pg = Postgres()
        objects = os.path.join(self.work, "objects")
        os.makedirs(objects)
        try:
            self.s3 = S3Server(os.path.join(self.work, "s3.log")) if s3 else None
        except Exception:
            self.pg.stop()
            raise
        self.env = {name: localise(compose_broker_env(COMPOSE, name), self.pg.port, objects) for name in gregor_services()}
        if self.s3:
            for env in self.env.values():
                env.update(self.s3.env())
        self.procs = {}
        for name in self.env:
            self.start(name)
        self.wait_for(list(self.env))

    def wait_for(self, names, timeout_s=60):
        """Waits until Metadata from each of `names` lists exactly those brokers."""
        from confluent_kafka.admin import AdminClient

        want = sorted(self.node_id(n) for n in names)
        deadline = time.monotonic() + timeout_s
        for name in names:
            admin = AdminClient({"bootstrap.servers": self.advertised(name, "PLAINTEXT")})
            while True:
                try:
                    if sorted(admin.list_topics(timeout=5).brokers) == want:
                        break
                except Exception:  # noqa: BLE001 (not up yet)
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not list the brokers {want} within {timeout_s} s")
                time.sleep(0.1)

    def start(self, name):
        self.procs[name] = start_gregor(self.binary, self.env[name], os.path.join(self.work, name))

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def node_id(self, name):
        return int(self.env[name]["KAFKA_NODE_ID"])

    def advertised(self, name, listener):
        return advertised_listeners(self.env[name])[listener]

    def bootstrap(self, listener):
        """Every broker's address on `listener`, comma-separated."""
        return ",".join(self.advertised(name, listener) for name in self.env)

    def log(self, name):
        with open(os.path.join(self.work, name + ".log")) as f:
            return f.read()

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.s3:
            self.s3.stop()
        self.pg.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    binary = os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor"))
    cluster = Cluster(binary, s3="--s3" in sys.argv[1:])
    try:
        print(f"brokers (host listener): {cluster.bootstrap('PLAINTEXT_HOST')}")
        print(f"brokers (internal listener): {cluster.bootstrap('PLAINTEXT')}")
        if cluster.s3:
            print(f"objects: bucket {cluster.s3.BUCKET} of the S3 server at {cluster.s3.url}")
        print(f"PostgreSQL: 127.0.0.1:{cluster.pg.port}, data and logs in {cluster.work}; Ctrl-C stops everything")
        signal.sigwait([signal.SIGINT, signal.SIGTERM])
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
