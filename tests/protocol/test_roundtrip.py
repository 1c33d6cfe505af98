"""Every message, every valid version: random valid object -> bytes -> the same object."""

import pytest
from hypothesis import HealthCheck, given, settings

from kafka_compat.protocol.primitives import join

from .strategies import message, message_class, spec_versions

CASES = [pytest.param(spec, v, id=f"{spec.name}-v{v}") for spec, v in spec_versions()]


@pytest.mark.parametrize(("spec", "version"), CASES)
def test_roundtrip(spec, version):
    cls = message_class(spec)

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(message(spec, version))
    def check(obj):
        data = obj.encode(version)
        assert join(obj.encode_parts(version)) == data
        back = cls.decode(data, version)
        assert back == obj
        assert back.encode(version) == data

    check()


def test_every_schema_version_is_covered():
    names = {spec.name for spec, _ in spec_versions()}
    assert {"ProduceRequest", "FetchResponse", "VotersRecord", "QuorumStateData", "OffsetCommitValue",
            "TransactionLogValue", "PartitionRecord", "SnapshotHeaderRecord", "LeaderChangeMessage",
            "ConsumerProtocolAssignment", "RequestHeader", "ResponseHeader"} <= names
    assert len(CASES) >= 750
