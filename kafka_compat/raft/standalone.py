"""A controller quorum member on its own, with a key/value toy state machine: for tests and
benchmarks of the Raft layer over real processes.

    python -m kafka_compat.raft.standalone --node-id 1 \\
        --voters 1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093 --dir /tmp/raft-1

The controller listener (the node's own address in --voters, or --listen for an observer) speaks
the Kafka protocol (Vote, Fetch, DescribeQuorum, ...). The same port also takes admin commands,
one JSON object per line, told apart by their first byte (`{`, which no Kafka frame starts with):

    {"op": "status"}                       role, epoch, leader, offsets
    {"op": "propose", "values": ["k=v"]}   append on the leader, answer once committed
    {"op": "log"}                          the committed records and a digest of the committed log
    {"op": "resign"} / {"op": "snapshot"}  graceful resignation / a snapshot now

SIGTERM (or ^C) stops it gracefully: a leader resigns first, so the others need not wait out a
fetch timeout.
"""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import trio
import typer

from kafka_compat import logs
from kafka_compat.raft.config import QuorumConfig, parse_bootstrap_servers, parse_voters
from kafka_compat.raft.driver import CommitLost, RaftDriver
from kafka_compat.raft.node import NotLeaderError
from kafka_compat.raft.state_machine import KeyValueStateMachine
from kafka_compat.records.batch import read_header
from kafka_compat.records.record import iter_records

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class Admin:
    def __init__(self, driver: RaftDriver):
        self.driver = driver

    async def __call__(self, stream: trio.SocketStream, first: bytes) -> None:
        buffer = first
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    answer = await self.command(json.loads(line))
                    await stream.send_all(json.dumps(answer).encode() + b"\n")
            data = await stream.receive_some(65536)
            if not data:
                return
            buffer += data

    async def command(self, cmd: dict) -> dict:
        d, node = self.driver, self.driver.node
        op = cmd.get("op")
        if op == "status":
            return {"node_id": node.id, "role": node.role, "epoch": node.epoch, "leader_id": node.leader_id,
                    "high_watermark": node.high_watermark, "log_start_offset": d.log.start_offset,
                    "log_end_offset": d.log.end_offset, "applied_offset": node.applied_offset}
        if op == "propose":
            try:
                with trio.fail_after(cmd.get("timeout_ms", 10_000) / 1000):
                    offset = await d.propose([v.encode() for v in cmd["values"]])
                return {"ok": True, "offset": offset.offset, "epoch": offset.epoch}
            except NotLeaderError as e:
                return {"ok": False, "error": "not_leader", "leader_id": e.leader_id, "epoch": e.epoch}
            except (CommitLost, trio.TooSlowError) as e:
                return {"ok": False, "error": type(e).__name__}
        if op == "log":
            records, digest = [], hashlib.sha256()
            for batch in d.log.batches(d.log.start_offset, min(node.high_watermark, d.log.end_offset)):
                digest.update(batch.data)
                header = read_header(batch.data)
                if not header.is_control:
                    records += [[r.offset, batch.epoch, r.value.decode()] for r in iter_records(batch.data, 0, header)]
            return {"start": d.log.start_offset, "records": records, "digest": digest.hexdigest(),
                    "data": d.state_machine.data}
        if op == "resign":
            try:
                await d.resign()
                return {"ok": True}
            except NotLeaderError as e:
                return {"ok": False, "error": "not_leader", "leader_id": e.leader_id}
        if op == "snapshot":
            await d.snapshot()
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}


@app.command()
def main(
    node_id: int = typer.Option(..., "--node-id", help="node.id"),
    voters: str = typer.Option(..., "--voters", help="controller.quorum.voters: id@host:port,..."),
    data_dir: Path = typer.Option(..., "--dir", help="where __cluster_metadata-0 lives"),
    listen: str = typer.Option("", "--listen", help="host:port to listen on (default: this node's voter address)"),
    bootstrap_servers: str = typer.Option("", "--bootstrap-servers", help="controller.quorum.bootstrap.servers"),
    cluster_id: str = typer.Option("standalone", "--cluster-id"),
    election_timeout_ms: int = typer.Option(1000, "--election-timeout-ms"),
    fetch_timeout_ms: int = typer.Option(2000, "--fetch-timeout-ms"),
    snapshot_every: int = typer.Option(0, "--snapshot-every", help="records between snapshots (0: never)"),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    logs.configure("console", log_level)
    voter_endpoints = parse_voters(voters)
    bootstrap = parse_bootstrap_servers(bootstrap_servers)
    config = QuorumConfig(voters=frozenset(voter_endpoints), endpoints={**voter_endpoints, **bootstrap},
                          bootstrap=tuple(bootstrap), cluster_id=cluster_id, election_timeout_ms=election_timeout_ms,
                          fetch_timeout_ms=fetch_timeout_ms)
    if listen:
        host, _, port = listen.rpartition(":")
        address = (host, int(port))
    elif node_id in voter_endpoints:
        address = tuple(voter_endpoints[node_id])
    else:
        raise typer.BadParameter("an observer needs --listen", param_hint="--listen")

    async def run() -> None:
        driver = RaftDriver(node_id, config, data_dir, KeyValueStateMachine(), listen=address,
                            snapshot_every=snapshot_every)
        driver.admin = Admin(driver)
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    await driver.shutdown()  # a leader hands over before it goes
                    return

    trio.run(run)


if __name__ == "__main__":
    app()
