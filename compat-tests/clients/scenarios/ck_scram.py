"""SCRAM credentials through confluent-kafka (KIP-554: AlterUserScramCredentials,
DescribeUserScramCredentials): upserts for both mechanisms, describe by user and all users,
the broker's refusals (too few iterations, a user changed twice in one request, deleting what
does not exist) with their error codes, and deletion.
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import Checks, bootstrap  # noqa: E402
from confluent_kafka import KafkaError, KafkaException  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
    UserScramCredentialUpsertion)


def outcome(future):
    try:
        return future.result(timeout=20)
    except KafkaException as e:
        return e.args[0]


c = Checks("scram-credentials")
admin = AdminClient({"bootstrap.servers": bootstrap()})
alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
sha256, sha512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512

done = admin.alter_user_scram_credentials([
    UserScramCredentialUpsertion(alice, ScramCredentialInfo(sha256, 8192), b"alice-secret", b"salt-1"),
    UserScramCredentialUpsertion(bob, ScramCredentialInfo(sha512, 4096), b"bob-secret"),
])
c.check({u: outcome(f) for u, f in done.items()} == {alice: None, bob: None}, "two users created")

described = outcome(admin.describe_user_scram_credentials([alice, bob])[alice])
infos = [(i.mechanism, i.iterations) for i in described.scram_credential_infos]
c.check(infos == [(sha256, 8192)], f"alice: SHA-256, 8192 iterations ({infos})")
everyone = outcome(admin.describe_user_scram_credentials())
c.check(alice in everyone and bob in everyone, f"describe all lists both ({sorted(everyone)})")

few = admin.alter_user_scram_credentials([
    UserScramCredentialUpsertion("carol", ScramCredentialInfo(sha256, 1000), b"pw")])
err = outcome(few["carol"])
c.check(isinstance(err, KafkaError) and err.code() == KafkaError.UNACCEPTABLE_CREDENTIAL,
        f"1000 iterations refused: {err}")
twice = admin.alter_user_scram_credentials([
    UserScramCredentialUpsertion(alice, ScramCredentialInfo(sha512, 4096), b"x"),
    UserScramCredentialDeletion(alice, sha256)])
err = outcome(twice[alice])
c.check(isinstance(err, KafkaError) and err.code() == KafkaError.DUPLICATE_RESOURCE,
        f"one change per user per request: {err}")
missing = admin.alter_user_scram_credentials([UserScramCredentialDeletion(bob, sha256)])
err = outcome(missing[bob])
c.check(isinstance(err, KafkaError) and err.code() == KafkaError.RESOURCE_NOT_FOUND,
        f"deleting a credential that does not exist: {err}")

gone = admin.alter_user_scram_credentials([UserScramCredentialDeletion(bob, sha512)])
c.check(outcome(gone[bob]) is None, "bob's credential deleted")
err = outcome(admin.describe_user_scram_credentials([bob])[bob])
c.check(isinstance(err, KafkaError) and err.code() == KafkaError.RESOURCE_NOT_FOUND,
        f"bob is gone: {err}")
admin.alter_user_scram_credentials([UserScramCredentialDeletion(alice, sha256)])[alice].result(timeout=20)
c.finish()
