"""Mutual TLS for one client (`--client NAME`): an SSL listener with ssl.client.auth=required, a
truststore CA and ssl.principal.mapping.rules, and ACLs on the principals the certificates map to.

Certificates come from the `openssl` command: a CA, the broker's certificate, client
certificates /O=gregor-compat/CN=admin (super user), /O=gregor-compat/CN=Alice and
/O=gregor-compat/CN=Mallory signed by the CA, an Alice certificate that expired in 2020
(`openssl ca -startdate/-enddate`) and one signed by another CA. The mapping rule
RULE:^CN=([^,]+),O=gregor-compat$/$1/L turns the subject into User:alice, as Kafka does with the
RFC 2253 form of the subject. Only User:alice has ACLs (ALL on topic T, READ on groups with T's
prefix), so with the client under test:

- Alice produces to T, consumes it in a group (and commits) and lists it (the admin call): the
  certificate's principal is what the ACLs see;
- Mallory (a good certificate, no ACLs) is refused T with TOPIC_AUTHORIZATION_FAILED;
- the expired certificate, the unknown CA's certificate, no certificate at all and a PLAINTEXT
  client on the TLS port each fail with the client's own error (printed; it must name the TLS problem where the client
  can know it, see CLEAR below), and after each a good client is served again;
- the broker is still up at the end.
"""
import os
import shutil
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, log  # noqa: E402
import secure  # noqa: E402

secure.require_own_broker()
CLIENT = secure.chosen_client()
SUBJECT = "/O=gregor-compat/CN={}"
RULES = "RULE:^CN=([^,]+),O=gregor-compat$/$1/L,DEFAULT"
VALUES = [f"mtls-{i}" for i in range(5)]


def setup(bootstrap, admin_sec, topic, group_prefix):
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, NewTopic, ResourcePatternType,
                                       ResourceType)
    admin = secure.ck_admin(bootstrap, admin_sec)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=20)
        for f in admin.create_acls([
                AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                           AclOperation.ALL, AclPermissionType.ALLOW),
                AclBinding(ResourceType.GROUP, group_prefix, ResourcePatternType.PREFIXED, "User:alice", "*",
                           AclOperation.READ, AclPermissionType.ALLOW)]).values():
            f.result(timeout=20)
    except Exception as e:  # noqa: BLE001
        raise SystemExit(f"SETUP FAILED: the admin certificate could not create the topic and ACLs: "
                         f"{type(e).__name__}: {e}")


c = Checks(f"mtls ({CLIENT})")
work = tempfile.mkdtemp(prefix="gregor-sec-mtls-")
ca, stranger = secure.Ca(work, "compat-ca"), secure.Ca(work, "unknown-ca")
certs = {name: ca.leaf(name, SUBJECT.format(cn)) for name, cn in
         (("admin", "admin"), ("alice", "Alice"), ("mallory", "Mallory"))}
certs["expired"] = ca.leaf("expired", SUBJECT.format("Alice"), not_before="20200101000000Z",
                           not_after="20200102000000Z")
certs["unknown-ca"] = stranger.leaf("alice", SUBJECT.format("Alice"))
broker = secure.Broker(work, {"SSL": "SSL"}, {
    "KAFKA_SSL_KEYSTORE_TYPE": "PEM", "KAFKA_SSL_KEYSTORE_LOCATION": ca.keystore(),
    "KAFKA_SSL_TRUSTSTORE_TYPE": "PEM", "KAFKA_SSL_TRUSTSTORE_LOCATION": ca.pem,
    "KAFKA_SSL_CLIENT_AUTH": "required", "KAFKA_SSL_PRINCIPAL_MAPPING_RULES": RULES,
    "KAFKA_AUTHORIZER_CLASS_NAME": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "KAFKA_SUPER_USERS": "User:admin"})


def tls(name):
    return {"protocol": "SSL", "ca": ca.pem, **certs[name]}


# What each client can say about a refused handshake. With TLS 1.3 the client finishes its side
# of the handshake before the broker checks the client certificate, so the broker's alert
# (certificate_expired, unknown_ca) arrives on the first read; librdkafka, Python's ssl module and
# node report that alert. A PLAINTEXT client on a TLS port only sees the broker hang up.
CLEAR = {
    "expired": ("certificate expired", "certificate_expired", "CERTIFICATE_EXPIRED"),
    # A client may also leave out a certificate that the CA names in the broker's
    # CertificateRequest do not cover; the broker then answers certificate_required.
    "unknown-ca": ("unknown ca", "unknown_ca", "UNKNOWN_CA", "certificate required"),
    "none": ("certificate required", "CERTIFICATE_REQUIRED"),
}
if CLIENT == "aiokafka":
    # aiokafka 0.14 loses the alert that arrives after its TLS 1.3 handshake and reports only
    # "Connection at HOST:PORT closed" / "Unable to bootstrap" (on a TLSv1.2-only listener it
    # shows [SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] and [SSL: TLSV1_ALERT_UNKNOWN_CA]).
    CLEAR = {"expired": ("Unable to bootstrap",), "unknown-ca": ("Unable to bootstrap",),
             "none": ("Unable to bootstrap",)}
PLAINTEXT_CLEAR = {
    # librdkafka 2.0.2 guesses the cause ("connecting to a SSL listener?"); 2.16 no longer adds
    # that hint to this disconnect and says "Disconnected: connection closed by peer ... in
    # state APIVERSION_QUERY".
    "kcat": ("connecting to a SSL listener",),
    "confluent-kafka": ("connecting to a SSL listener", "connection closed by peer"),
    "kafka-python": ("Unable to bootstrap",),
    "aiokafka": ("Unable to bootstrap",),
    "kafkajs": ("KafkaJSConnectionError", "Connection error", "KafkaJSNumberOfRetriesExceeded"),
}

try:
    bootstrap = broker.bootstrap("SSL")
    suffix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    topic, group_prefix = f"compat-mtls-{suffix}", f"compat-mtls-g-{suffix}"
    setup(bootstrap, tls("admin"), topic, group_prefix)

    log("Alice: a certificate from the trusted CA, mapped to User:alice")
    r = secure.op(CLIENT, "produce", bootstrap, tls("alice"), topic=topic, values=VALUES)
    c.check(r["ok"], f"Alice produces over mTLS: {r}")
    r = secure.op(CLIENT, "consume", bootstrap, tls("alice"), topic=topic, group=f"{group_prefix}-1", count=len(VALUES))
    c.check(r["ok"] and r["result"] == VALUES, f"Alice consumes in a group over mTLS: {r}")
    r = secure.op(CLIENT, "topics", bootstrap, tls("alice"))
    c.check(r["ok"] and r["result"] == [topic], f"Alice's admin client lists exactly her topic: {r}")
    r = secure.op(CLIENT, "produce", bootstrap, tls("mallory"), topic=topic, values=["m"])
    c.check(not r["ok"] and secure.says(r, "topic authorization failed"),
            f"Mallory (trusted CA, no ACLs) is refused the topic: TOPIC_AUTHORIZATION_FAILED ({r})")

    def refused(what, sec, clear):
        r = secure.op(CLIENT, "topics", bootstrap, sec, timeout_s=30, expect_refusal=True)
        c.check(not r["ok"], f"{what}: no metadata ({r})")
        c.check(secure.says(r, *clear), f"{what}: the client's error says {' / '.join(clear)}: {r.get('error')}")
        probe = secure.op(CLIENT, "topics", bootstrap, tls("alice"))
        c.check(probe["ok"] and topic in probe["result"], f"after {what}: a good client is served ({probe})")

    refused("an expired client certificate", tls("expired"), CLEAR["expired"])
    refused("a certificate from an unknown CA", {"protocol": "SSL", "ca": ca.pem, **certs["unknown-ca"]},
            CLEAR["unknown-ca"])
    refused("a TLS client without a certificate", {"protocol": "SSL", "ca": ca.pem}, CLEAR["none"])
    refused("a PLAINTEXT client on the TLS port", {"protocol": "PLAINTEXT"}, PLAINTEXT_CLEAR[CLIENT])
    c.check(broker.alive(), f"the broker is still up: {broker.log_tail()}")
finally:
    broker.stop()
    shutil.rmtree(work, ignore_errors=True)
c.finish()
