"""CreateAcls, DescribeAcls and DeleteAcls against an image: Kafka's answers, one behaviour per test."""

import random

import pytest

from kafka_compat.metadata.acl_control import create_acls, delete_acls, describe_acls
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.security.acls import AclOperation as Op
from kafka_compat.security.acls import AclPermissionType as Perm
from kafka_compat.security.acls import PatternType as Pat
from kafka_compat.security.acls import ResourceType as Res
from kafka_compat.security.authorizer import Authorizer

C, D, X = m.CreateAclsRequest, m.DescribeAclsRequest, m.DeleteAclsRequest


def creation(name="orders", op=Op.READ, principal="User:alice", res=Res.TOPIC, pattern=Pat.LITERAL, host="*",
             perm=Perm.ALLOW):
    return C.AclCreation(resource_type=res, resource_name=name, resource_pattern_type=pattern, principal=principal,
                         host=host, operation=op, permission_type=perm)


def create(image, *creations, version=3):
    records, resp = create_acls(image, C(creations=list(creations)), version, rng=random.Random(1))
    return image.apply(records), records, resp


def describe_filter(res=Res.ANY, name=None, pattern=Pat.ANY, principal=None, host=None, op=Op.ANY, perm=Perm.ANY):
    return D(resource_type_filter=res, resource_name_filter=name, pattern_type_filter=pattern,
             principal_filter=principal, host_filter=host, operation=op, permission_type=perm)


def delete_filter(**kw):
    d = describe_filter(**kw)
    return X.DeleteAclsFilter(**{k: getattr(d, k) for k in X.DeleteAclsFilter._fields})


def seeded():
    image, _, _ = create(MetadataImage(cluster_id="c"), creation("orders"), creation("ord", pattern=Pat.PREFIXED),
                         creation("*", Op.DESCRIBE, "User:*"), creation("orders", Op.WRITE, "User:bob"),
                         creation("app", Op.READ, res=Res.GROUP))
    return image


def test_created_acls_are_records_the_authorizer_then_uses():
    image, records, resp = create(MetadataImage(cluster_id="c"), creation(), creation(op=Op.WRITE))
    assert [r.error_code for r in resp.results] == [0, 0] and len(records) == 2
    assert Authorizer().authorize(image.acls, "User:alice", "h", Op.WRITE, Res.TOPIC, "orders")


def test_an_acl_that_exists_already_succeeds_without_a_record():
    image, _, _ = create(MetadataImage(cluster_id="c"), creation())
    _, records, resp = create(image, creation(), creation())
    assert records == [] and [r.error_code for r in resp.results] == [0, 0]


@pytest.mark.parametrize("bad, message", [
    (creation(res=Res.CLUSTER, name="c1"), "The only valid name for the CLUSTER resource is kafka-cluster"),
    (creation(name=""), "Invalid empty resource name"),
    (creation(res=Res.ANY), "Invalid resourceType ANY"),
    (creation(pattern=Pat.MATCH), "Invalid patternType MATCH"),
    (creation(op=Op.ANY), "Invalid operation ANY"),
    (creation(perm=Perm.ANY), "Invalid permissionType ANY"),
    (creation(res=99), "Invalid resourceType UNKNOWN"),
    (creation(principal="alice"), "Could not parse principal from `alice`"),
])
def test_an_invalid_acl_gets_invalid_request_and_the_others_are_created(bad, message):
    _, records, resp = create(MetadataImage(cluster_id="c"), bad, creation())
    assert resp.results[0].error_code == ErrorCode.INVALID_REQUEST and resp.results[0].error_message.startswith(message)
    assert resp.results[1].error_code == 0 and len(records) == 1


def test_version_0_creates_literal_acls_only():
    _, records, resp = create(MetadataImage(cluster_id="c"), creation(pattern=Pat.PREFIXED), version=0)
    assert records == [] and resp.results[0].error_code == ErrorCode.UNSUPPORTED_VERSION


def test_without_an_authorizer_every_acl_api_answers_security_disabled():
    image = MetadataImage(cluster_id="c")
    _, resp = create_acls(image, C(creations=[creation()]), 3, enabled=False)
    assert resp.results[0].error_code == ErrorCode.SECURITY_DISABLED
    assert resp.results[0].error_message == "No Authorizer is configured."
    resp = describe_acls(image, describe_filter(), 3, enabled=False)
    assert resp.error_code == ErrorCode.SECURITY_DISABLED
    _, resp = delete_acls(image, X(filters=[delete_filter()]), 3, enabled=False)
    assert resp.filter_results[0].error_code == ErrorCode.SECURITY_DISABLED


def described(image, version=3, **kw):
    resp = describe_acls(image, describe_filter(**kw), version)
    assert resp.error_code == 0, resp.error_message
    return {(r.resource_type, r.resource_name, r.pattern_type, a.principal, a.operation)
            for r in resp.resources for a in r.acls}


def test_describe_any_lists_every_acl_grouped_by_pattern():
    resp = describe_acls(seeded(), describe_filter(), 3)
    assert [(r.resource_name, r.pattern_type, len(r.acls)) for r in resp.resources] == [
        ("*", Pat.LITERAL, 1), ("ord", Pat.PREFIXED, 1), ("orders", Pat.LITERAL, 2), ("app", Pat.LITERAL, 1)]


def test_describe_match_finds_every_acl_that_applies_to_a_name():
    assert {(n, p) for _, n, p, _, _ in described(seeded(), res=Res.TOPIC, name="orders", pattern=Pat.MATCH)} == {
        ("orders", Pat.LITERAL), ("ord", Pat.PREFIXED), ("*", Pat.LITERAL)}


def test_describe_literal_and_prefixed_filters_match_exactly():
    assert {n for _, n, _, _, _ in described(seeded(), name="orders", pattern=Pat.LITERAL)} == {"orders"}
    assert {n for _, n, _, _, _ in described(seeded(), name="ord", pattern=Pat.PREFIXED)} == {"ord"}
    assert described(seeded(), name="orders", pattern=Pat.PREFIXED) == set()
    assert {n for _, n, _, _, _ in described(seeded(), name="orders")} == {"orders"}  # ANY: that exact name


def test_describe_filters_on_principal_host_operation_and_permission():
    assert {p for *_, p, _ in described(seeded(), principal="User:bob")} == {"User:bob"}
    assert {o for *_, o in described(seeded(), op=Op.WRITE)} == {Op.WRITE}
    assert described(seeded(), perm=Perm.DENY) == set()
    assert len(described(seeded(), host="*")) == 5 and described(seeded(), host="10.0.0.1") == set()


def test_describe_v0_reads_any_as_literal_and_an_unknown_filter_is_invalid():
    assert {p for _, _, p, _, _ in described(seeded(), version=0)} == {Pat.LITERAL}
    resp = describe_acls(seeded(), describe_filter(op=Op.UNKNOWN), 3)
    assert resp.error_code == ErrorCode.INVALID_REQUEST and resp.error_message == "Unknown entryFilter."


def test_delete_removes_what_each_filter_matches_and_lists_it():
    image = seeded()
    records, resp = delete_acls(image, X(filters=[delete_filter(principal="User:bob"),
                                                  delete_filter(res=Res.TOPIC, name="orders", pattern=Pat.MATCH,
                                                                principal="User:alice")]), 3)
    first, second = resp.filter_results
    assert [(a.resource_name, a.principal) for a in first.matching_acls] == [("orders", "User:bob")]
    assert {(a.resource_name, a.pattern_type) for a in second.matching_acls} == {("orders", Pat.LITERAL),
                                                                                  ("ord", Pat.PREFIXED)}
    after = image.apply(records)
    assert len(records) == 3 and len(after.acls) == 2


def test_an_acl_two_filters_match_is_removed_once():
    records, resp = delete_acls(seeded(), X(filters=[delete_filter(), delete_filter(res=Res.GROUP)]), 3)
    assert len(records) == 5 and len(resp.filter_results[1].matching_acls) == 1


def test_a_delete_filter_with_an_unknown_part_fails_alone():
    records, resp = delete_acls(seeded(), X(filters=[delete_filter(pattern=Pat.UNKNOWN),
                                                     delete_filter(res=Res.GROUP)]), 3)
    assert resp.filter_results[0].error_code == ErrorCode.INVALID_REQUEST
    assert resp.filter_results[0].error_message == "Unknown patternFilter."
    assert len(records) == 1


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_responses_encode_at_every_version(version):
    image = seeded()
    f = describe_filter(res=Res.TOPIC, name="orders", pattern=Pat.LITERAL if version == 0 else Pat.MATCH)
    resp = describe_acls(image, f, version)
    again = m.DescribeAclsResponse.decode(b"".join(resp.encode_parts(version)), version)
    assert [r.resource_name for r in again.resources] == [r.resource_name for r in resp.resources]
    _, resp = delete_acls(image, X(filters=[delete_filter(res=Res.TOPIC, name="orders", pattern=Pat.LITERAL)]),
                          version)
    again = m.DeleteAclsResponse.decode(b"".join(resp.encode_parts(version)), version)
    assert len(again.filter_results[0].matching_acls) == 2
