"""KafkaJS committed offsets (with metadata) survive a consumer restart, a broker stop (SIGTERM) and
a broker crash (SIGKILL) under a live group member, which goes on consuming and committing (see
`groups.committed_offsets_survive_restarts`); the member is node/group_consumer.js, driven over
its stdin, and reads committed offsets with the admin client's fetchOffsets."""

import json
import subprocess

import pytest

from conformance.groups import committed_offsets_survive_restarts
from conformance.support import NODE_DIR, TIMEOUT, create_topic

pytestmark = pytest.mark.timeout(120)


class Member:
    def __init__(self, bootstrap: str, topic: str, group: str):
        assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), "KafkaJS is not installed: run `make test-deps`"
        self.proc = subprocess.Popen(["node", str(NODE_DIR / "group_consumer.js"), bootstrap, topic, group],
                                     cwd=NODE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def _ask(self, **cmd) -> dict:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"node group_consumer.js exited {self.proc.wait(TIMEOUT)} on {cmd}"
        answer = json.loads(line)
        assert "error" not in answer, f"{cmd}: {answer['error']}"
        return answer

    def consume(self, n: int) -> list:
        return [tuple(r) for r in self._ask(op="consume", n=n)["records"]]

    def commit(self, offsets: dict) -> None:
        self._ask(op="commit", offsets={str(p): list(v) for p, v in offsets.items()})

    def committed(self) -> dict:
        return {int(p): tuple(v) for p, v in self._ask(op="committed")["committed"].items()}

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self._ask(op="close")
                assert self.proc.wait(TIMEOUT) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def test_committed_offsets_survive_restarts(broker_factory, unique):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("kjs-offsets"), partitions=2)
    group = unique("kjs-offsets")
    committed_offsets_survive_restarts(b, topic, lambda: Member(b.bootstrap, topic, group))
