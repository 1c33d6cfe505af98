"""A consume-transform-produce loop with confluent-kafka's transactions, as a process the
exactly-once scenarios start and kill -9.

    python -m conformance.eos_loop BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID PER_TXN

It reads INPUT (read_committed, group GROUP, offsets committed only through
send_offsets_to_transaction), writes one OUTPUT record per input record (value "out:" + the input
value, keyed by the input's partition and offset), and commits both every PER_TXN records in one
transaction. On stdout, one JSON object a line: {"committed": n} after each commit, then
{"idle": true} once it has partitions and no input came for 3 s (it exits 0). Killed mid-transaction, its successor with
the same transactional id aborts what it left open and goes on from the committed offsets.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Consumer, Producer


def _report(err, msg) -> None:
    if err is not None:
        print(f"delivery failed: {err}", file=sys.stderr, flush=True)


def main(bootstrap: str, source: str, sink: str, group: str, txn_id: str, per_txn: int) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "session.timeout.ms": 6000})  # the killed predecessor leaves the group soon
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 2})
    producer.init_transactions(60)
    consumer.subscribe([source])
    committed, pending, idle_since = 0, 0, time.monotonic()
    producer.begin_transaction()
    while True:
        msg = consumer.poll(0.2)
        if msg is None or msg.error() is not None:
            if not consumer.assignment():
                idle_since = time.monotonic()  # not idle: waiting for partitions
            elif pending == 0 and time.monotonic() - idle_since > 3:
                print(json.dumps({"idle": True}), flush=True)
                break
            if pending == 0:
                continue
        else:
            idle_since = time.monotonic()
            producer.produce(sink, key=f"{msg.partition()}:{msg.offset()}".encode(), value=b"out:" + msg.value(),
                             on_delivery=_report)
            pending += 1
            if pending < per_txn:
                continue
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 60)
        producer.commit_transaction(60)
        committed += pending
        pending = 0
        print(json.dumps({"committed": committed}), flush=True)
        producer.begin_transaction()
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:6], int(sys.argv[6]))
