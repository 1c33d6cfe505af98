"""Cross-implementation: kafka-python 3.x reads what the project writes and the reverse.

kafka-python generates its codecs from its own copy of Kafka's schemas, so it is an independent
implementation. For every message and version both implement: a random object encoded by the
project is decoded by kafka-python with equal values; kafka-python re-encodes it to the same bytes;
the project decodes kafka-python's bytes back to the original object.
"""

import importlib
import pkgutil
import uuid

import kafka.protocol as kp
import pytest
from hypothesis import HealthCheck, given, settings
from kafka.protocol.api_message import ApiMessage

from kafka_compat.protocol.codegen import attr

from .strategies import all_specs, message, message_class

# Where the two disagree, Kafka's spec decides:
# - kafka-python turns the authorized-operations bit fields into sets of ACL operations and back;
#   Kafka's spec says int32 bit field, and values that are not sums of known operation bits do
#   not survive kafka-python's conversion, so values are not compared for these fields (bytes are,
#   with the spec's default value).
# - kafka-python reads any ApiVersionsResponse with a non-zero error code as v0 (brokers answer an
#   unsupported ApiVersions version with a v0 body). The spec encodes the body at the version of the
#   request whatever the error, as the project does; the comparison uses error code 0 there.
BITFIELDS = {"TopicAuthorizedOperations", "ClusterAuthorizedOperations", "AuthorizedOperations"}
# Fields Kafka renamed after the schemas kafka-python copied (same layout): ours -> theirs.
RENAMED = {("TxnOffsetCommitRequest", "generation_id_or_member_epoch"): "generation_id"}


def kafka_python_classes() -> dict:
    found = {}
    for mi in pkgutil.walk_packages(kp.__path__, "kafka.protocol."):
        if ".old" in mi.name or "benchmark" in mi.name:
            continue
        mod = importlib.import_module(mi.name)
        for v in vars(mod).values():
            if isinstance(v, type) and issubclass(v, ApiMessage) and v is not ApiMessage and getattr(v, "_json", None):
                found[v.__name__] = v
    return found


KP = kafka_python_classes()


def cases():
    for spec in all_specs():
        theirs = KP.get(spec.name)
        if theirs is None or spec.type not in ("request", "response"):
            continue
        hi = min(spec.valid_versions.hi, theirs.max_version)
        for v in range(spec.valid_versions.lo, hi + 1):
            yield pytest.param(spec, v, theirs, id=f"{spec.name}-v{v}")


CASES = list(cases())


def normalize(spec, fields, obj, version):
    """Give bit-field fields the spec default (see BITFIELDS) and drop unknown tagged fields
    (kafka-python keeps those under its own names) throughout an object."""
    obj._unknown_tags = None
    for f in fields:
        if not f.present(version):
            continue
        value = getattr(obj, attr(f))
        if f.name in BITFIELDS:
            setattr(obj, attr(f), int(f.default_repr()))
        elif f.type.is_struct and value is not None:
            sub = spec.structs()[f.type.name].fields
            for item in value if f.type.is_array else [value]:
                normalize(spec, sub, item, version)


def same(ours, theirs, spec, fields, version, path="") -> None:
    """Compare our object with kafka-python's field by field (names are snake_case in both)."""
    for f in fields:
        if not f.present(version) or f.name in BITFIELDS:
            continue
        mine, name = getattr(ours, attr(f)), attr(f)
        other = getattr(theirs, RENAMED.get((spec.name, name), name))
        where = f"{path}.{name}"
        if f.type.is_struct:
            sub = spec.structs()[f.type.name].fields
            if mine is None or other is None:
                assert mine is None and other is None, where
            elif f.type.is_array:
                assert len(mine) == len(other), where
                for i, (a, b) in enumerate(zip(mine, other)):
                    same(a, b, spec, sub, version, f"{where}[{i}]")
            else:
                same(mine, other, spec, sub, version, where)
        elif f.type.name == "uuid":
            def norm(u):
                return None if u is None else bytes(u.bytes if isinstance(u, uuid.UUID) else u)

            if f.type.is_array:
                assert [norm(u) for u in mine] == [norm(u) for u in other], where
            else:
                assert norm(mine) == norm(other), where
        elif f.type.name in ("bytes", "records"):
            assert (None if mine is None else bytes(mine)) == (None if other is None else bytes(other)), where
        else:
            assert mine == other, where


def test_kafka_python_implements_the_main_apis():
    names = {c.values[0].name for c in CASES}
    assert {"ProduceRequest", "FetchResponse", "MetadataResponse", "JoinGroupRequest", "ApiVersionsResponse"} <= names


@pytest.mark.parametrize(("spec", "version", "theirs"), CASES)
def test_cross_implementation(spec, version, theirs):
    cls = message_class(spec)

    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(message(spec, version))
    def check(obj):
        normalize(spec, spec.fields, obj, version)
        if spec.name == "ApiVersionsResponse":
            obj.error_code = 0
        data = obj.encode(version)
        decoded = theirs.decode(data, version=version)
        same(obj, decoded, spec, spec.fields, version)
        decoded._header = None
        again = bytes(decoded.encode(version=version))
        back = cls.decode(again, version)
        assert again == data or back == obj, "kafka-python's bytes decode to a different object"
        assert back.encode(version) == again

    check()
