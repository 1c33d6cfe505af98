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

from conformance.groups import Member, produce, wait_consumed_once, wait_split
from conformance.support import TIMEOUT, Got, assert_codec_kept, records_json, wait_until
from kafka_compat.protocol.errors import ErrorCode

GO_DIR = Path(__file__).parent / "go"
KCGO = GO_DIR / "bin" / "kcgo"


def _kcgo(client: str, command: str, bootstrap: str, *args: str) -> list[str]:
    assert KCGO.is_file(), "the Go drivers are not built: run `make test-deps`"
    return [str(KCGO), client, command, bootstrap, *args]


def run_go(client: str, command: str, bootstrap: str, *args: str, input: bytes = b"", timeout: float = 60.0,
           check: bool = True) -> dict:
    """Run a one-shot command and return the JSON object it printed; with `check`, fail unless it
    exited 0."""
    r = subprocess.run(_kcgo(client, command, bootstrap, *args), input=input, capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace").strip()
    err = r.stderr.decode(errors="replace")[-3000:]
    assert r.returncode == 0 or not check, f"kcgo {client} {command} exited {r.returncode}\n{out}\nstderr: {err}"
    try:
        return json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"kcgo {client} {command} printed no JSON object: {out!r}") from None


def go_produce(client: str, bootstrap: str, topic: str, records, *flags: str, check: bool = True) -> dict:
    """Send `records` (acks=all, idempotent); {"offsets": [[partition, offset], ...]} in order sent."""
    return run_go(client, "produce", bootstrap, topic, *flags, input=records_json(records), check=check)


def gots(records: list[dict]) -> list[Got]:
    """Records as kcgo prints them (text, null kept null), as `Got`s."""
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
    assert_codec_kept([b for bs in batches.values() for b in bs], codec_id)
    pids = set()
    for part, bs in batches.items():
        assert bs, f"partition {part}: no batches"
        seqs = [b.base_sequence for b in bs]
        assert seqs == [sum(b.record_count for b in bs[:i]) for i in range(len(bs))], f"partition {part}: {seqs}"
        assert {b.producer_epoch for b in bs} == {0}
        pids |= {b.producer_id for b in bs}
    assert len(pids) == 1 and pids.pop() >= 0, "one producer id from InitProducerId"


def check_error(answer: dict, code: ErrorCode) -> None:
    """An error answer with Kafka's `code`, under Kafka's name where the client names it (franz-go
    does; sarama has only the number and its own text)."""
    assert "error" in answer, f"expected {code.name}, got {answer}"
    err = answer["error"]
    assert err["code"] == code, f"expected {code.name}, got {err}"
    assert err["name"] in (None, code.name), err


# -- the scenarios both Go clients run ---------------------------------------------------------------

TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5  # DescribeConfigs config_source: DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG


def topic_lifecycle(client: str, broker, name: str) -> None:
    """A topic's whole life through the client's admin API, with the errors it surfaces on refusals:
    create (with configs; again: TOPIC_ALREADY_EXISTS; replication factor 3 on one broker:
    INVALID_REPLICATION_FACTOR; an unknown config: INVALID_CONFIG), list, describe the cluster and the
    partitions, describe configs (overrides and defaults with their sources), add partitions
    (shrinking: INVALID_PARTITIONS), alter configs incrementally (set and delete; a bad value:
    INVALID_CONFIG) and not (the whole set of overrides is replaced), describe log dirs (the
    partitions' sizes), list offsets, delete records
    (past the end: OFFSET_OUT_OF_RANGE), delete the topic (then: UNKNOWN_TOPIC_OR_PARTITION)."""
    with Session(client, "admin", broker.bootstrap) as admin:
        created = admin.ask("create_topic", name=name, partitions=2, rf=1,
                            configs={"retention.ms": "3600000", "cleanup.policy": "compact"})
        check_error(admin.ask("create_topic", check=False, name=name, partitions=1, rf=1),
                    ErrorCode.TOPIC_ALREADY_EXISTS)
        check_error(admin.ask("create_topic", check=False, name=name + "-rf3", partitions=1, rf=3),
                    ErrorCode.INVALID_REPLICATION_FACTOR)
        check_error(admin.ask("create_topic", check=False, name=name + "-bad", partitions=1, rf=1,
                              configs={"no.such.config": "1"}), ErrorCode.INVALID_CONFIG)
        listed = admin.ask("list_topics")["topics"]
        assert name in listed and name + "-rf3" not in listed and name + "-bad" not in listed
        if client == "franz-go":  # CreateTopics v5+ answers with what it created
            assert (created["partitions"], created["rf"]) == (2, 1)

        cluster = admin.ask("describe_cluster")
        [b] = cluster["brokers"]
        assert f"{b['host']}:{b['port']}" == broker.bootstrap and cluster["controller"] == b["id"]
        node = b["id"]
        assert admin.ask("describe_topic", name=name) == {"internal": False, "partitions": [
            {"partition": p, "leader": node, "replicas": [node], "isr": [node]} for p in (0, 1)]}

        def configs() -> dict:
            described = admin.ask("describe_configs", name=name)["configs"]
            return {k: (v["value"], v["source"]) for k, v in described.items()}

        cfg = configs()
        assert cfg["retention.ms"] == ("3600000", TOPIC_CONFIG)
        assert cfg["cleanup.policy"] == ("compact", TOPIC_CONFIG)
        assert cfg["max.message.bytes"] == ("1048588", DEFAULT_CONFIG)
        assert cfg["segment.bytes"] == ("1073741824", DEFAULT_CONFIG)

        admin.ask("create_partitions", name=name, partitions=4)
        wait_until(lambda: len(admin.ask("describe_topic", name=name)["partitions"]) == 4, "4 partitions")
        check_error(admin.ask("create_partitions", check=False, name=name, partitions=3), ErrorCode.INVALID_PARTITIONS)

        admin.ask("alter_configs", name=name, incremental=True, configs={"retention.ms": "7200000"},
                  delete=["cleanup.policy"])
        cfg = configs()
        assert (cfg["retention.ms"], cfg["cleanup.policy"]) == (("7200000", TOPIC_CONFIG), ("delete", DEFAULT_CONFIG))
        check_error(admin.ask("alter_configs", check=False, name=name, incremental=True,
                              configs={"retention.ms": "not-a-number"}), ErrorCode.INVALID_CONFIG)
        admin.ask("alter_configs", name=name, incremental=False, configs={"max.message.bytes": "20000"})
        cfg = configs()  # AlterConfigs replaces the whole set of overrides: retention.ms is back to its default
        assert cfg["max.message.bytes"] == ("20000", TOPIC_CONFIG)
        assert cfg["retention.ms"] == ("604800000", DEFAULT_CONFIG)

        produce(broker.bootstrap, name, 4, 10, "x")
        [dirs] = admin.ask("describe_log_dirs", name=name)["dirs"].values()
        assert sorted(dirs) == ["0", "1", "2", "3"] and all(size > 0 for size in dirs.values()), dirs
        assert admin.ask("list_offsets", name=name, spec="earliest")["offsets"] == {str(p): 0 for p in range(4)}
        assert admin.ask("list_offsets", name=name, spec="latest")["offsets"] == {str(p): 10 for p in range(4)}
        deleted = admin.ask("delete_records", name=name, offsets={"0": 4, "3": 10})
        if client == "franz-go":  # kadm answers with the new log start offsets
            assert deleted["lowWatermarks"] == {"0": 4, "3": 10}
        assert admin.ask("list_offsets", name=name, spec="earliest")["offsets"] == {"0": 4, "1": 0, "2": 0, "3": 10}
        past_end = admin.ask("delete_records", check=False, name=name, offsets={"1": 11})
        if client == "franz-go":
            check_error(past_end["lowWatermarks"]["1"], ErrorCode.OFFSET_OUT_OF_RANGE)
        else:
            check_error(past_end, ErrorCode.OFFSET_OUT_OF_RANGE)

        admin.ask("delete_topic", name=name)
        wait_until(lambda: name not in admin.ask("list_topics")["topics"], "the topic to disappear")
        check_error(admin.ask("describe_configs", check=False, name=name), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        check_error(admin.ask("delete_topic", check=False, name=name), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)


def group_admin(client: str, broker, topic: str, group: str, never: str) -> None:
    """Consumer groups through the client's admin API: two members of `group` (the client's own,
    cooperative-sticky) split `topic`'s four partitions and consume ten records of each; then list
    the groups, describe it (state, protocol, members with client ids, hosts and the assignments
    they report) and a group that never existed (GROUP_ID_NOT_FOUND at franz-go's DescribeGroups v6;
    Dead with no members at sarama's v5), fetch its committed offsets,
    delete both (NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND) and one partition's
    offsets (OffsetDelete: GROUP_SUBSCRIBED_TO_TOPIC while members consume it); once the members
    left, the group is Empty, that partition's offsets delete, the group deletes, and its offsets
    are gone."""
    prefix = "fgo" if client == "franz-go" else "sarama"
    members = [go_member(client, broker.bootstrap, topic, group, n) for n in "ab"]
    try:
        with Session(client, "admin", broker.bootstrap) as admin:
            owners = wait_split(members, 4)
            sent = produce(broker.bootstrap, topic, 4, 10, "x")
            wait_consumed_once(members, sent, "x", owners)

            listed = admin.ask("list_groups")["groups"]
            assert listed[group]["protocolType"] == "consumer" and never not in listed
            if client == "franz-go":  # ListGroups v5: state and type; sarama keeps only the protocol type
                assert (listed[group]["state"], listed[group]["type"]) == ("Stable", "classic")

            d = admin.ask("describe_groups", names=[group, never])["groups"]
            assert {k: v for k, v in d[group].items() if k != "members"} == \
                {"state": "Stable", "protocolType": "consumer", "protocol": "cooperative-sticky"}
            assert {m["memberId"]: (m["clientId"], m["clientHost"], m["assignment"]) for m in d[group]["members"]} == \
                {mb.member_id: (f"{prefix}-{mb.name}", "/127.0.0.1", mb.assigned) for mb in members}
            if client == "franz-go":  # DescribeGroups v6 (KIP-1043): an unknown group is not found
                check_error(d[never], ErrorCode.GROUP_ID_NOT_FOUND)
            else:  # sarama speaks v5 at most, where it is Dead
                assert d[never] == {"state": "Dead", "protocolType": "", "protocol": "", "members": []}

            # franz-go commits its member id as the offsets' metadata; sarama commits none
            meta = {p: mb.member_id if client == "franz-go" else "" for mb in members for p in owners[mb.name]}
            committed = admin.ask("fetch_offsets", name=group)["offsets"]
            assert committed == {topic: {str(p): [10, meta[p]] for p in range(4)}}, committed

            results = admin.ask("delete_groups", names=[group, never])["results"]
            check_error(results[group], ErrorCode.NON_EMPTY_GROUP)
            check_error(results[never], ErrorCode.GROUP_ID_NOT_FOUND)
            results = admin.ask("delete_offsets", name=group, topic=topic, parts=[0])["results"]
            check_error(results["0"], ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC)

            for mb in members:
                mb.close()
            assert admin.ask("describe_groups", names=[group])["groups"][group]["state"] == "Empty"
            assert admin.ask("delete_offsets", name=group, topic=topic, parts=[0])["results"] == {"0": None}
            committed = admin.ask("fetch_offsets", name=group)["offsets"]
            assert committed == {topic: {str(p): [10, meta[p]] for p in (1, 2, 3)}}, committed
            assert admin.ask("delete_groups", names=[group])["results"] == {group: None}
            assert group not in admin.ask("list_groups")["groups"]
            assert admin.ask("fetch_offsets", name=group)["offsets"] == {}
    finally:
        for mb in members:
            mb.kill()
