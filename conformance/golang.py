"""The Go clients' side of the conformance suite: franz-go (`kgo`, `kadm`) and IBM/sarama, driven
through one program, `conformance/go/bin/kcgo` (built by `make test-deps` from conformance/go/,
its versions pinned in go.mod and go.sum).

`kcgo CLIENT COMMAND BOOTSTRAP ...` runs one client: one-shot commands (`produce`, `read`) print one
JSON object; `member` is a consumer-group member for `conformance/groups.py`; `admin`, `consumer`
and `seeker` are sessions driven here one JSON command a line (`Session`). An error comes back as
data, {"code": Kafka's error code or None, "name": the client's name for it or None, "message"}.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conformance.groups import Member
from conformance.support import TIMEOUT, Got, records_json

GO_DIR = Path(__file__).parent / "go"
KCGO = GO_DIR / "bin" / "kcgo"
CLIENTS = ("franz-go", "sarama")


def _kcgo(client: str, command: str, bootstrap: str, *args: str) -> list[str]:
    assert KCGO.is_file(), "the Go drivers are not built: run `make test-deps`"
    return [str(KCGO), client, command, bootstrap, *args]


def run_go(client: str, command: str, bootstrap: str, *args: str, input: bytes = b"", timeout: float = 60.0,
           check: bool = True) -> dict:
    """Run a one-shot command and return the JSON object it printed; with `check`, fail unless it
    exited 0."""
    r = subprocess.run(_kcgo(client, command, bootstrap, *args), input=input, capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace").strip()
    assert r.returncode == 0 or not check, \
        f"kcgo {client} {command} exited {r.returncode}\nstdout: {out}\nstderr: {r.stderr.decode(errors='replace')[-3000:]}"
    try:
        return json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"kcgo {client} {command} printed no JSON object: {out!r}") from None


def go_produce(client: str, bootstrap: str, topic: str, records, *flags: str, check: bool = True) -> dict:
    """Send `records` (acks=all, idempotent); {"offsets": [[partition, offset], ...]} in order sent."""
    return run_go(client, "produce", bootstrap, topic, *flags, input=records_json(records), check=check)


def gots(records: list[dict]) -> list[Got]:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    return [Got(r["partition"], r["offset"], enc(r["key"]), enc(r["value"]),
                tuple((n, v.encode()) for n, v in r["headers"]), r["timestamp"]) for r in records]


def go_read(client: str, bootstrap: str, topic: str, starts: dict[int, int], count: int, *flags: str) -> list[Got]:
    """The Go clients as readers: assign the partitions at `starts` (no group), read `count` records."""
    out = run_go(client, "read", bootstrap, topic, json.dumps(starts), str(count), *flags)
    got = gots(out["records"])
    assert len(got) == count, f"{client} read {len(got)} of {count} records"
    return got


def go_member(client: str, bootstrap: str, topic: str, group: str, name: str, protocol: str = "classic") -> Member:
    """A group member process (cooperative-sticky; protocol="consumer": KIP-848) for groups.py."""
    return Member(_kcgo(client, "member", bootstrap, topic, group, name, f"--protocol={protocol}"), name, cwd=GO_DIR)


class Session:
    """A `kcgo` session process: `ask(op, **arguments)` sends one command and returns its answer
    (failing on an error answer unless `check=False`)."""

    def __init__(self, client: str, command: str, bootstrap: str, *args: str):
        self.what = f"kcgo {client} {command}"
        self.proc = subprocess.Popen(_kcgo(client, command, bootstrap, *args), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def ask(self, op: str, check: bool = True, **arguments) -> dict:
        self.proc.stdin.write((json.dumps({"op": op, **arguments}) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(TIMEOUT)
            raise AssertionError(f"{self.what} exited {code} on {op}: {self.proc.stderr.read().decode()[-3000:]}")
        answer = json.loads(line)
        assert not (check and "error" in answer), f"{self.what} {op} {arguments}: {answer['error']}"
        return answer

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.ask("close")
                self.proc.stdin.close()
                assert self.proc.wait(TIMEOUT) == 0, f"{self.what} exited {self.proc.returncode}"
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GroupConsumer(Session):
    """A group member driven op by op, as `groups.committed_offsets_survive_restarts` wants it."""

    def __init__(self, client: str, bootstrap: str, topic: str, group: str):
        super().__init__(client, "consumer", bootstrap, topic, group)

    def consume(self, n: int) -> list[tuple[int, int, str]]:
        return [tuple(r) for r in self.ask("consume", n=n)["records"]]

    def commit(self, offsets: dict[int, tuple[int, str]]) -> None:
        self.ask("commit", commits={str(p): {"offset": o, "metadata": m} for p, (o, m) in offsets.items()})

    def committed(self) -> dict[int, tuple[int, str]]:
        return {int(p): tuple(v) for p, v in self.ask("committed")["committed"].items()}


def error_code(answer: dict) -> int:
    """The Kafka error code of an error answer."""
    assert "error" in answer, f"expected an error, got {answer}"
    return answer["error"]["code"]


def offsets_in_order(records) -> list[list[int]]:
    """The [partition, offset] each record of `records` gets on empty partitions, in order sent."""
    seen: dict[int, int] = {}
    out = []
    for r in records:
        out.append([r.partition, seen.get(r.partition, 0)])
        seen[r.partition] = seen.get(r.partition, 0) + 1
    return out


def check_idempotent_batches(batches: dict[int, list], codec_id: int) -> None:
    """What an idempotent producer leaves in the log (`stored_batches` per partition): every batch
    in the codec it sent, one producer id at epoch 0, sequences from 0 without a gap."""
    pids = set()
    for part, bs in batches.items():
        assert bs, f"partition {part}: no batches"
        assert {b.codec for b in bs} == {codec_id}, "the broker must keep the producer's codec"
        seqs = [b.base_sequence for b in bs]
        assert seqs == [sum(b.record_count for b in bs[:i]) for i in range(len(bs))], f"partition {part}: {seqs}"
        assert {b.producer_epoch for b in bs} == {0}
        pids |= {b.producer_id for b in bs}
    assert len(pids) == 1 and pids.pop() >= 0, "one producer id from InitProducerId"
