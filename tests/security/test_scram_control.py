"""AlterUserScramCredentials and DescribeUserScramCredentials against an image: Kafka's answers."""

import hashlib

import pytest

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.scram_control import alter_user_scram_credentials, describe_user_scram_credentials
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.security.sasl.scram import SCRAM_SHA_256, SCRAM_SHA_512, ScramServer, sasl_name

A, D = m.AlterUserScramCredentialsRequest, m.DescribeUserScramCredentialsRequest


def upsert(name, password="pw", mech=SCRAM_SHA_256, iterations=4096, salt=b"salt-salt"):
    """What an admin client sends: the password salted on the client side."""
    salted = hashlib.pbkdf2_hmac(mech.hash, password.encode(), salt, iterations)
    return A.ScramCredentialUpsertion(name=name, mechanism=mech.type, iterations=iterations, salt=salt,
                                      salted_password=salted)


def delete(name, mech=SCRAM_SHA_256):
    return A.ScramCredentialDeletion(name=name, mechanism=mech.type)


def alter(image, upsertions=(), deletions=()):
    records, resp = alter_user_scram_credentials(image, A(upsertions=list(upsertions), deletions=list(deletions)))
    return image.apply(records), records, {r.user: (r.error_code, r.error_message) for r in resp.results}


def test_an_upserted_credential_authenticates_its_user_and_keeps_no_password():
    image, records, results = alter(MetadataImage(cluster_id="c"), [upsert("alice", "s3cret", SCRAM_SHA_512)])
    assert results == {"alice": (0, None)}
    assert b"s3cret" not in records[0].encode(0)
    server = ScramServer(SCRAM_SHA_512, lambda user: image.scram.get((user, SCRAM_SHA_512.type)), nonce=lambda: "s")
    first = server.evaluate(b"n,,n=alice,r=c", 0).decode()
    assert first.startswith("r=cs,s=") and first.endswith(",i=4096")


@pytest.mark.parametrize("request_, code, message", [
    (dict(upsertions=[upsert("")]), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
    (dict(upsertions=[upsert("a", iterations=4095)]), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
    (dict(upsertions=[upsert("a", iterations=16385)]), ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations"),
    (dict(deletions=[delete("a")]), ErrorCode.RESOURCE_NOT_FOUND,
     "Attempt to delete a user credential that does not exist"),
    (dict(upsertions=[upsert("a"), upsert("a", mech=SCRAM_SHA_512)]), ErrorCode.DUPLICATE_RESOURCE,
     "A user credential cannot be altered twice in the same request"),
])
def test_refusals(request_, code, message):
    _, records, results = alter(MetadataImage(cluster_id="c"), **request_)
    user = (request_.get("upsertions") or request_.get("deletions"))[0].name
    assert records == [] and results == {user: (code, message)}


def test_an_unknown_mechanism_is_unsupported():
    bad = upsert("a")
    bad.mechanism = 3
    _, _, results = alter(MetadataImage(cluster_id="c"), [bad])
    assert results == {"a": (ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")}


def test_delete_removes_one_mechanism_and_a_user_deleted_and_upserted_together_fails():
    image, _, _ = alter(MetadataImage(cluster_id="c"), [upsert("a"), upsert("b")])
    image, _, _ = alter(image, [upsert("a", mech=SCRAM_SHA_512)])
    image, records, results = alter(image, deletions=[delete("a")])
    assert results == {"a": (0, None)} and set(image.scram) == {("a", 2), ("b", 1)}
    _, records, results = alter(image, [upsert("b")], [delete("b")])
    assert records == [] and results["b"][0] == ErrorCode.DUPLICATE_RESOURCE


def test_describe_lists_mechanisms_and_iterations():
    image, _, _ = alter(MetadataImage(cluster_id="c"), [upsert("alice", iterations=8192), upsert("bob")])
    image, _, _ = alter(image, [upsert("alice", mech=SCRAM_SHA_512)])
    resp = describe_user_scram_credentials(image, D(users=None))
    assert [(r.user, [(c.mechanism, c.iterations) for c in r.credential_infos]) for r in resp.results] == [
        ("alice", [(1, 8192), (2, 4096)]), ("bob", [(1, 4096)])]


def test_describe_of_an_unknown_or_repeated_user():
    image, _, _ = alter(MetadataImage(cluster_id="c"), [upsert("alice")])
    resp = describe_user_scram_credentials(image, D(users=[D.UserName(name="zed"), D.UserName(name="alice"),
                                                           D.UserName(name="alice")]))
    assert [(r.user, r.error_code) for r in resp.results] == [("zed", ErrorCode.RESOURCE_NOT_FOUND),
                                                              ("alice", ErrorCode.DUPLICATE_RESOURCE)]
    assert resp.results[0].error_message == "Attempt to describe a user credential that does not exist: zed"


def test_credentials_survive_a_snapshot_of_the_image():
    image, _, _ = alter(MetadataImage(cluster_id="c"), [upsert("a,b=c")])
    again = MetadataImage(cluster_id="c").apply(image.records())
    assert again.scram == image.scram and sasl_name("a,b=c") == "a=2Cb=3Dc"
