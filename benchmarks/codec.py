"""Codec speed: the project's generated codecs against kafka-python's, on the same messages.

Prints one JSON line: {"bench": "codec", "figures": [{"message", "op", "us", "kafka_python_us",
"ratio"}, ...]}. Each figure is the best of several timed runs. Before timing, both sides must
produce identical bytes for the same message (and decode each other's), so the two do the same work.
"Encode" is what each side does to put a message on a socket: the project's `encode_parts` (a list
of buffers for a gather write; record blobs are not copied), kafka-python's `encode` (one bytes).
The project's list must be ready to write as it is: at most one buffer per stretch between record
blobs, so that no per-field work is left to the socket layer (which pays per buffer).

Usage: python benchmarks/codec.py [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
import uuid

from kafka.protocol.api_header import RequestHeader as KRequestHeader
from kafka.protocol.consumer.fetch import FetchResponse as KFetchResponse
from kafka.protocol.metadata import MetadataResponse as KMetadataResponse
from kafka.protocol.producer import ProduceRequest as KProduceRequest

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid, join


def best(fn, repeat: int) -> float:
    """Best per-call time in microseconds over `repeat` runs, each long enough to be measurable."""
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t > 0.02:
            break
        n *= 2
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t) / n)
    return min(times) * 1e6


def case(name, ours, theirs, version, flexible_header=None, record_sets=0):
    """(name, ours encode, ours decode, theirs encode, theirs decode, bytes, record sets)."""
    data = join(ours.encode_parts(version))
    cls, kcls = type(ours), type(theirs)
    if flexible_header is not None:
        # kafka-python picks header layouts by flexibility and reads them from a stream, as it does
        # when it parses a frame.
        return (name, lambda: ours.encode_parts(version), lambda: cls.decode(data, version),
                lambda: theirs.encode(flexible=True), lambda: kcls.decode(io.BytesIO(data), flexible=True), data,
                record_sets)
    return (name, lambda: ours.encode_parts(version), lambda: cls.decode(data, version),
            lambda: theirs.encode(version=version), lambda: kcls.decode(data, version=version), data, record_sets)


def cases():
    """Every message of the comparison, built the same way on both sides."""
    out = []

    # RequestHeader v2: what every request starts with.
    ours = m.RequestHeader(request_api_key=1, request_api_version=12, correlation_id=12345, client_id="rdkafka-bench")
    theirs = KRequestHeader(request_api_key=1, request_api_version=12, correlation_id=12345, client_id="rdkafka-bench")
    out.append(case("RequestHeader v2", ours, theirs, 2, flexible_header=True))

    # ProduceRequest v9: 1 topic x 10 partitions x 16 KiB of records.
    blobs = [os.urandom(16 * 1024) for _ in range(10)]
    P = m.ProduceRequest
    ours = P(transactional_id=None, acks=-1, timeout_ms=30000, topic_data=[P.TopicProduceData(
        name="bench", partition_data=[P.PartitionProduceData(index=i, records=blobs[i]) for i in range(10)])])
    KP = KProduceRequest
    theirs = KP(transactional_id=None, acks=-1, timeout_ms=30000, topic_data=[KP.TopicProduceData(
        name="bench", partition_data=[KP.TopicProduceData.PartitionProduceData(index=i, records=blobs[i])
                                      for i in range(10)])])
    out.append(case("ProduceRequest v9", ours, theirs, 9, record_sets=10))

    # FetchResponse v12: 1 topic x 10 partitions x 64 KiB of records.
    blobs = [os.urandom(64 * 1024) for _ in range(10)]
    F = m.FetchResponse
    ours = F(throttle_time_ms=0, error_code=0, session_id=7, responses=[F.FetchableTopicResponse(
        topic="bench", partitions=[
            F.PartitionData(partition_index=i, error_code=0, high_watermark=1000, last_stable_offset=1000,
                            log_start_offset=0, aborted_transactions=None, preferred_read_replica=-1, records=blobs[i])
            for i in range(10)])])
    KF = KFetchResponse
    KT = KF.FetchableTopicResponse
    theirs = KF(throttle_time_ms=0, error_code=0, session_id=7, responses=[KT(topic="bench", partitions=[
        KT.PartitionData(partition_index=i, error_code=0, high_watermark=1000, last_stable_offset=1000,
                         log_start_offset=0, aborted_transactions=None, preferred_read_replica=-1, records=blobs[i])
        for i in range(10)])])
    out.append(case("FetchResponse v12", ours, theirs, 12, record_sets=10))

    # MetadataResponse v12: 100 topics x 10 partitions x 3 replicas.
    M = m.MetadataResponse
    ids = [Uuid.random() for _ in range(100)]
    ours = M(throttle_time_ms=0, cluster_id="bench-cluster", controller_id=1,
             brokers=[M.MetadataResponseBroker(node_id=i, host="127.0.0.1", port=9092 + i, rack=None)
                      for i in range(3)],
             topics=[M.MetadataResponseTopic(error_code=0, name=f"topic-{t}", topic_id=ids[t], is_internal=False,
                     partitions=[M.MetadataResponsePartition(error_code=0, partition_index=p, leader_id=p % 3,
                                                             leader_epoch=5, replica_nodes=[0, 1, 2],
                                                             isr_nodes=[0, 1, 2], offline_replicas=[])
                                 for p in range(10)])
                     for t in range(100)])
    KM = KMetadataResponse
    KT = KM.MetadataResponseTopic
    theirs = KM(throttle_time_ms=0, cluster_id="bench-cluster", controller_id=1, error_code=0,
                brokers=[KM.MetadataResponseBroker(node_id=i, host="127.0.0.1", port=9092 + i, rack=None)
                         for i in range(3)],
                topics=[KT(error_code=0, name=f"topic-{t}", topic_id=uuid.UUID(bytes=bytes(ids[t])), is_internal=False,
                           authorized_operations=None,
                           partitions=[KT.MetadataResponsePartition(error_code=0, partition_index=p, leader_id=p % 3,
                                                                    leader_epoch=5, replica_nodes=[0, 1, 2],
                                                                    isr_nodes=[0, 1, 2], offline_replicas=[])
                                       for p in range(10)])
                        for t in range(100)])
    out.append(case("MetadataResponse v12", ours, theirs, 12))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    figures = []
    for name, enc, dec, kenc, kdec, data, record_sets in cases():
        if bytes(kenc()) != data:
            raise SystemExit(f"{name}: kafka-python encodes different bytes; the comparison would be unfair")
        kdec()  # and it must read ours
        if len(enc()) > 2 * record_sets + 1:
            raise SystemExit(f"{name}: the project leaves {len(enc())} buffers to the socket layer; "
                             "the comparison would be unfair")
        for op, mine, theirs in (("encode", enc, kenc), ("decode", dec, kdec)):
            us, kus = best(mine, args.repeat), best(theirs, args.repeat)
            figures.append({"message": name, "op": op, "us": round(us, 2), "kafka_python_us": round(kus, 2),
                            "ratio": round(kus / us, 2)})
    print(json.dumps({"bench": "codec", "figures": figures}))


if __name__ == "__main__":
    main()
