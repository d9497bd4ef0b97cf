"""ACLs enforced over SASL_SSL with SCRAM-SHA-512, for one client (`--client NAME`).

The broker runs the apache/kafka image's authorizer settings (StandardAuthorizer,
super.users=User:admin, no allow.everyone.if.no.acl.found) on one SASL_SSL listener. Setup, with
confluent-kafka logged in as admin: SCRAM-SHA-512 credentials for admin and bob, topics T and
OTHER, 10 values in T, and for User:bob only READ on topic T and READ on group G. Then, with the
client under test:

- bob's produce to T is refused with the client's TOPIC_AUTHORIZATION_FAILED;
- bob's idempotent producer is refused with CLUSTER_AUTHORIZATION_FAILED: Kafka authorizes an
  InitProducerId without transactional id by IDEMPOTENT_WRITE on the cluster or WRITE on some
  topic, and bob has neither (kafka-python 3.0's default producer is idempotent, so this is what
  it shows by default);
- bob consumes T in group G (and commits): every value;
- bob consuming T in another group is refused with GROUP_AUTHORIZATION_FAILED;
- bob's topic listing shows T and not OTHER;
- admin (a super user) produces to OTHER, consumes it in any group and lists both topics;
- the broker is still up.

kcat's librdkafka before 2.6.1 cannot log in with SCRAM to Kafka 4.x or gregor (see
lib/secure.py), so with such a kcat the same users log in with PLAIN on the same listener.
"""
import os
import sys
import tempfile
import shutil
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, log  # noqa: E402
import secure  # noqa: E402

secure.require_own_broker()
CLIENT = secure.chosen_client()
PASSWORDS = {"admin": "admin-secret", "bob": "bob-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items()) + ";")
VALUES = [f"acl-{i}" for i in range(10)]


def setup(bootstrap, ca, topic, other, group):
    from confluent_kafka import Producer
    from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, NewTopic, ResourcePatternType,
                                       ResourceType, ScramCredentialInfo, ScramMechanism,
                                       UserScramCredentialUpsertion)
    plain_admin = {"protocol": "SASL_SSL", "ca": ca, "mechanism": "PLAIN", "user": "admin",
                   "password": PASSWORDS["admin"]}
    admin = secure.ck_admin(bootstrap, plain_admin)
    for f in admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion(u, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), p.encode())
            for u, p in PASSWORDS.items()]).values():
        f.result(timeout=20)
    for f in admin.create_topics([NewTopic(topic, 1, 1), NewTopic(other, 1, 1)]).values():
        f.result(timeout=20)
    for f in admin.create_acls([
            AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:bob", "*",
                       AclOperation.READ, AclPermissionType.ALLOW),
            AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL, "User:bob", "*",
                       AclOperation.READ, AclPermissionType.ALLOW)]).values():
        f.result(timeout=20)
    p = Producer(secure.ck_conf(bootstrap, plain_admin))
    for v in VALUES:
        p.produce(topic, v.encode())
    if p.flush(30) != 0:
        raise SystemExit("SETUP FAILED: admin could not produce to the topic")


c = Checks(f"acls over SASL_SSL ({CLIENT})")
work = tempfile.mkdtemp(prefix="gregor-sec-acls-")
ca = secure.Ca(work, "ca")
broker = secure.Broker(work, {"SASL_SSL": "SASL_SSL"}, {
    "KAFKA_SASL_ENABLED_MECHANISMS": "PLAIN,SCRAM-SHA-512",
    "KAFKA_LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG": JAAS,
    "KAFKA_SSL_KEYSTORE_TYPE": "PEM", "KAFKA_SSL_KEYSTORE_LOCATION": ca.keystore(),
    "KAFKA_AUTHORIZER_CLASS_NAME": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "KAFKA_SUPER_USERS": "User:admin"})
try:
    bootstrap = broker.bootstrap("SASL_SSL")
    suffix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    topic, other, group = f"compat-acl-t-{suffix}", f"compat-acl-other-{suffix}", f"compat-acl-g-{suffix}"
    setup(bootstrap, ca.pem, topic, other, group)

    mechanism = "SCRAM-SHA-512"
    if CLIENT == "kcat" and not secure.kcat_scram_works():
        log(f"KNOWN CLIENT BUG: kcat's librdkafka {secure.kcat_librdkafka()} < 2.6.1 cannot log in with SCRAM "
            "(librdkafka#4895); bob and admin log in with PLAIN on the same SASL_SSL listener")
        mechanism = "PLAIN"

    def user(name):
        return {"protocol": "SASL_SSL", "ca": ca.pem, "mechanism": mechanism, "user": name,
                "password": PASSWORDS[name]}

    bob, admin = user("bob"), user("admin")
    log(f"bob ({mechanism}), READ on {topic} and group {group} only")
    r = secure.op(CLIENT, "produce", bootstrap, bob, topic=topic, values=["bob-was-here"])
    c.check(not r["ok"] and secure.says(r, "topic authorization failed"),
            f"bob's produce to the read-only topic: TOPIC_AUTHORIZATION_FAILED ({r})")
    r = secure.op(CLIENT, "produce", bootstrap, bob, topic=topic, values=["bob-was-here"], idempotent=True)
    c.check(not r["ok"] and secure.says(r, "cluster authorization failed"),
            f"bob's idempotent producer: CLUSTER_AUTHORIZATION_FAILED for InitProducerId ({r})")
    r = secure.op(CLIENT, "consume", bootstrap, bob, topic=topic, group=group, count=len(VALUES))
    c.check(r["ok"] and r["result"] == VALUES, f"bob consumes the topic in his group: {r}")
    r = secure.op(CLIENT, "consume", bootstrap, bob, topic=topic, group=f"{group}-not-bobs", count=1)
    c.check(not r["ok"] and secure.says(r, "group authorization failed"),
            f"bob consuming in another group: GROUP_AUTHORIZATION_FAILED ({r})")
    r = secure.op(CLIENT, "topics", bootstrap, bob)
    c.check(r["ok"] and topic in r["result"] and other not in r["result"],
            f"bob's topic listing shows {topic} and not {other}: {r}")

    log("admin (super user)")
    r = secure.op(CLIENT, "produce", bootstrap, admin, topic=other, values=["from-admin"])
    c.check(r["ok"], f"admin produces to {other}: {r}")
    r = secure.op(CLIENT, "consume", bootstrap, admin, topic=other, group=f"admin-{suffix}", count=1)
    c.check(r["ok"] and r["result"] == ["from-admin"], f"admin consumes {other} in a group without ACLs: {r}")
    r = secure.op(CLIENT, "topics", bootstrap, admin)
    c.check(r["ok"] and topic in r["result"] and other in r["result"], f"admin lists both topics: {r}")
    c.check(broker.alive(), f"the broker is still up: {broker.log_tail()}")
finally:
    broker.stop()
    shutil.rmtree(work, ignore_errors=True)
c.finish()
