"""The client loads the benchmarks share (confluent-kafka, i.e. librdkafka): a producer flat out for
a bounded time, and end-to-end latency at a steady rate. Each benchmark chooses acks, partitions
and record size; the broker-specific parts (start, kill, CPU) stay in the benchmark."""

from __future__ import annotations

import os
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from kafka_compat.testing.waiting import wait_until


def percentile(values: list[float], q: float) -> float:
    """The value at quantile `q` of `values` (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def produce_for(bootstrap: str, topic: str, seconds: float, *, acks: int | str, partitions: int,
                record: int = 1024, flush_timeout: float = 60) -> tuple[int, int, float]:
    """Produce `record`-byte values round-robin over `partitions` for `seconds` (lz4, linger.ms 5,
    1 MiB batches) and flush: (delivered, failed, elapsed seconds including the flush)."""
    payloads = [os.urandom(record // 2) * 2 for _ in range(64)]  # half-compressible, as real data tends to be
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": "lz4", "linger.ms": 5, "batch.size": 1 << 20,
                  "acks": acks, "queue.buffering.max.messages": 500000, "queue.buffering.max.kbytes": 1 << 20})
    delivered = [0, 0]

    def on_delivery(err, msg):
        delivered[err is not None] += 1

    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        try:
            p.produce(topic, payloads[i & 63], partition=i % partitions, on_delivery=on_delivery)
            i += 1
        except BufferError:
            p.poll(0.005)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(flush_timeout)
    return delivered[0], delivered[1], time.perf_counter() - t0


def latencies(bootstrap: str, topic: str, rate: int, seconds: float, *, acks: int | str, partitions: int,
              record: int = 1024, wait: float = 30) -> list[int]:
    """Produce call to consumer receipt in one process, in nanoseconds, sorted: `rate` records/s for
    `seconds` with linger.ms 0 over `partitions`, consumed from the current end of each partition.
    A warm-up record goes first (connections made, leaders known) and is not counted; what has not
    arrived `wait` seconds after the last send is missing from the list (callers report the count)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-unused", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 5, "fetch.min.bytes": 1})
    c.assign([TopicPartition(topic, p, c.get_watermark_offsets(TopicPartition(topic, p), 10)[1])
              for p in range(partitions)])
    got: list[int] = []
    done = threading.Event()

    def consume():
        # poll(), not consume(n, timeout): consume waits for n messages or the whole timeout,
        # which would add up to the timeout to every figure.
        while not done.is_set():
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None:
                got.append(time.perf_counter_ns() - int.from_bytes(msg.value()[:8], "big"))

    t = threading.Thread(target=consume)
    t.start()
    try:
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": acks, "compression.type": "lz4"})
        pad = os.urandom(record - 8)
        p.produce(topic, time.perf_counter_ns().to_bytes(8, "big") + pad, partition=0)
        p.flush(wait)
        wait_until(lambda: got, "the warm-up record consumed", wait, 0.01)
        got.clear()
        n = int(rate * seconds)
        burst = max(rate // 1000, 1)  # a few records every millisecond; sleeping lets the consumer thread run
        t0 = time.perf_counter()
        for i in range(0, n, burst):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            for j in range(i, min(i + burst, n)):
                p.produce(topic, time.perf_counter_ns().to_bytes(8, "big") + pad, partition=j % partitions)
            p.poll(0)
        p.flush(wait)
        try:
            wait_until(lambda: len(got) >= n, "every latency record consumed", wait, 0.01)
        except AssertionError:
            pass  # reported as the sample count
    finally:
        done.set()
        t.join()
        c.close()
    return sorted(got)

