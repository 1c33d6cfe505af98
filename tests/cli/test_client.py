"""The cluster client's own paths: leader retries and old API versions (against a scripted
broker), and reading fetched record bytes."""

from __future__ import annotations

import pytest

from kafka_compat.client import Cluster, fetched_end, iter_fetched
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import Record, build_batch, build_marker_batch, build_message_set
from kafka_compat.records import compression as codecs

from tests.cli.fake_broker import FakeBroker

K = m.ApiKey


def test_produce_goes_again_after_not_leader_with_fresh_metadata():
    answers = iter([ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.NONE])
    P = m.ProduceResponse

    def produce(req, version):
        return P(responses=[P.TopicProduceResponse(name="t", partition_responses=[
            P.PartitionProduceResponse(index=0, error_code=next(answers), base_offset=42)])])

    fake = FakeBroker({K.METADATA: None, K.PRODUCE: produce}, {K.METADATA: (0, 12), K.PRODUCE: (3, 11)})
    fake.handlers[K.METADATA] = fake.metadata({"t": 1})
    try:
        with Cluster(fake.bootstrap, backoff=0) as c:
            answer = c.produce("t", {0: bytes(build_batch([Record(value=b"v")]))})
    finally:
        fake.close()
    assert answer[0].base_offset == 42
    assert [k for k, _, _ in fake.requests] == [K.METADATA, K.PRODUCE, K.METADATA, K.PRODUCE]


@pytest.mark.parametrize("newest", [False, True], ids=["old-versions", "new-versions"])
def test_group_offsets_at_old_and_new_versions(newest):
    """FindCoordinator before/after batched keys (v4), OffsetFetch before/after groups (v8)."""
    stored: dict[tuple[str, str, int], int] = {}
    F, C, O = m.FindCoordinatorResponse, m.OffsetCommitResponse, m.OffsetFetchResponse

    def find(req, version):
        if version >= 4:
            return F(coordinators=[F.Coordinator(key=req.coordinator_keys[0], node_id=1, host="127.0.0.1", port=fake.port)])
        return F(node_id=1, host="127.0.0.1", port=fake.port)

    def commit(req, version):
        assert req.generation_id_or_member_epoch == -1 and req.member_id == ""
        for t in req.topics:
            for p in t.partitions:
                stored[req.group_id, t.name, p.partition_index] = p.committed_offset
        return C(topics=[C.OffsetCommitResponseTopic(name=t.name, partitions=[
            C.OffsetCommitResponsePartition(partition_index=p.partition_index) for p in t.partitions]) for t in req.topics])

    def fetch(req, version):
        groups = [(g.group_id, g.topics) for g in req.groups] if version >= 8 else [(req.group_id, req.topics)]
        out = []
        for group, topics in groups:
            Topic, Part = (O.OffsetFetchResponseTopics, O.OffsetFetchResponsePartitions) if version >= 8 else (
                O.OffsetFetchResponseTopic, O.OffsetFetchResponsePartition)
            out.append((group, [Topic(name=t.name, partitions=[
                Part(partition_index=p, committed_offset=stored.get((group, t.name, p), -1)) for p in t.partition_indexes])
                for t in topics]))
        if version >= 8:
            return O(groups=[O.OffsetFetchResponseGroup(group_id=g, topics=ts) for g, ts in out])
        return O(topics=out[0][1])

    versions = {K.METADATA: (0, 12), K.FIND_COORDINATOR: (0, 6 if newest else 3),
                K.OFFSET_COMMIT: (0, 9 if newest else 7), K.OFFSET_FETCH: (0, 9 if newest else 7)}
    fake = FakeBroker({K.FIND_COORDINATOR: find, K.OFFSET_COMMIT: commit, K.OFFSET_FETCH: fetch}, versions)
    fake.handlers[K.METADATA] = fake.metadata({})
    try:
        with Cluster(fake.bootstrap) as c:
            assert c.committed("g", "t", [0, 1]) == {}
            c.commit("g", "t", {0: 5, 1: 7})
            assert c.committed("g", "t", [0, 1, 2]) == {0: 5, 1: 7}
    finally:
        fake.close()
    assert {v for k, v, _ in fake.requests if k == K.OFFSET_FETCH} == {9 if newest else 7}


def test_fetched_records_skip_markers_and_a_cut_off_batch():
    first = build_batch([Record(value=b"a", timestamp=1), Record(value=b"b", timestamp=1)], base_offset=10,
                        compression=codecs.LZ4)
    marker = build_marker_batch(True, 1, 0, 0, 1, base_offset=12)
    last = build_batch([Record(value=b"c", timestamp=1)], base_offset=13)
    data = bytes(first + marker + last[:-5])  # the broker's size limit cut the last batch
    assert [(r.offset, r.value) for r in iter_fetched(data)] == [(10, b"a"), (11, b"b")]
    assert fetched_end(data) == 13  # past the marker: the next fetch starts at the cut batch
    assert fetched_end(b"") is None and list(iter_fetched(None)) == []


def test_fetched_legacy_message_sets_are_read():
    data = build_message_set([Record(value=b"x", timestamp=5, offset=3), Record(value=b"y", timestamp=6, offset=4)],
                             magic=1, compression=codecs.GZIP)
    assert [(r.offset, r.value) for r in iter_fetched(data)] == [(3, b"x"), (4, b"y")]
    assert fetched_end(data) == 5
