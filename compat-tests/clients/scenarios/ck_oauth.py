"""SASL/OAUTHBEARER through confluent-kafka: the client gets its tokens from `oauth_cb`, RS256
JWTs signed with `openssl` by a key whose public half the broker reads from a JWKS file, as a
compose file for the apache/kafka image configures Kafka's OAuthBearerValidatorCallbackHandler
(KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL=file:..., expected audience and issuer). The client
produces, consumes in a group and lists topics over SASL_PLAINTEXT; a token signed by another
key, an expired one and one for another audience fail with the client's authentication error.
It starts its own broker, so it skips against an external one.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, log, skip, unique_topic  # noqa: E402
from ports import free_port  # noqa: E402

if os.environ.get("GREGOR_BOOTSTRAP"):
    skip("starts its own broker")
if shutil.which("openssl") is None:
    skip("needs the openssl command to sign tokens")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("GREGOR_BIN", os.path.join(REPO, "target", "release", "gregor"))
SECURED = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
AUDIENCE, ISSUER, KID = "gregor", "https://idp.example", "compat-key-1"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa_key(work, name):
    path = os.path.join(work, name)
    subprocess.run(["openssl", "genrsa", "-out", path, "2048"], check=True, capture_output=True)
    modulus = subprocess.run(["openssl", "rsa", "-in", path, "-noout", "-modulus"], check=True,
                             capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    jwk = {"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}
    return path, jwk


def token(key, sub="alice", lifetime=300, aud=AUDIENCE):
    now = int(time.time())
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": KID}).encode())
    claims = b64url(json.dumps({"sub": sub, "iat": now, "exp": now + lifetime, "aud": aud, "iss": ISSUER}).encode())
    signing_input = f"{header}.{claims}".encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input, check=True,
                               capture_output=True).stdout
    # librdkafka takes no token whose lifetime it sees over, so it is told a later one: the
    # broker, which reads `exp`, is what must refuse an expired token.
    return f"{header}.{claims}.{b64url(signature)}", max(now + lifetime, now + 60)


def start(work, jwks):
    ports = {name: free_port() for name in ("PLAINTEXT", "SASL_PLAINTEXT")}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "GREGOR__"))}
    env = dict(base, GREGOR__SERVER__HTTP_LISTEN="off", NO_COLOR="1",
               KAFKA_LISTENERS=",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
               KAFKA_SASL_ENABLED_MECHANISMS="OAUTHBEARER",
               KAFKA_LISTENER_NAME_SASL__PLAINTEXT_OAUTHBEARER_SASL_SERVER_CALLBACK_HANDLER_CLASS=SECURED,
               KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL=f"file://{jwks}",
               KAFKA_SASL_OAUTHBEARER_EXPECTED_AUDIENCE=AUDIENCE,
               KAFKA_SASL_OAUTHBEARER_EXPECTED_ISSUER=ISSUER,
               KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0")
    data = os.path.join(work, "data")
    log_file = open(data + ".log", "a")
    proc = subprocess.Popen([BINARY, "--data-dir", data], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    for port in ports.values():
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gregor exited: {open(data + '.log').read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gregor did not start")
                time.sleep(0.05)
    return proc, ports


VALUES = [f"v{i}".encode() for i in range(10)]


def settings(bootstrap, make_token):
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "OAUTHBEARER",
            "oauth_cb": lambda _config: make_token()}


def works(c, bootstrap, make_token):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient
    topic = unique_topic("ck-oauth")
    p = Producer(settings(bootstrap, make_token))
    for v in VALUES:
        p.produce(topic, v)
    c.check(p.flush(30) == 0, "confluent-kafka oauthbearer: produced")
    cons = Consumer(dict(settings(bootstrap, make_token), **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    cons.subscribe([topic])
    got, deadline = [], time.monotonic() + 60
    while len(got) < len(VALUES) and time.monotonic() < deadline:
        m = cons.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    cons.commit(asynchronous=False)
    cons.close()
    c.check(got == VALUES, f"confluent-kafka oauthbearer: consumed in a group ({len(got)} of {len(VALUES)})")
    admin = AdminClient(settings(bootstrap, make_token))
    c.check(topic in admin.list_topics(timeout=20).topics, "confluent-kafka oauthbearer: admin lists the topic")


def refused(c, bootstrap, make_token, what):
    from confluent_kafka import KafkaException, Producer
    errors = []
    bad = Producer(dict(settings(bootstrap, make_token), error_cb=lambda e: errors.append(e)))
    # The refusal comes back within milliseconds; a longer metadata timeout is only waiting.
    try:
        bad.list_topics(timeout=1)
        c.check(False, f"confluent-kafka oauthbearer: {what} got metadata")
    except KafkaException:
        pass
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        bad.poll(0.2)
    text = "; ".join(str(e) for e in errors)
    c.check("Authentication failed" in text and "invalid_token" in text,
            f"confluent-kafka oauthbearer: {what} fails clearly ({text})")


c = Checks("oauthbearer")
work = tempfile.mkdtemp(prefix="gregor-oauth-")
key, jwk = rsa_key(work, "issuer.pem")
other, _ = rsa_key(work, "other.pem")
jwks = os.path.join(work, "jwks.json")
with open(jwks, "w") as out:
    json.dump({"keys": [jwk]}, out)
broker, ports = start(work, jwks)
try:
    bootstrap = f"127.0.0.1:{ports['SASL_PLAINTEXT']}"
    log("oauthbearer: confluent-kafka with signed tokens")
    works(c, bootstrap, lambda: token(key))
    log("oauthbearer: refused tokens")
    refused(c, bootstrap, lambda: token(other), "a token signed by another key")
    refused(c, bootstrap, lambda: token(key, lifetime=-120), "an expired token")
    refused(c, bootstrap, lambda: token(key, aud="billing"), "a token for another audience")
    c.check(broker.poll() is None, "the broker is still up")
finally:
    broker.terminate()
    broker.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
c.finish()
