"""The transaction coordinator: transactional ids, their transactions and markers, persisted in
`__transaction_state` (Kafka's kafka.coordinator.transaction).

- `machine.TransactionCoordinator`: the sans-I/O state machine (requests, time, records and
  marker answers in; responses, appends, marker requests and deadlines out);
- `state`: a transactional id's states and transitions; `records`: the `__transaction_state`
  record formats; `markers`: the queues of markers for partition leaders; `producer_ids`: the
  controller's blocks of producer ids.
"""

from kafka_compat.coordinator.transaction.machine import AllocateProducerIds, Append, Load, TransactionCoordinator
from kafka_compat.coordinator.transaction.markers import SendMarkers

__all__ = ["AllocateProducerIds", "Append", "Load", "SendMarkers", "TransactionCoordinator"]
