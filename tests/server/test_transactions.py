"""Transactions through the wire with bad or out-of-turn requests: Kafka's error codes, and nothing
acknowledged lost (raw requests from the project's client against a real broker process)."""

import time
import urllib.request

import pytest

from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import Record, build_batch, iter_headers, iter_records
from kafka_compat.testing.broker_process import free_port
from kafka_compat.testing.waiting import wait_until
from tests.server.test_bad_input import create

pytestmark = pytest.mark.timeout(60)
E = ErrorCode


def now_ms() -> int:
    """Record timestamps near the markers' (a marker is stamped now; older data would roll the
    segment on segment.ms, and the helper reads one segment)."""
    return int(time.time() * 1000)


def wait_for_coordinator(conn: BrokerConnection, txn_id: str = "any") -> None:
    """Until `txn_id` has a transaction coordinator (__transaction_state is created by the first
    transaction lookup, as Kafka does)."""
    F = m.FindCoordinatorRequest
    wait_until(lambda: conn.request(F(key_type=1, coordinator_keys=[txn_id]), 4).coordinators[0].error_code == 0,
               "a transaction coordinator", timeout=30)


@pytest.fixture
def conn(broker):
    with BrokerConnection.to(broker.bootstrap) as c:
        wait_for_coordinator(c)
        yield c


def values(conn: BrokerConnection, topic: str) -> list[bytes]:
    """The data records of partition 0 (read_uncommitted), control batches left out as clients do."""
    F = m.FetchRequest
    resp = conn.request(F(max_wait_ms=0, max_bytes=1 << 24, topics=[F.FetchTopic(topic=topic, partitions=[
        F.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 24)])]), 11)
    data = resp.responses[0].partitions[0].records
    view = memoryview(bytes(data.read() if hasattr(data, "read") else data))
    return [r.value for pos, h in iter_headers(view) if not h.is_control for r in iter_records(view, pos, h)]


def init(conn: BrokerConnection, txn_id: str) -> tuple[int, int]:
    R = m.InitProducerIdRequest
    resp = conn.request(R(transactional_id=txn_id, transaction_timeout_ms=60000, producer_id=-1, producer_epoch=-1), 4)
    assert resp.error_code == E.NONE, resp
    return resp.producer_id, resp.producer_epoch


def add_partition(conn: BrokerConnection, txn_id: str, pid: int, epoch: int, topic: str) -> int:
    R = m.AddPartitionsToTxnRequest
    resp = conn.request(R(v3_and_below_transactional_id=txn_id, v3_and_below_producer_id=pid,
                          v3_and_below_producer_epoch=epoch,
                          v3_and_below_topics=[R.AddPartitionsToTxnTopic(name=topic, partitions=[0])]), 3)
    return resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code


def txn_produce(conn: BrokerConnection, txn_id: str, pid: int, epoch: int, topic: str, value: bytes,
                seq: int = 0, version: int = 9) -> int:
    P = m.ProduceRequest
    data = build_batch([Record(b"k", value, now_ms())], producer_id=pid, producer_epoch=epoch,
                       base_sequence=seq, transactional=True)
    resp = conn.request(P(transactional_id=txn_id, acks=-1, timeout_ms=5000, topic_data=[P.TopicProduceData(
        name=topic, partition_data=[P.PartitionProduceData(index=0, records=data)])]), version)
    return resp.responses[0].partition_responses[0].error_code


def open_transaction(conn: BrokerConnection, txn_id: str, topic: str, value: bytes) -> tuple[int, int]:
    """A new `topic` and a transaction of `txn_id` holding one record (`value`) in its partition 0,
    left open: (producer id, epoch)."""
    wait_for_coordinator(conn, txn_id)
    create(conn, topic)
    pid, epoch = init(conn, txn_id)
    assert add_partition(conn, txn_id, pid, epoch, topic) == E.NONE
    assert txn_produce(conn, txn_id, pid, epoch, topic, value) == E.NONE
    return pid, epoch


def end_txn(conn: BrokerConnection, txn_id: str, pid: int, epoch: int, commit: bool) -> int:
    return conn.request(m.EndTxnRequest(transactional_id=txn_id, producer_id=pid, producer_epoch=epoch,
                                        committed=commit), 3).error_code


def test_end_txn_for_an_unknown_transactional_id_is_invalid_producer_id_mapping(conn, unique):
    assert end_txn(conn, unique("nobody"), 12345, 0, True) == E.INVALID_PRODUCER_ID_MAPPING


def test_add_partitions_with_a_stale_epoch_is_producer_fenced(conn, unique):
    topic, txn_id = unique(), unique("txn")
    create(conn, topic)
    pid, epoch = init(conn, txn_id)
    pid2, epoch2 = init(conn, txn_id)  # a second instance bumps the epoch
    assert (pid2, epoch2) == (pid, epoch + 1)
    assert add_partition(conn, txn_id, pid, epoch, topic) == E.PRODUCER_FENCED
    assert add_partition(conn, txn_id, pid2, epoch2, topic) == E.NONE


def test_transactional_produce_to_a_partition_not_added_is_invalid_txn_state(conn, unique):
    topic, txn_id = unique(), unique("txn")
    create(conn, topic)
    pid, epoch = init(conn, txn_id)
    assert txn_produce(conn, txn_id, pid, epoch, topic, b"unverified") == E.INVALID_TXN_STATE
    # v11 knows TRANSACTION_ABORTABLE (KIP-890): Kafka answers it what the coordinator said
    assert txn_produce(conn, txn_id, pid, epoch, topic, b"unverified", version=11) == E.TRANSACTION_ABORTABLE
    assert values(conn, topic) == []
    assert add_partition(conn, txn_id, pid, epoch, topic) == E.NONE
    assert txn_produce(conn, txn_id, pid, epoch, topic, b"verified") == E.NONE
    assert end_txn(conn, txn_id, pid, epoch, True) == E.NONE
    wait_until(lambda: values(conn, topic) == [b"verified"], "the committed record")


def test_markers_for_unknown_producers_are_written_and_lose_nothing(conn, unique):
    topic = unique()
    create(conn, topic)
    P = m.ProduceRequest
    conn.request(P(acks=-1, timeout_ms=5000, topic_data=[P.TopicProduceData(name=topic, partition_data=[
        P.PartitionProduceData(index=0, records=build_batch([Record(b"k", b"before", now_ms())]))])]))
    W = m.WriteTxnMarkersRequest
    resp = conn.request(W(markers=[W.WritableTxnMarker(
        producer_id=987654, producer_epoch=3, transaction_result=False, coordinator_epoch=0,
        topics=[W.WritableTxnMarkerTopic(name=topic, partition_indexes=[0]),
                W.WritableTxnMarkerTopic(name=unique("missing"), partition_indexes=[0])])]), 1)
    codes = [p.error_code for t in resp.markers[0].topics for p in t.partitions]
    assert codes == [E.NONE, E.UNKNOWN_TOPIC_OR_PARTITION]
    conn.request(P(acks=-1, timeout_ms=5000, topic_data=[P.TopicProduceData(name=topic, partition_data=[
        P.PartitionProduceData(index=0, records=build_batch([Record(b"k", b"after", now_ms())]))])]))
    assert values(conn, topic) == [b"before", b"after"]  # the control batch is not a record to readers


def test_describe_producers_shows_an_open_transaction(conn, unique):
    topic, txn_id = unique(), unique("txn")
    create(conn, topic)
    pid, epoch = init(conn, txn_id)
    assert add_partition(conn, txn_id, pid, epoch, topic) == E.NONE
    assert txn_produce(conn, txn_id, pid, epoch, topic, b"open") == E.NONE
    D = m.DescribeProducersRequest
    resp = conn.request(D(topics=[D.TopicRequest(name=topic, partition_indexes=[0])]), 0)
    (state,) = resp.topics[0].partitions[0].active_producers
    assert (state.producer_id, state.producer_epoch, state.current_txn_start_offset) == (pid, epoch, 0)
    T = m.DescribeTransactionsRequest
    (described,) = conn.request(T(transactional_ids=[txn_id]), 0).transaction_states
    assert (described.transaction_state, described.producer_id) == ("Ongoing", pid)
    assert end_txn(conn, txn_id, pid, epoch, False) == E.NONE


def txn_offset_commit(conn: BrokerConnection, txn_id: str, pid: int, epoch: int, group: str, topic: str,
                      offset: int, version: int) -> int:
    T = m.TxnOffsetCommitRequest
    resp = conn.request(T(transactional_id=txn_id, group_id=group, producer_id=pid, producer_epoch=epoch, topics=[
        T.TxnOffsetCommitRequestTopic(name=topic, partitions=[
            T.TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=offset)])]), version)
    return resp.topics[0].partitions[0].error_code


def committed(conn: BrokerConnection, group: str, topic: str) -> int:
    O = m.OffsetFetchRequest
    resp = conn.request(O(group_id=group, topics=[O.OffsetFetchRequestTopic(name=topic, partition_indexes=[0])]), 5)
    return resp.topics[0].partitions[0].committed_offset


def test_txn_offset_commit_without_add_offsets_to_txn_is_refused_by_the_transaction_coordinator(conn, unique):
    """KIP-890: the group coordinator verifies a transactional commit with the transaction
    coordinator, as a transactional produce is: the group's __consumer_offsets partition must be in
    the transaction. Clients that know TRANSACTION_ABORTABLE (v4) get it, older ones INVALID_TXN_STATE."""
    topic, txn_id, group = unique(), unique("txn"), unique("group")
    create(conn, topic)
    F = m.FindCoordinatorRequest
    wait_until(lambda: conn.request(F(key_type=0, coordinator_keys=[group]), 4).coordinators[0].error_code == 0,
               "a group coordinator", timeout=30)
    pid, epoch = init(conn, txn_id)
    assert txn_offset_commit(conn, txn_id, pid, epoch, group, topic, 5, version=3) == E.INVALID_TXN_STATE
    assert txn_offset_commit(conn, txn_id, pid, epoch, group, topic, 5, version=4) == E.TRANSACTION_ABORTABLE
    A = m.AddOffsetsToTxnRequest
    assert conn.request(A(transactional_id=txn_id, producer_id=pid, producer_epoch=epoch, group_id=group),
                        3).error_code == E.NONE
    assert txn_offset_commit(conn, txn_id, pid, epoch, group, topic, 7, version=4) == E.NONE
    assert end_txn(conn, txn_id, pid, epoch, True) == E.NONE
    wait_until(lambda: committed(conn, group, topic) == 7, "the transaction's offset, the group's")


def alter_broker_config(conn: BrokerConnection, node: str, key: str, value: str | None, effective: str) -> None:
    """IncrementalAlterConfigs on broker `node` ("": the cluster-wide default): SET, or DELETE for
    None; then wait until broker 1 describes `key` as `effective` (its metadata image has it)."""
    A = m.IncrementalAlterConfigsRequest
    r = conn.request(A(resources=[A.AlterConfigsResource(resource_type=4, resource_name=node, configs=[
        A.AlterableConfig(name=key, config_operation=0 if value is not None else 1, value=value)])]))
    assert [x.error_code for x in r.responses] == [E.NONE], r
    D = m.DescribeConfigsRequest

    def described() -> str:
        r = conn.request(D(resources=[D.DescribeConfigsResource(resource_type=4, resource_name="1",
                                                                configuration_keys=[key])]), 4)
        return r.results[0].configs[0].value
    wait_until(lambda: described() == effective, f"{key}={effective} on broker 1")


def test_verification_is_switched_off_and_on_at_run_time(broker_factory, unique):
    """transaction.partition.verification.enable is dynamic, as in Kafka: the cluster-wide default
    and this broker's value apply to the next write, without a restart."""
    key = "transaction.partition.verification.enable"
    b = broker_factory()
    with BrokerConnection.to(b.bootstrap) as conn:
        F = m.FindCoordinatorRequest
        wait_until(lambda: conn.request(F(key_type=1, coordinator_keys=["any"]), 4).coordinators[0].error_code == 0,
                   "a transaction coordinator", timeout=30)
        topic = unique()
        create(conn, topic)
        a_id, b_id, c_id = unique("txn"), unique("txn"), unique("txn")
        (a_pid, a_epoch), (b_pid, b_epoch), (c_pid, c_epoch) = init(conn, a_id), init(conn, b_id), init(conn, c_id)
        assert txn_produce(conn, a_id, a_pid, a_epoch, topic, b"refused") == E.INVALID_TXN_STATE

        alter_broker_config(conn, "", key, "false", effective="false")
        assert txn_produce(conn, a_id, a_pid, a_epoch, topic, b"unverified") == E.NONE
        alter_broker_config(conn, "1", key, "true", effective="true")  # this broker's value wins over the cluster's
        assert txn_produce(conn, b_id, b_pid, b_epoch, topic, b"refused again") == E.INVALID_TXN_STATE
        alter_broker_config(conn, "1", key, None, effective="false")
        alter_broker_config(conn, "", key, None, effective="true")  # back to server.properties' (Kafka's default)
        assert txn_produce(conn, c_id, c_pid, c_epoch, topic, b"refused at last") == E.INVALID_TXN_STATE
        assert values(conn, topic) == [b"unverified"]


def test_a_coordinator_writes_the_markers_of_partitions_it_leads_without_a_request_to_itself(broker_factory, unique):
    """One broker is both coordinator and leader: the markers go straight to its replica manager,
    so its listener answers no WriteTxnMarkers (Kafka's would, to itself), and the committed record
    is readable once they are written."""
    port = free_port()
    broker = broker_factory({"metrics.port": str(port)})
    topic, txn_id = unique(), unique("txn")
    with BrokerConnection.to(broker.bootstrap) as c:
        pid, epoch = open_transaction(c, txn_id, topic, b"committed")
        assert end_txn(c, txn_id, pid, epoch, True) == E.NONE
        T = m.DescribeTransactionsRequest
        wait_until(lambda: c.request(T(transactional_ids=[txn_id]), 0).transaction_states[0].transaction_state
                   == "CompleteCommit", "the transaction completed")
        assert values(c, topic) == [b"committed"]
    answered = requests_answered(port)
    assert answered.get("EndTxn") == 1 and "WriteTxnMarkers" not in answered, answered


def requests_answered(port: int) -> dict[str, float]:
    """Requests answered by type, from the broker's /metrics (all versions together)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("kafka_network_requestmetrics_requests_total{"):
            request = line.split('request="', 1)[1].split('"', 1)[0]
            counts[request] = counts.get(request, 0) + float(line.rsplit(" ", 1)[1])
    return counts
