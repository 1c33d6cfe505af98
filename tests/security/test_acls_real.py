"""An ACL matrix through real clients (librdkafka via confluent-kafka) on a real broker with the
StandardAuthorizer: principals from SASL (SCRAM, PLAIN) and from client certificates, literal and
prefixed ACLs, ALLOW and DENY. What is allowed works, what is denied gets Kafka's exact error, and
topics a principal may not describe stay invisible to it."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.security.secure_broker import PASSWORD, running_broker

pytestmark = pytest.mark.timeout(120)
ALICE, BOB, CERT_ALICE = "User:alice", "User:bob", "User:CN=alice,O=kafka-compat dev"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from running_broker(tmp_path_factory)


def as_user(broker, user: str) -> dict:
    if user == "cert-alice":
        return {"bootstrap.servers": broker.bootstrap("MTLS"), "security.protocol": "SSL",
                "ssl.ca.location": str(broker.certs["ca.pem"]), "ssl.keystore.location": str(broker.certs["alice.p12"]),
                "ssl.keystore.password": PASSWORD}
    mechanism, password = ("SCRAM-SHA-512", "alice-secret") if user == "alice" else ("PLAIN", "bob-secret")
    return {"bootstrap.servers": broker.bootstrap("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})  # User:ANONYMOUS, a super user


def acl(name, principal, op, perm=AclPermissionType.ALLOW, rtype=ResourceType.TOPIC,
        pattern=ResourcePatternType.LITERAL) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, "*", op, perm)


def grant(broker, *bindings) -> None:
    a = admin(broker)  # kept until the answers are in: a dropped client cancels them
    for f in a.create_acls(list(bindings)).values():
        f.result(30)


def new_topic(broker, prefix: str) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    a = admin(broker)
    a.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    return name


def produce(broker, user: str, topic: str) -> KafkaError | None:
    outcome = []
    p = Producer({**as_user(broker, user), "message.timeout.ms": 10000})
    p.produce(topic, b"x", on_delivery=lambda err, msg: outcome.append(err))
    p.flush(20)
    assert outcome, "no delivery report"
    return outcome[0]


def consume_error(broker, user: str, topic: str, group: str) -> KafkaError | None:
    """The first error a consumer in `group` sees, or None once it has read a record."""
    c = Consumer({**as_user(broker, user), "group.id": group, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                return msg.error()
            return None
        raise AssertionError("neither a record nor an error")
    finally:
        c.close()


def visible_topics(broker, user: str) -> set[str]:
    return set(AdminClient(as_user(broker, user)).list_topics(timeout=20).topics)


def test_a_literal_write_acl_lets_its_principal_produce_and_refuses_others(broker):
    topic = new_topic(broker, "acl-lit-")
    grant(broker, acl(topic, ALICE, AclOperation.WRITE))
    assert produce(broker, "alice", topic) is None
    err = produce(broker, "bob", topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_topic_without_describe_is_invisible_and_with_it_visible(broker):
    topic = new_topic(broker, "acl-hidden-")
    grant(broker, acl(topic, ALICE, AclOperation.READ))  # READ implies DESCRIBE
    assert topic in visible_topics(broker, "alice")
    assert topic not in visible_topics(broker, "bob")


def test_prefixed_read_acls_on_topic_and_group_let_a_consumer_read(broker):
    prefix = f"acl-pre-{uuid.uuid4().hex[:6]}-"
    topic = new_topic(broker, prefix)
    grant(broker, acl(prefix, ALICE, AclOperation.ALL, pattern=ResourcePatternType.PREFIXED),
          acl(prefix, ALICE, AclOperation.READ, rtype=ResourceType.GROUP, pattern=ResourcePatternType.PREFIXED))
    assert produce(broker, "alice", topic) is None
    assert consume_error(broker, "alice", topic, prefix + "g") is None
    err = consume_error(broker, "bob", topic, prefix + "g")
    assert err is not None and err.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                              KafkaError.GROUP_AUTHORIZATION_FAILED)


def test_a_group_the_principal_may_not_read_is_refused(broker):
    prefix = f"acl-grp-{uuid.uuid4().hex[:6]}-"
    topic = new_topic(broker, prefix)
    grant(broker, acl(prefix, BOB, AclOperation.READ, pattern=ResourcePatternType.PREFIXED),
          acl(prefix, ALICE, AclOperation.READ, rtype=ResourceType.GROUP, pattern=ResourcePatternType.PREFIXED))
    err = consume_error(broker, "bob", topic, prefix + "g")
    assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_deny_wins_over_allow(broker):
    topic = new_topic(broker, "acl-deny-")
    grant(broker, acl(topic, "User:*", AclOperation.ALL),
          acl(topic, ALICE, AclOperation.WRITE, AclPermissionType.DENY))
    err = produce(broker, "alice", topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce(broker, "bob", topic) is None


def test_a_client_certificate_is_the_principal_acls_name(broker):
    topic = new_topic(broker, "acl-cert-")
    grant(broker, acl(topic, CERT_ALICE, AclOperation.WRITE))
    assert produce(broker, "cert-alice", topic) is None
    err = produce(broker, "alice", topic)  # the same name over SASL is another principal
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_creating_a_topic_without_create_on_cluster_or_topic_gets_topic_authorization_failed(broker):
    prefix = f"acl-nocreate-{uuid.uuid4().hex[:6]}-"
    grant(broker, acl(prefix, BOB, AclOperation.CREATE, AclPermissionType.DENY, pattern=ResourcePatternType.PREFIXED),
          acl("kafka-cluster", ALICE, AclOperation.CREATE, rtype=ResourceType.BROKER))
    name = prefix + "t"
    bob = AdminClient(as_user(broker, "bob"))
    with pytest.raises(KafkaException) as e:
        bob.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_acls_are_described_and_deleted_and_the_denied_then_allowed(broker):
    topic = new_topic(broker, "acl-del-")
    grant(broker, acl(topic, ALICE, AclOperation.WRITE))
    assert produce(broker, "bob", topic).code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    f = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, None, None, AclOperation.ANY,
                         AclPermissionType.ANY)
    a = admin(broker)
    described = a.describe_acls(f).result(30)
    assert [(b.principal, b.operation) for b in described] == [(ALICE, AclOperation.WRITE)]
    deleted = a.delete_acls([f])[f].result(30)
    assert len(deleted) == 1
    assert produce(broker, "bob", topic) is None  # no ACL names the topic again: open to all


def test_acl_changes_need_alter_on_the_cluster(broker):
    """Once an ACL names the cluster, only its principals may alter ACLs (the module's broker
    allows everyone on resources no ACL names: this test goes last)."""
    grant(broker, acl("kafka-cluster", ALICE, AclOperation.ALTER, rtype=ResourceType.BROKER))
    bob = AdminClient(as_user(broker, "bob"))
    with pytest.raises(KafkaException) as e:
        for f in bob.create_acls([acl("x", BOB, AclOperation.READ)]).values():
            f.result(30)
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
