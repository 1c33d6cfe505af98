"""One member of a consumer group, as a process the group scenarios start, stop and kill.

    python -m conformance.group_member CLIENT BOOTSTRAP TOPIC GROUP [key=value ...]

CLIENT is kafka-python, confluent-kafka or aiokafka; the key=value pairs are that client's consumer
settings (values that parse as JSON are passed as such: numbers, true/false). The member subscribes
to TOPIC and reports on stdout, one JSON object a line:

    {"member": ID}                          once, the client-side member id when it is known
    {"assigned": [partitions...]}           its whole assignment, whenever it changed
    {"records": [[partition, offset, value], ...]}   records it consumed, *after* their offsets
                                            were committed synchronously (so a record reported by
                                            one member is never handed to another)
    {"closed": true}                        after a clean close (on SIGTERM)
    {"error": "..."}                        a client error (then it exits 1)

SIGTERM closes the consumer cleanly (it leaves the group); SIGKILL is a crash.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

stopping = False


def emit(**obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _on_sigterm(signum, frame) -> None:
    global stopping
    stopping = True


def _conf(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


class Reporter:
    def __init__(self) -> None:
        self.assigned: list[int] | None = None

    def assignment(self, partitions) -> None:
        parts = sorted(partitions)
        if parts != self.assigned:
            self.assigned = parts
            emit(assigned=parts)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def run_kafka_python(bootstrap: str, topic: str, group: str, conf: dict) -> None:
    from kafka import KafkaConsumer, OffsetAndMetadata
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignors = {a.name: a for a in (RangePartitionAssignor, RoundRobinPartitionAssignor, CooperativeStickyAssignor)}
    conf = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "fetch_max_wait_ms": 100,
            "auto_offset_reset": "earliest", **conf}
    if "partition_assignment_strategy" in conf:  # names, in order of preference
        conf["partition_assignment_strategy"] = [assignors[n] for n in conf["partition_assignment_strategy"].split(",")]
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **conf)
    rep = Reporter()
    c.subscribe([topic])
    member_id = None
    while not stopping:
        batches = c.poll(timeout_ms=200)
        rep.assignment(tp.partition for tp in c.assignment())
        if member_id is None and c._coordinator._generation.member_id:
            member_id = c._coordinator._generation.member_id
            emit(member=member_id)
        if batches:
            c.commit({tp: OffsetAndMetadata(msgs[-1].offset + 1, "", -1) for tp, msgs in batches.items()})
            emit(records=[[tp.partition, m.offset, _text(m.value)] for tp, msgs in batches.items() for m in msgs])
    c.close()
    emit(closed=True)


def run_confluent_kafka(bootstrap: str, topic: str, group: str, conf: dict) -> None:
    from confluent_kafka import Consumer, TopicPartition

    base = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100}
    if conf.get("group.protocol") != "consumer":
        base.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c = Consumer({**base, **conf})
    rep = Reporter()
    c.subscribe([topic])
    member_id = None
    while not stopping:
        msgs = c.consume(100, 0.2)
        rep.assignment(tp.partition for tp in c.assignment())
        if member_id is None and c.memberid():
            member_id = c.memberid()
            emit(member=member_id)
        for msg in msgs:
            if msg.error():
                emit(error=str(msg.error()))
                sys.exit(1)
        if msgs:
            last: dict[int, int] = {}
            for msg in msgs:
                last[msg.partition()] = msg.offset()
            c.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()], asynchronous=False)
            emit(records=[[m.partition(), m.offset(), _text(m.value())] for m in msgs])
    c.close()
    emit(closed=True)


async def _aiokafka(bootstrap: str, topic: str, group: str, conf: dict) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.structs import OffsetAndMetadata

    assignors = {a.name: a for a in (RangePartitionAssignor, RoundRobinPartitionAssignor)}
    conf = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "fetch_max_wait_ms": 100,
            "auto_offset_reset": "earliest", **conf}
    if "partition_assignment_strategy" in conf:  # names, in order of preference
        conf["partition_assignment_strategy"] = [assignors[n] for n in conf["partition_assignment_strategy"].split(",")]
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **conf)
    await c.start()
    rep = Reporter()
    member_id = None
    while not stopping:
        batches = await c.getmany(timeout_ms=200)
        rep.assignment(tp.partition for tp in c.assignment())
        if member_id is None and c._coordinator.member_id:
            member_id = c._coordinator.member_id
            emit(member=member_id)
        if batches:
            await c.commit({tp: OffsetAndMetadata(msgs[-1].offset + 1, "") for tp, msgs in batches.items()})
            emit(records=[[tp.partition, m.offset, _text(m.value)] for tp, msgs in batches.items() for m in msgs])
    await c.stop()
    emit(closed=True)


def main(argv: list[str]) -> None:
    client, bootstrap, topic, group, *pairs = argv
    signal.signal(signal.SIGTERM, _on_sigterm)
    conf = _conf(pairs)
    started = time.monotonic()
    try:
        if client == "kafka-python":
            run_kafka_python(bootstrap, topic, group, conf)
        elif client == "confluent-kafka":
            run_confluent_kafka(bootstrap, topic, group, conf)
        elif client == "aiokafka":
            asyncio.run(_aiokafka(bootstrap, topic, group, conf))
        else:
            raise SystemExit(f"unknown client {client}")
    except Exception as e:  # reported to the scenario, which fails with it
        emit(error=f"{type(e).__name__}: {e}", after=round(time.monotonic() - started, 2))
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
