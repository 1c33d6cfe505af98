"""What the consumer-group scenarios share: member processes, checks of who owns and consumed
what, and the two scenarios every client runs (split and rebalance; committed offsets across
consumer and broker restarts).

A group member is a process (`conformance/group_member.py` for the Python clients,
`conformance/node/group_member.js` for KafkaJS) that reports its assignment and the records it
consumed and committed as JSON lines; the scenario closes it (SIGTERM: it leaves the group) or
kills it (SIGKILL: the coordinator notices when its session expires). Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from conformance.support import NODE_DIR, TIMEOUT, wait_until

REPO = Path(__file__).parent.parent
SESSION_TIMEOUT_MS = 6000  # the smallest the broker allows by default (group.min.session.timeout.ms)


class Member:
    """A group member process and what it reported so far."""

    def __init__(self, cmd: list[str], name: str, cwd: Path = REPO):
        self.name = name
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lock = threading.Lock()
        self.assigned: list[int] | None = None
        self.member_id: str | None = None
        self.records: list[tuple[int, int, str | None]] = []
        self.errors: list[str] = []
        self.closed = False
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self._out = threading.Thread(target=self._read, daemon=True)
        self._out.start()
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._err.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if "assigned" in event:
                    self.assigned = event["assigned"]
                if "member" in event:
                    self.member_id = event["member"]
                if "records" in event:
                    self.records += [tuple(r) for r in event["records"]]
                if "error" in event:
                    self.errors.append(event["error"])
                if event.get("closed"):
                    self.closed = True

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_tail.append(line.decode(errors="replace").rstrip())

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_tail)

    def check(self) -> None:
        """Fail the scenario if the member reported an error or died by itself."""
        with self.lock:
            errors = list(self.errors)
        assert not errors, f"member {self.name}: {errors}"
        code = self.proc.poll()
        if code is not None and code != 0 and code != -signal.SIGKILL:
            self._out.join(1)
            self._err.join(1)
            raise AssertionError(f"member {self.name} exited {code}:\n{self.stderr}")

    def consumed(self, tag: str) -> list[tuple[int, int, str | None]]:
        with self.lock:
            return [r for r in self.records if r[2] is not None and r[2].startswith(tag)]

    def close(self, timeout: float = TIMEOUT) -> None:
        """SIGTERM: the member closes its consumer (leaving the group) and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._out.join(timeout)
        self._err.join(1)
        assert code == 0 and self.closed, f"member {self.name} exited {code} on SIGTERM:\n{self.stderr}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def python_member(client: str, bootstrap: str, topic: str, group: str, name: str, **conf) -> Member:
    cmd = [sys.executable, "-m", "conformance.group_member", client, bootstrap, topic, group]
    cmd += [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in conf.items()]
    return Member(cmd, name)


def node_member(bootstrap: str, topic: str, group: str, name: str) -> Member:
    assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), "KafkaJS is not installed: run `make test-deps`"
    return Member(["node", str(NODE_DIR / "group_member.js"), bootstrap, topic, group, name], name, cwd=NODE_DIR)


# -- checks ------------------------------------------------------------------------------------------

def wait_split(members: list[Member], partitions: int, timeout: float = 2 * TIMEOUT) -> dict[str, list[int]]:
    """Wait until the members' assignments split `range(partitions)` evenly: each partition owned
    by exactly one member, every member owning as many (`partitions` is a multiple of their
    number). Returns {member name: partitions}. The default bound covers a first split, which
    includes starting the members' processes and their joins one after another (slow on a loaded
    machine)."""

    def split():
        for mb in members:
            mb.check()
        owned = {mb.name: mb.assigned for mb in members}
        if any(parts is None or len(parts) != partitions // len(members) for parts in owned.values()):
            return None
        flat = [p for parts in owned.values() for p in parts]
        if sorted(flat) == list(range(partitions)):
            return owned
        return None

    try:
        return wait_until(split, f"{len(members)} members to split {partitions} partitions", timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; {_diagnose(members)}") from None


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int, tag: str) -> list[tuple[int, str]]:
    """Send `per_partition` records to every partition (values "<tag>-<partition>-<i>")."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": int(TIMEOUT * 1000)})
    failed = []
    sent = [(part, f"{tag}-{part}-{i}") for i in range(per_partition) for part in range(partitions)]
    for part, value in sent:
        p.produce(topic, value=value.encode(), partition=part, on_delivery=lambda err, msg: err and failed.append(err))
    assert p.flush(TIMEOUT) == 0 and not failed, f"produce failed: {failed}"
    return sent


def wait_consumed_once(members: list[Member], sent: list[tuple[int, str]], tag: str,
                       owners: dict[str, list[int]] | None = None, timeout: float = TIMEOUT) -> None:
    """Wait until `members` together consumed (and committed) every record in `sent`, each exactly
    once; with `owners`, each from the member that owns its partition."""
    want = sorted(sent)

    def done():
        for mb in members:
            mb.check()
        got = [(r[0], r[2]) for mb in members for r in mb.consumed(tag)]
        return len(got) >= len(want)

    try:
        wait_until(done, f"{len(want)} records tagged {tag!r}", timeout)
    except AssertionError as e:
        got = sum(len(mb.consumed(tag)) for mb in members)
        raise AssertionError(f"{e}: got {got}; {_diagnose(members)}") from None
    assert_consumed_once(members, sent, tag)
    if owners is not None:
        for mb in members:
            strays = [r for r in mb.consumed(tag) if r[0] not in owners[mb.name]]
            assert not strays, f"member {mb.name} consumed from partitions it does not own: {strays[:3]}"


def assert_consumed_once(members: list[Member], sent: list[tuple[int, str]], tag: str) -> None:
    """`members` together reported every record of `sent` exactly once. A duplicate that had not
    been reported yet is caught by a later call, at the latest once the members closed."""
    got = sorted((r[0], r[2]) for mb in members for r in mb.consumed(tag))
    assert got == sorted(sent), \
        f"records tagged {tag!r}: {len(got)} consumed for {len(sent)} sent (duplicates or strays)"


def _diagnose(members: list[Member]) -> str:
    """What the members own, whether they still run, and the last lines each wrote on stderr."""
    state = lambda mb: "running" if mb.proc.poll() is None else f"exited {mb.proc.returncode}"  # noqa: E731
    return "; ".join(f"{mb.name} ({state(mb)}) owns {mb.assigned}" for mb in members) + "".join(
        f"\n--- {mb.name} stderr:\n{mb.stderr}" for mb in members if mb.stderr_tail)


def split_and_rebalance(bootstrap: str, topic: str, spawn, partitions: int = 6, after_split=None) -> None:
    """The group scenario every client runs: three members split the partitions and consume
    everything once; one closes (leaves) and the two others take over; one is killed and, after
    its session timeout, the last one owns everything. `spawn(name)` starts a member;
    `after_split(members)`, if given, runs after each split (to look at the group meanwhile)."""
    members = [spawn(name) for name in ("a", "b", "c")]
    after_split = after_split or (lambda members: None)
    sent = {}
    try:
        owners = wait_split(members, partitions)
        after_split(members)
        sent["one"] = produce(bootstrap, topic, partitions, 5, "one")
        wait_consumed_once(members, sent["one"], "one", owners)

        members[0].close()
        owners = wait_split(members[1:], partitions)
        after_split(members[1:])
        sent["two"] = produce(bootstrap, topic, partitions, 5, "two")
        wait_consumed_once(members[1:], sent["two"], "two", owners)

        members[1].kill()
        killed = time.monotonic()
        owners = wait_split(members[2:], partitions, timeout=SESSION_TIMEOUT_MS / 1000 + TIMEOUT)
        # Only the session timeout tells the coordinator: the takeover cannot come much sooner.
        assert time.monotonic() - killed > SESSION_TIMEOUT_MS / 1000 / 2, "the dead member was expired too soon"
        after_split(members[2:])
        sent["three"] = produce(bootstrap, topic, partitions, 5, "three")
        wait_consumed_once(members[2:], sent["three"], "three", owners)

        members[2].close()  # everything it will ever report is in: no late duplicate anywhere
        for tag, records in sent.items():
            assert_consumed_once(members, records, tag)
    finally:
        for mb in members:
            mb.kill()


# -- committed offsets across consumer and broker restarts ------------------------------------------

def _expect(sent: list[tuple[int, str]], start: dict[int, int] | None = None, base: int = 0):
    """The records of `sent` (as `produce` made them: the i-th of a partition went to offset
    `base + i`) at or after offset `start[partition]`, as sorted (partition, offset, value)."""
    out = []
    for part, value in sent:
        offset = base + int(value.rsplit("-", 1)[1])
        if offset >= (start or {}).get(part, 0):
            out.append((part, offset, value))
    return sorted(out)


def committed_offsets_survive_restarts(broker, topic: str, open_consumer) -> None:
    """The offsets scenario every client runs, on a broker of its own (`broker_factory`) and a
    topic of two partitions. `open_consumer()` returns a group member (of one group, always the
    same) with `consume(n)` -> [(partition, offset, value)], `commit({partition: (offset,
    metadata)})`, `committed()` -> {partition: (offset, metadata or None where the client does not
    return it)} and `close()`.

    - a consumer commits offsets (with metadata) and closes; the next one finds them and resumes there;
    - the broker stops (SIGTERM) and starts: the offsets are there, consumption resumes at them;
    - a consumer commits, then the broker is killed (SIGKILL) under it and starts again: the
      acknowledged commit is there, and the same consumer goes on consuming and committing.
    """
    b = broker
    first = produce(b.bootstrap, topic, 2, 10, "a")
    c = open_consumer()
    try:
        assert sorted(c.consume(20)) == _expect(first)
        c.commit({0: (4, "one-0"), 1: (7, "one-1")})
        assert c.committed() == _meta({0: (4, "one-0"), 1: (7, "one-1")}, c)
    finally:
        c.close()

    c = open_consumer()  # a restarted consumer: it resumes at the committed offsets
    try:
        assert c.committed() == _meta({0: (4, "one-0"), 1: (7, "one-1")}, c)
        assert sorted(c.consume(9)) == _expect(first, {0: 4, 1: 7})
        c.commit({0: (10, "two-0"), 1: (8, "two-1")})
    finally:
        c.close()

    b.restart(clean=True)
    c = open_consumer()
    try:
        assert c.committed() == _meta({0: (10, "two-0"), 1: (8, "two-1")}, c)
        assert sorted(c.consume(2)) == _expect(first, {0: 10, 1: 8})
        # At the positions: whether the client rejoins after the crash (and resumes from the
        # committed offsets) or keeps its positions is its own choice; either way it goes on at 10.
        # (A commit going backwards is covered above: partition 1 was committed at 8 after 10.)
        c.commit({0: (10, "three-0"), 1: (10, "three-1")})

        b.restart(clean=False)  # the consumer stays, in its group, through the crash

        assert c.committed() == _meta({0: (10, "three-0"), 1: (10, "three-1")}, c)
        more = produce(b.bootstrap, topic, 2, 2, "b")
        assert sorted(c.consume(4)) == _expect(more, base=10)
        c.commit({0: (12, "four-0"), 1: (11, "four-1")})
    finally:
        c.close()

    c = open_consumer()
    try:
        assert c.committed() == _meta({0: (12, "four-0"), 1: (11, "four-1")}, c)
        assert sorted(c.consume(1)) == [(1, 11, "b-1-1")]
    finally:
        c.close()


def _meta(expected: dict, consumer) -> dict:
    """What `committed()` returns for a client that does not return metadata."""
    if getattr(consumer, "returns_metadata", True):
        return expected
    return {p: (off, None) for p, (off, _) in expected.items()}
