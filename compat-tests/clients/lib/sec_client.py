"""One client operation over a secured listener, for lib/secure.py's op(): reads a JSON spec
from argv[1], runs it with the named client and prints one JSON line
{"ok": bool, "result": ..., "error": "the client's own error text"}.

confluent-kafka, kafka-python and aiokafka run here; kcat runs as the kcat command and kafkajs
as lib/sec_kafkajs.js (same spec on argv, same JSON line on stdout). Errors are reported as the
client shows them to an application (exception type and message, error code names, or kcat's
and librdkafka's stderr lines), because that is what the scenarios judge.
"""
import asyncio
import json
import logging
import os
import subprocess
import sys
import time

LIB_DIR = os.path.dirname(os.path.abspath(__file__))
spec = json.loads(sys.argv[1])
sec = spec["sec"]
BOOTSTRAP = spec["bootstrap"]
DEADLINE_S = spec.get("deadline_s", 30)
# Producers are plain (not idempotent) unless asked: kafka-python 3.0 would otherwise turn
# idempotence on by itself, and its InitProducerId is authorized differently from Produce.
IDEMPOTENT = bool(spec.get("idempotent", False))
# How long an admin client (or kcat -L) waits for its first metadata: short when the scenario
# expects the connection to be refused, so that each refusal costs a second, not the whole
# deadline. A refused TLS handshake on 127.0.0.1 fails, and the client says why, within
# milliseconds; confluent-kafka's runner below still polls up to 5 s for that reason.
CONNECT_S = 1 if spec.get("expect_refusal") else 10


def emit(ok, result=None, error=None):
    print(json.dumps({"ok": ok, "result": result, "error": error}), flush=True)
    sys.exit(0)


class Logged(logging.Handler):
    """kafka-python and aiokafka log the reason of a failed connection or login and raise a
    generic error; the log lines are part of what the client tells its user."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        msg = record.getMessage()
        if record.name == "librdkafka" or record.levelno >= logging.WARNING or "fail" in msg.lower() or "error" in msg.lower():
            self.lines.append(f"{record.levelname} {record.name}: {msg}")


LOGGED = Logged()
logging.getLogger().addHandler(LOGGED)
logging.getLogger().setLevel(logging.INFO)


def with_log(text):
    tail = [line for line in LOGGED.lines if line not in text][-4:]
    return text + (" | log: " + " || ".join(tail) if tail else "")


# --- confluent-kafka (librdkafka) ------------------------------------------------------------

def rd_settings():
    s = {"security.protocol": sec.get("protocol", "PLAINTEXT")}
    for mine, theirs in (("ca", "ssl.ca.location"), ("cert", "ssl.certificate.location"),
                         ("key", "ssl.key.location"), ("mechanism", "sasl.mechanisms"),
                         ("user", "sasl.username"), ("password", "sasl.password")):
        if sec.get(mine):
            s[theirs] = sec[mine]
    return s


def confluent():
    from confluent_kafka import Consumer, KafkaError, Producer
    from confluent_kafka.admin import AdminClient
    errors = []
    base = dict(rd_settings(), **{"bootstrap.servers": BOOTSTRAP, "error_cb": lambda e: errors.append(str(e)),
                                  "logger": logging.getLogger("librdkafka")})

    def fail(what):
        emit(False, error=with_log("; ".join([what] + errors[-3:])))

    action = spec["action"]
    if action == "produce":
        reports = []
        p = Producer(dict(base, **{"message.timeout.ms": int(DEADLINE_S * 1000) - 2000, "acks": "all",
                                   "enable.idempotence": IDEMPOTENT}))
        try:
            for v in spec["values"]:
                p.produce(spec["topic"], v.encode(), on_delivery=lambda err, msg: reports.append(err))
            p.flush(DEADLINE_S)
        except Exception as e:  # noqa: BLE001 - a fatal producer error surfaces as an exception
            cause = e.__cause__ or e.__context__
            fail(f"{type(cause).__name__}: {cause} (raised as {type(e).__name__})" if cause else f"{type(e).__name__}: {e}")
        bad = [str(e) for e in reports if e is not None]
        if bad or len(reports) != len(spec["values"]):
            fail(f"delivery failed: {bad[0] if bad else 'no report'} ({len(bad)} of {len(spec['values'])})")
        emit(True, len(reports))
    if action == "consume":
        cons = Consumer(dict(base, **{"group.id": spec["group"], "auto.offset.reset": "earliest",
                                      "enable.auto.commit": False}))
        cons.subscribe([spec["topic"]])
        got, deadline = [], time.monotonic() + DEADLINE_S
        try:
            while len(got) < spec["count"] and time.monotonic() < deadline:
                m = cons.poll(0.5)
                if m is None:
                    continue
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    fail(f"consumer error: {m.error()}")
                got.append(m.value().decode())
            if len(got) < spec["count"]:
                fail(f"only {len(got)} of {spec['count']} values within {DEADLINE_S}s")
            cons.commit(asynchronous=False)
        except Exception as e:  # noqa: BLE001 - the client's exception is the answer
            fail(f"{type(e).__name__}: {e}")
        finally:
            cons.close()
        emit(True, got)
    if action == "topics":
        admin = AdminClient(base)
        try:
            md = admin.list_topics(timeout=CONNECT_S)
        except Exception as e:  # noqa: BLE001
            # The reason (TLS alert, refused login) reaches error_cb, which runs inside poll().
            deadline = time.monotonic() + 5
            while not errors and time.monotonic() < deadline:
                admin.poll(0.2)
            fail(f"{type(e).__name__}: {e}")
        emit(True, sorted(md.topics))


# --- kafka-python and aiokafka ---------------------------------------------------------------

def py_settings(aio):
    s = {"security_protocol": sec.get("protocol", "PLAINTEXT")}
    if sec.get("mechanism"):
        s.update(sasl_mechanism=sec["mechanism"], sasl_plain_username=sec["user"],
                 sasl_plain_password=sec["password"])
    if "SSL" in s["security_protocol"]:
        if aio:
            from aiokafka.helpers import create_ssl_context
            s["ssl_context"] = create_ssl_context(cafile=sec.get("ca"), certfile=sec.get("cert"),
                                                  keyfile=sec.get("key"))
        else:
            s.update(ssl_cafile=sec.get("ca"), ssl_certfile=sec.get("cert"), ssl_keyfile=sec.get("key"))
            s["ssl_check_hostname"] = True
    return s


def kafka_python():
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    s = py_settings(aio=False)
    action = spec["action"]
    try:
        if action == "produce":
            p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=IDEMPOTENT, max_block_ms=int(DEADLINE_S * 1000) // 2,
                              request_timeout_ms=int(DEADLINE_S * 1000) // 2, **s)
            futures = [p.send(spec["topic"], v.encode()) for v in spec["values"]]
            for f in futures:
                f.get(timeout=DEADLINE_S / 2)
            p.close(timeout=5)
            emit(True, len(futures))
        if action == "consume":
            cons = KafkaConsumer(spec["topic"], bootstrap_servers=BOOTSTRAP, group_id=spec["group"],
                                 auto_offset_reset="earliest", enable_auto_commit=False, **s)
            got, deadline = [], time.monotonic() + DEADLINE_S
            while len(got) < spec["count"] and time.monotonic() < deadline:
                for msgs in cons.poll(timeout_ms=500).values():
                    got.extend(m.value.decode() for m in msgs)
            if len(got) < spec["count"]:
                emit(False, error=with_log(f"only {len(got)} of {spec['count']} values within {DEADLINE_S}s"))
            cons.commit()
            cons.close()
            emit(True, got)
        if action == "topics":
            admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=int(DEADLINE_S * 1000) // 2,
                                     bootstrap_timeout_ms=CONNECT_S * 1000, **s)
            topics = admin.list_topics()
            admin.close()
            emit(True, sorted(topics))
    except Exception as e:  # noqa: BLE001
        emit(False, error=with_log(f"{type(e).__name__}: {e}"))


def aiokafka():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient
    s = py_settings(aio=True)
    action = spec["action"]

    async def run():
        if action == "produce":
            p = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=IDEMPOTENT,
                                 request_timeout_ms=int(DEADLINE_S * 1000) // 2, **s)
            await p.start()
            try:
                for v in spec["values"]:
                    await p.send_and_wait(spec["topic"], v.encode())
            finally:
                await p.stop()
            return len(spec["values"])
        if action == "consume":
            cons = AIOKafkaConsumer(spec["topic"], bootstrap_servers=BOOTSTRAP, group_id=spec["group"],
                                    auto_offset_reset="earliest", enable_auto_commit=False, **s)
            await cons.start()
            got = []
            try:
                deadline = time.monotonic() + DEADLINE_S
                while len(got) < spec["count"] and time.monotonic() < deadline:
                    for msgs in (await cons.getmany(timeout_ms=500)).values():
                        got.extend(m.value.decode() for m in msgs)
                if len(got) < spec["count"]:
                    raise TimeoutError(f"only {len(got)} of {spec['count']} values within {DEADLINE_S}s")
                await cons.commit()
            finally:
                await cons.stop()
            return got
        if action == "topics":
            admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, **s)
            await admin.start()
            try:
                return sorted(await admin.list_topics())
            finally:
                await admin.close()

    try:
        emit(True, asyncio.run(asyncio.wait_for(run(), DEADLINE_S)))
    except Exception as e:  # noqa: BLE001
        emit(False, error=with_log(f"{type(e).__name__}: {e}"))


# --- kcat (librdkafka 2.0.2 from Debian) -----------------------------------------------------

def kcat():
    x = []
    for k, v in rd_settings().items():
        x += ["-X", f"{k}={v}"]
    action = spec["action"]
    if action == "produce":
        cmd = ["kcat", "-b", BOOTSTRAP, "-P", "-t", spec["topic"], "-X", "acks=all",
               "-X", f"enable.idempotence={str(IDEMPOTENT).lower()}",
               "-X", f"message.timeout.ms={int(DEADLINE_S * 1000) - 2000}"] + x
        stdin = "".join(v + "\n" for v in spec["values"])
    elif action == "consume":
        cmd = ["kcat", "-b", BOOTSTRAP, "-G", spec["group"], "-e", "-q", "-f", "%s\\n",
               "-X", "auto.offset.reset=earliest"] + x + [spec["topic"]]
        stdin = ""
    else:
        cmd = ["kcat", "-b", BOOTSTRAP, "-L", "-J", "-m", str(min(CONNECT_S, 5))] + x
        stdin = ""
    try:
        res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=DEADLINE_S)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        emit(False, error=f"kcat did not finish within {DEADLINE_S}s; stderr: {err.strip()[-600:]}")
    err = res.stderr.strip()
    if action == "produce":
        # kcat -P exits 0 even when deliveries failed; it says so on stderr.
        if res.returncode != 0 or "ERROR" in err:
            emit(False, error=f"exit {res.returncode}: {err[-600:]}")
        emit(True, len(spec["values"]))
    if action == "consume":
        got = res.stdout.splitlines()
        if res.returncode != 0 or len(got) < spec["count"] or "ERROR" in err:
            emit(False, error=f"exit {res.returncode}, {len(got)} of {spec['count']} values: {err[-600:]}")
        # kcat -G auto-commits (librdkafka's default) and commits once more when it closes at -e.
        emit(True, got)
    if res.returncode != 0:
        emit(False, error=f"exit {res.returncode}: {err[-600:]}")
    emit(True, sorted(t["topic"] for t in json.loads(res.stdout)["topics"]))


def kafkajs():
    cache = os.environ.get("GREGOR_CACHE") or os.path.expanduser("~/.cache/gregor")
    env = dict(os.environ, GREGOR_NODE_MODULES=os.path.join(cache, "node", "node_modules"))
    try:
        res = subprocess.run(["node", os.path.join(LIB_DIR, "sec_kafkajs.js"), json.dumps(spec)], env=env,
                             capture_output=True, text=True, timeout=DEADLINE_S + 5)
    except subprocess.TimeoutExpired:
        emit(False, error=f"kafkajs did not finish within {DEADLINE_S + 5}s")
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if not lines:
        emit(False, error=f"node exited {res.returncode} without an answer: {res.stderr.strip()[-600:]}")
    print(lines[-1], flush=True)
    sys.exit(0)


{"confluent-kafka": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka, "kcat": kcat,
 "kafkajs": kafkajs}[spec["client"]]()
emit(False, error=f"unknown action {spec['action']!r}")
