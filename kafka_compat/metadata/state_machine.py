"""The metadata log's state machine: committed batches of metadata records -> the MetadataImage.

The Raft driver hands it every committed batch in log order (and, when a node starts from or
fetches a snapshot, the snapshot's records); each batch becomes a new immutable image, and the
listeners (the replica manager, the group coordinator) are told (old image, new image) in the
driver's task, before the next batch. Snapshots hold `image.records()`.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.records import decode_record, encode_record
from kafka_compat.protocol.primitives import DecodeError
from kafka_compat.raft.ready import Batch

log = structlog.get_logger("kafka_compat.metadata")

Listener = Callable[[MetadataImage, MetadataImage], None]


class MetadataStateMachine:
    def __init__(self, cluster_id: str):
        self.cluster_id = cluster_id
        self.image = MetadataImage(cluster_id=cluster_id)
        self.end_offset = 0  # just past the last applied batch, control batches included
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def apply(self, batch: Batch) -> None:
        self.end_offset = batch.last_offset + 1
        if batch.is_control or not batch.values:
            return
        self._publish(self.image.apply(self._decode(batch.values, batch.base_offset), batch.last_offset))

    def snapshot(self) -> tuple[int, list[bytes]]:
        return self.end_offset, [encode_record(r) for r in self.image.records()]

    def restore(self, end_offset: int, values: list[bytes]) -> None:
        self.end_offset = end_offset
        image = MetadataImage(cluster_id=self.cluster_id).apply(self._decode(values, -1), end_offset - 1)
        log.info("metadata_snapshot_loaded", offset=end_offset - 1, topics=len(image.topics),
                 brokers=len(image.brokers))
        self._publish(image)

    @staticmethod
    def _decode(values: list[bytes], base_offset: int) -> list:
        records = []
        for i, value in enumerate(values):
            try:
                records.append(decode_record(value)[0])
            except DecodeError as e:  # a record type from a newer release: skipped, as it means nothing here
                log.error("metadata_record_skipped", offset=base_offset + i if base_offset >= 0 else None,
                          reason=str(e))
        return records

    def _publish(self, image: MetadataImage) -> None:
        old, self.image = self.image, image
        for listener in self._listeners:
            try:
                listener(old, image)
            except Exception:  # one listener's bug must not stop the metadata log
                log.exception("metadata_listener_failed", listener=getattr(listener, "__qualname__", repr(listener)))
