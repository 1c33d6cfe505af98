"""StandardAuthorizer's rules, one per test, against ACLs applied to a metadata image as records."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from kafka_compat.protocol import messages as m
from kafka_compat.security.acls import SUPPORTED_OPERATIONS, AclIndex
from kafka_compat.security.acls import AclOperation as Op
from kafka_compat.security.acls import AclPermissionType as Perm
from kafka_compat.security.acls import PatternType as Pat
from kafka_compat.security.acls import ResourceType as Res
from kafka_compat.security.authorizer import STANDARD_AUTHORIZER, Authorizer
from tests.security.helpers import acl_record, image_with

AUTH = Authorizer()
HOST = "10.0.0.7"


def allowed(image, op=Op.READ, name="orders", principal="User:alice", res=Res.TOPIC, host=HOST, authorizer=AUTH):
    return authorizer.authorize(image.acls, principal, host, op, res, name)


def test_a_literal_allow_lets_its_principal_in_and_no_one_else():
    image = image_with(acl_record("orders"))
    assert allowed(image)
    assert not allowed(image, principal="User:bob")
    assert not allowed(image, name="payments")


def test_a_literal_acl_named_like_a_prefix_of_the_resource_does_not_apply():
    assert not allowed(image_with(acl_record("ord")))


def test_a_prefixed_acl_covers_every_name_it_starts_and_no_shorter_one():
    image = image_with(acl_record("ord", pattern=Pat.PREFIXED))
    assert allowed(image, name="ord") and allowed(image, name="orders") and allowed(image, name="ordinal")
    assert not allowed(image, name="or") and not allowed(image, name="xorders")


def test_the_wildcard_resource_principal_and_host():
    assert allowed(image_with(acl_record("*")), name="anything")
    assert allowed(image_with(acl_record("orders", principal="User:*")), principal="User:carol")
    image = image_with(acl_record("orders", host="10.0.0.8"))
    assert not allowed(image) and allowed(image, host="10.0.0.8")


def test_deny_wins_over_allow_wherever_each_comes_from():
    image = image_with(acl_record("orders"), acl_record("ord", pattern=Pat.PREFIXED, perm=Perm.DENY))
    assert not allowed(image)
    image = image_with(acl_record("orders"), acl_record("*", principal="User:*", perm=Perm.DENY))
    assert not allowed(image)
    image = image_with(acl_record("orders"), acl_record("orders", perm=Perm.DENY, host=HOST))
    assert not allowed(image) and allowed(image, host="10.0.0.9")


@pytest.mark.parametrize("granted", [Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.DESCRIBE])
def test_read_write_delete_and_alter_allow_describe(granted):
    assert allowed(image_with(acl_record("orders", granted)), Op.DESCRIBE)


def test_alter_configs_allows_describe_configs_and_nothing_else_is_implied():
    image = image_with(acl_record("orders", Op.ALTER_CONFIGS))
    assert allowed(image, Op.DESCRIBE_CONFIGS) and not allowed(image, Op.DESCRIBE)
    image = image_with(acl_record("orders", Op.READ))
    assert not allowed(image, Op.WRITE) and not allowed(image, Op.DESCRIBE_CONFIGS)


def test_a_deny_is_never_implied():
    image = image_with(acl_record("orders", Op.DESCRIBE), acl_record("orders", Op.READ, perm=Perm.DENY))
    assert allowed(image, Op.DESCRIBE) and not allowed(image, Op.READ)


def test_all_covers_every_operation_both_ways():
    image = image_with(acl_record("orders", Op.ALL))
    assert all(allowed(image, op) for op in SUPPORTED_OPERATIONS[Res.TOPIC])
    image = image_with(acl_record("orders", Op.READ), acl_record("orders", Op.ALL, perm=Perm.DENY))
    assert not allowed(image, Op.READ)


def test_resource_types_are_separate():
    image = image_with(acl_record("orders", res=Res.GROUP))
    assert allowed(image, res=Res.GROUP) and not allowed(image, res=Res.TOPIC)


def test_super_users_may_do_anything_even_against_a_deny():
    authorizer = Authorizer.from_config({"authorizer.class.name": STANDARD_AUTHORIZER,
                                         "super.users": "User:admin; User:ops"})
    image = image_with(acl_record("*", Op.ALL, "User:*", perm=Perm.DENY))
    assert allowed(image, Op.ALTER, principal="User:ops", authorizer=authorizer)
    assert not allowed(image, principal="User:alice", authorizer=authorizer)


def test_allow_everyone_if_no_acl_found_only_where_no_acl_covers_the_resource():
    authorizer = Authorizer.from_config({"authorizer.class.name": STANDARD_AUTHORIZER,
                                         "allow.everyone.if.no.acl.found": "true"})
    image = image_with(acl_record("orders", principal="User:bob"))
    assert allowed(image, name="payments", authorizer=authorizer)
    assert not allowed(image, name="orders", authorizer=authorizer)
    assert not allowed(image, name="payments")  # the default is false


def test_the_config_switches_the_authorizer_on_and_rejects_others():
    assert Authorizer.from_config({}) is None
    assert Authorizer.from_config({"authorizer.class.name": ""}) is None
    with pytest.raises(ValueError, match="not supported"):
        Authorizer.from_config({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"})
    with pytest.raises(ValueError, match="principalType:principalName"):
        Authorizer.from_config({"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": "admin"})


def test_authorized_operations_is_a_bit_per_allowed_operation():
    image = image_with(acl_record("orders", Op.WRITE))
    bits = AUTH.authorized_operations(image.acls, "User:alice", HOST, Res.TOPIC, "orders")
    assert bits == (1 << Op.WRITE) | (1 << Op.DESCRIBE)


def test_authorize_by_resource_type_needs_an_allow_no_deny_overrides():
    def any_topic(*records):
        return AUTH.authorize_by_resource_type(image_with(*records).acls, "User:alice", HOST, Op.WRITE, Res.TOPIC)

    assert not any_topic()
    assert any_topic(acl_record("orders", Op.WRITE))
    assert any_topic(acl_record("ord", Op.WRITE, pattern=Pat.PREFIXED))
    assert not any_topic(acl_record("orders", Op.WRITE), acl_record("or", Op.WRITE, pattern=Pat.PREFIXED,
                                                                     perm=Perm.DENY))
    assert not any_topic(acl_record("orders", Op.WRITE), acl_record("*", Op.WRITE, perm=Perm.DENY))
    assert any_topic(acl_record("*", Op.ALL, "User:*"))


def test_each_decision_is_one_audit_event_when_enabled():
    authorizer = Authorizer(audit=True)
    image = image_with(acl_record("orders"))
    with capture_logs() as logs:
        authorizer.authorize(image.acls, "User:alice", HOST, Op.READ, Res.TOPIC, "orders", api="FETCH")
        authorizer.authorize(image.acls, "User:bob", HOST, Op.READ, Res.TOPIC, "orders", api="FETCH")
    assert [(e["allowed"], e["principal"], e["log_level"]) for e in logs] == [
        (True, "User:alice", "debug"), (False, "User:bob", "info")]
    assert logs[1]["resource"] == "Topic:LITERAL:orders" and logs[1]["rule"] == "DefaultDeny"
    with capture_logs() as logs:
        AUTH.authorize(image.acls, "User:bob", HOST, Op.READ, Res.TOPIC, "orders")
    assert logs == []


def test_removing_an_acl_leaves_the_older_image_as_it_was():
    record = acl_record("orders")
    old = image_with(record)
    new = old.apply([m.RemoveAccessControlEntryRecord(id=record.id)])
    assert allowed(old) and not allowed(new) and len(new.acls) == 0


def test_a_snapshot_of_the_image_rebuilds_the_same_acls():
    image = image_with(acl_record("orders"), acl_record("ord", pattern=Pat.PREFIXED, perm=Perm.DENY))
    again = type(image)(cluster_id="c").apply(image.records(), image.offset)
    assert again.acls == image.acls and not allowed(again)


# A reference authorizer written as a plain scan of Kafka's rules, to check the index against.

def reference(acls: AclIndex, principal, host, op, res, name, allow_if_no_acl=False):
    applicable = [a for _, a in acls if a.resource_type == res and (
        (a.pattern_type == Pat.LITERAL and a.resource_name in (name, "*"))
        or (a.pattern_type == Pat.PREFIXED and name.startswith(a.resource_name)))]

    def decides(a):
        if a.principal not in (principal, "User:*") or a.host not in (host, "*"):
            return False
        if a.operation == Op.ALL or a.operation == op:
            return True
        if a.permission != Perm.ALLOW:
            return False
        return (op == Op.DESCRIBE and a.operation in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER)) or (
            op == Op.DESCRIBE_CONFIGS and a.operation == Op.ALTER_CONFIGS)

    deciding = [a for a in applicable if decides(a)]
    if any(a.permission == Perm.DENY for a in deciding):
        return False
    if deciding:
        return True
    return allow_if_no_acl and not applicable


names = st.sampled_from(["a", "ab", "abc", "abd", "b", "*", "ba"])
ops = st.sampled_from([Op.READ, Op.WRITE, Op.DESCRIBE, Op.ALL, Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS])
acl_st = st.builds(lambda n, o, p, pt, h, pe, r: acl_record(n, o, p, pattern=pt, host=h, perm=pe, res=r),
                   names, ops, st.sampled_from(["User:a", "User:b", "User:*"]),
                   st.sampled_from([Pat.LITERAL, Pat.PREFIXED]), st.sampled_from(["*", "h1", "h2"]),
                   st.sampled_from([Perm.ALLOW, Perm.DENY]), st.sampled_from([Res.TOPIC, Res.GROUP]))


@settings(max_examples=300, deadline=None)
@given(st.lists(acl_st, max_size=12), st.lists(st.integers(0, 11), max_size=4), st.booleans())
def test_the_index_decides_as_a_scan_of_every_acl(records, removals, allow_if_no_acl):
    image = image_with(*records)
    if records:  # removals in a later batch exercise copy-on-write of the buckets
        image = image.apply([m.RemoveAccessControlEntryRecord(id=records[i % len(records)].id) for i in removals])
    authorizer = Authorizer(allow_if_no_acl=allow_if_no_acl)
    for principal in ("User:a", "User:b"):
        for host in ("h1", "h2"):
            for op in (Op.READ, Op.WRITE, Op.DESCRIBE, Op.DESCRIBE_CONFIGS):
                for name in ("a", "ab", "abc", "abcd", "b", "c"):
                    for res in (Res.TOPIC, Res.GROUP):
                        expected = reference(image.acls, principal, host, op, res, name, allow_if_no_acl)
                        assert authorizer.authorize(image.acls, principal, host, op, res, name) == expected
