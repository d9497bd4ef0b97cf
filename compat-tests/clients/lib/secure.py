"""Shared pieces of the security scenarios (SASL, ACLs, mTLS): a throwaway certificate
authority made with the `openssl` command, a gregor process with TLS/SASL listeners on free
ports, and `op()`, which runs one client operation (produce, consume in a group, list topics)
with any of the five clients in a subprocess and returns what the client reported.

Each operation runs in its own process (lib/sec_client.py, which hands kafkajs to
lib/sec_kafkajs.js and kcat to the kcat command) under a hard timeout: a client that hangs on a
refused login or a broken handshake cannot stall the scenario, and no client state leaks from
one check into the next.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

from compat import log, skip
from ports import free_port  # noqa: F401  (the scenarios use it as secure.free_port)

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(LIB_DIR, "..", "..", ".."))
BINARY = os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor"))
CLIENTS = ("kcat", "confluent-kafka", "kafka-python", "aiokafka", "kafkajs")


def require_own_broker():
    if os.environ.get("GREGOR_BOOTSTRAP"):
        skip("starts its own broker")
    if shutil.which("openssl") is None:
        skip("needs the openssl command for certificates")


def chosen_client():
    """`--client NAME`: the one client this run checks (one row of the compatibility table)."""
    if "--client" not in sys.argv:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} --client {'|'.join(CLIENTS)}")
    name = sys.argv[sys.argv.index("--client") + 1]
    if name not in CLIENTS:
        sys.exit(f"unknown client {name!r}; one of {', '.join(CLIENTS)}")
    return name


# --- certificates ----------------------------------------------------------------------------

def _openssl(*args, cwd):
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {res.stderr.strip()[-400:]}")


class Ca:
    """A certificate authority in `work/<name>`; P-256 keys keep generation fast.
    Certificates are X.509 v3 (rustls refuses v1)."""

    def __init__(self, work, name):
        self.dir = os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "db"))
        self.key, self.pem = os.path.join(self.dir, "ca.key"), os.path.join(self.dir, "ca.pem")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-days", "2", "-subj", f"/CN={name}", "-keyout", self.key, "-out", self.pem, cwd=self.dir)
        open(os.path.join(self.dir, "db", "index.txt"), "w").close()
        with open(os.path.join(self.dir, "db", "serial"), "w") as f:
            f.write("1000\n")
        # `openssl ca` is the only way the installed openssl (3.0) sets explicit validity dates,
        # which an expired certificate needs (no faketime here).
        with open(os.path.join(self.dir, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = local\n[local]\ndatabase = db/index.txt\nnew_certs_dir = db\n"
                    "serial = db/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
                    "preserve = yes\n[any]\ncommonName = supplied\norganizationName = optional\n")

    def leaf(self, name, subject, server=False, not_before=None, not_after=None):
        """Key and certificate files for `subject` (e.g. /O=x/CN=alice): a server certificate for
        localhost/127.0.0.1, or a client one. not_before/not_after (YYYYMMDDHHMMSSZ) set the
        validity explicitly, in the past for an expired certificate; otherwise valid for 2 days."""
        key, csr, pem = (os.path.join(self.dir, f"{name}.{ext}") for ext in ("key", "csr", "pem"))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-subj", subject, "-keyout", key, "-out", csr, cwd=self.dir)
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if server:
                f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        if not_before:
            _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", self.pem, "-keyfile", self.key, "-in", csr,
                     "-out", pem, "-startdate", not_before, "-enddate", not_after, "-extfile", ext, "-notext",
                     cwd=self.dir)
        else:
            _openssl("x509", "-req", "-in", csr, "-CA", self.pem, "-CAkey", self.key, "-CAcreateserial",
                     "-days", "2", "-extfile", ext, "-out", pem, cwd=self.dir)
        return {"key": key, "cert": pem}

    def keystore(self, name="server"):
        """A broker keystore (key + chain in one PEM, as ssl.keystore.location wants)."""
        leaf = self.leaf(name, "/CN=localhost", server=True)
        path = os.path.join(self.dir, f"{name}-keystore.pem")
        with open(path, "w") as out:
            out.write(open(leaf["key"]).read() + open(leaf["cert"]).read())
        return path


# --- the broker ------------------------------------------------------------------------------

class Broker:
    """gregor with named listeners {NAME: PROTOCOL} on free ports of 127.0.0.1, configured with
    the apache/kafka image's KAFKA_* variables in `env`."""

    def __init__(self, work, listeners, env):
        self.ports = {name: free_port() for name in listeners}
        self.log_path = os.path.join(work, "broker.log")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "GREGOR__"))}
        full = dict(base, GREGOR__SERVER__HTTP_LISTEN="off", NO_COLOR="1",
                    KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
                    KAFKA_LISTENERS=",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()),
                    KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=",".join(f"{n}:{p}" for n, p in listeners.items()),
                    **env)
        self.proc = subprocess.Popen([BINARY, "--data-dir", os.path.join(work, "data")], env=full,
                                     stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        for port in self.ports.values():
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gregor exited at start:\n{self.log_tail()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"gregor did not listen on {port} within 30 s:\n{self.log_tail()}")
                    time.sleep(0.05)

    def bootstrap(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=20):
        try:
            return "".join(open(self.log_path).readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- client operations -----------------------------------------------------------------------

def op(client, action, bootstrap, sec, timeout_s=40, **args):
    """Runs one operation with one client and returns {"ok": bool, "result": ..., "error": text}.

    sec: {"protocol": PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL, "ca", "cert", "key" (PEM paths),
    "mechanism", "user", "password"}. action: "produce" (values: [str]), "consume" (group,
    count: reads from the earliest offset in the group until `count` values came, commits) or
    "topics" (the admin client's topic listing; kcat -L). A client that does not answer within
    timeout_s is killed and reported as {"ok": False, "error": "timeout ..."}."""
    spec = dict(args, client=client, action=action, bootstrap=bootstrap, sec=sec,
                deadline_s=max(5, timeout_s - 10))
    cmd = [sys.executable, os.path.join(LIB_DIR, "sec_client.py"), json.dumps(spec)]
    started = time.monotonic()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        return {"ok": False, "error": f"timeout after {timeout_s}s; stderr: {(e.stderr or b'')[-300:]!r}"}
    took = time.monotonic() - started
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if not lines:
        log(f"  {client} {action}: NO ANSWER (exit {res.returncode}): {res.stderr.strip()[-600:]}")
        return {"ok": False, "error": f"no answer (exit {res.returncode}): {res.stderr.strip()[-600:]}",
                "crashed": True}
    out = json.loads(lines[-1])
    out["took_s"] = round(took, 1)
    log(f"  {client} {action}: {'ok' if out['ok'] else 'error'} "
        f"{_short(out.get('result') if out['ok'] else out.get('error'))} ({took:.1f}s)")
    return out


def _short(value, n=int(os.environ.get("SEC_LOG_CHARS", "240"))):
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= n else text[:n] + "..."


def says(outcome, *words):
    """False for a client runner that died without an answer (a crash is not the client's error
    message); otherwise true when the client's error mentions one of `words`, compared without case, spaces and
    punctuation: "TOPIC_AUTHORIZATION_FAILED", "TopicAuthorizationFailedError" and
    "Topic authorization failed" all match "topic authorization failed"."""
    if outcome.get("crashed"):
        return False
    text = re.sub(r"[^a-z0-9]", "", str(outcome.get("error", "")).lower())
    return any(re.sub(r"[^a-z0-9]", "", w.lower()) in text for w in words)


def ck_conf(bootstrap, sec):
    """confluent-kafka settings for `sec` (see op())."""
    conf = {"bootstrap.servers": bootstrap, "security.protocol": sec.get("protocol", "PLAINTEXT")}
    for mine, theirs in (("ca", "ssl.ca.location"), ("cert", "ssl.certificate.location"),
                         ("key", "ssl.key.location"), ("mechanism", "sasl.mechanisms"),
                         ("user", "sasl.username"), ("password", "sasl.password")):
        if sec.get(mine):
            conf[theirs] = sec[mine]
    return conf


def ck_admin(bootstrap, sec):
    from confluent_kafka.admin import AdminClient
    return AdminClient(ck_conf(bootstrap, sec))


def ck_create_topic(bootstrap, topic, sec, partitions=1):
    """Creates `topic` with confluent-kafka's AdminClient over the secured listener and waits
    until metadata shows it led; raises SystemExit with the error otherwise."""
    from compat import wait_until
    admin = ck_admin(bootstrap, sec)
    from confluent_kafka.admin import NewTopic
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
        wait_until(lambda: all(p.leader >= 0 for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values())
                   and admin.list_topics(topic, timeout=10).topics[topic].error is None,
                   f"{topic} led in metadata", deadline_s=20)
    except Exception as e:  # noqa: BLE001
        raise SystemExit(f"SETUP FAILED: CreateTopics({topic}) via confluent-kafka: {type(e).__name__}: {e}")


def kcat_librdkafka():
    """The librdkafka version kcat runs with, as a tuple, e.g. (2, 0, 2)."""
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


# librdkafka before 2.6.1 repeats the client nonce in its SCRAM client-final-message
# (confluentinc/librdkafka#4895). Kafka 4.x, like gregor, compares the nonce exactly (RFC 5802)
# and refuses the login; Kafka 3.8.1-3.9 accepted it with an endsWith check.
SCRAM_NONCE_FIXED_IN = (2, 6, 1)


def kcat_scram_works():
    return kcat_librdkafka() >= SCRAM_NONCE_FIXED_IN
