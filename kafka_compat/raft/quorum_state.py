"""The election state a node must not forget: its epoch, the leader it knows and whom it voted for.

Persisted before any message that depends on it is sent (a vote granted, a candidacy, a new
epoch). On disk it is Kafka's `quorum-state` file in the metadata log's directory: one line of
JSON, QuorumStateData version 0 plus `data_version`, e.g.

    {"clusterId":"","leaderId":1,"leaderEpoch":5,"votedId":-1,"appliedOffset":0,
     "currentVoters":[{"voterId":1},{"voterId":2},{"voterId":3}],"data_version":0}

written to `quorum-state.tmp`, fsynced and renamed over the old file, so that a crash leaves the
old state or the new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from kafka_compat.protocol import messages as m
from kafka_compat.storage.checkpoint import write_atomically

FILE_NAME = "quorum-state"
DATA_VERSION = 0


class ElectionState(NamedTuple):
    epoch: int
    leader_id: int = -1
    voted_id: int = -1

    def to_data(self, voters: Iterable[int]) -> m.QuorumStateData:
        return m.QuorumStateData(cluster_id="", leader_id=self.leader_id, leader_epoch=self.epoch,
                                 voted_id=self.voted_id, applied_offset=0,
                                 current_voters=[m.QuorumStateData.Voter(voter_id=v) for v in sorted(voters)])


class QuorumStateStore:
    def read(self) -> ElectionState | None:
        raise NotImplementedError

    def write(self, state: ElectionState) -> None:
        raise NotImplementedError


class MemoryQuorumStateStore(QuorumStateStore):
    def __init__(self):
        self.state: ElectionState | None = None

    def read(self) -> ElectionState | None:
        return self.state

    def write(self, state: ElectionState) -> None:
        self.state = state


class FileQuorumStateStore(QuorumStateStore):
    """The `quorum-state` file. A file that does not parse raises ValueError: a node must not
    guess its vote."""

    def __init__(self, path: Path, voters: Iterable[int]):
        self.path = Path(path)
        self.voters = sorted(voters)

    def read(self) -> ElectionState | None:
        try:
            text = self.path.read_text().splitlines()[0]
        except FileNotFoundError:
            return None
        except IndexError:
            raise ValueError(f"{self.path} is empty") from None
        obj = json.loads(text)
        if not isinstance(obj, dict) or obj.get("data_version") not in (0, 1):
            raise ValueError(f"{self.path}: missing or unsupported data_version")
        try:
            return ElectionState(int(obj["leaderEpoch"]), int(obj.get("leaderId", -1)), int(obj.get("votedId", -1)))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{self.path}: malformed quorum state {text!r}") from None

    def write(self, state: ElectionState) -> None:
        data = state.to_data(self.voters)
        obj = {"clusterId": data.cluster_id, "leaderId": data.leader_id, "leaderEpoch": data.leader_epoch,
               "votedId": data.voted_id, "appliedOffset": data.applied_offset,
               "currentVoters": [{"voterId": v.voter_id} for v in data.current_voters],
               "data_version": DATA_VERSION}
        write_atomically(self.path, json.dumps(obj, separators=(",", ":")) + "\n")
