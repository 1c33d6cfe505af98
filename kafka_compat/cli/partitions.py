"""`kafka-compat partitions ...`: move replicas and elect leaders, as Kafka's
kafka-reassign-partitions and kafka-leader-election do, with their JSON files and messages.

- `reassign plan`: a proposal for moving whole topics onto a list of brokers (Kafka's
  `--generate`), placed rack-aware by the striped placer the controller uses for new topics;
- `reassign execute`: start the moves of a reassignment file (AlterPartitionReassignments),
  printing the current assignment first, to roll back with;
- `reassign verify`: which moves of a file are complete (ListPartitionReassignments, Metadata);
- `reassign cancel`: stop the moves of a file under way;
- `elect-leaders`: preferred or unclean leader elections (ElectLeaders).

The files are Kafka's: `{"version":1,"topics":[{"topic":"t"}]}` names topics to move,
`{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}` is a reassignment
(`log_dirs`, if given, may only say "any": this broker has one log directory per node), and
`{"partitions":[{"topic":"t","partition":0}]}` names partitions to elect leaders for.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import typer

from kafka_compat.cli.admin import BROKERS, connect, fail
from kafka_compat.client import Cluster
from kafka_compat.metadata.placement import PlacementError, UsableBroker, place
from kafka_compat.protocol.errors import ErrorCode

app = typer.Typer(help="Move partition replicas and elect partition leaders.", no_args_is_help=True)
reassign = typer.Typer(help="Move partition replicas between brokers (as kafka-reassign-partitions).",
                       no_args_is_help=True)
app.add_typer(reassign, name="reassign")

REASSIGNMENT_FILE = typer.Option(..., "--reassignment-json-file", exists=True, dir_okay=False,
                                 help='{"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}')
ELECTION_TYPES = {"preferred": 0, "unclean": 1}
Assignment = dict[tuple[str, int], list[int]]


def _load(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(f"{path}: not a {what} JSON file: {e}", 2)


def _entries(doc: Any, key: str, path: Path) -> list[dict]:
    entries = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        fail(f'{path}: expected {{"{key}": [...]}}', 2)
    return entries


def _partition(entry: dict, path: Path) -> tuple[str, int]:
    topic, p = entry.get("topic"), entry.get("partition")
    if not isinstance(topic, str) or not isinstance(p, int) or isinstance(p, bool):
        fail(f"{path}: each partition needs a \"topic\" (string) and a \"partition\" (integer): {json.dumps(entry)}", 2)
    return topic, p


def _reassignment_file(path: Path) -> Assignment:
    """(topic, partition) -> target replicas, with Kafka's checks of the file."""
    moves: Assignment = {}
    for entry in _entries(_load(path, "reassignment"), "partitions", path):
        tp = _partition(entry, path)
        replicas = entry.get("replicas")
        if not isinstance(replicas, list) or not replicas or not all(isinstance(r, int) for r in replicas):
            fail(f"{path}: partition {_name(tp)} needs a non-empty \"replicas\" list of broker ids", 2)
        if len(set(replicas)) != len(replicas):
            fail(f"Duplicate replica assignment found for partition {_name(tp)}: {_ids(replicas)}", 2)
        dirs = entry.get("log_dirs", ["any"] * len(replicas))
        if not isinstance(dirs, list) or len(dirs) != len(replicas):
            fail(f"{path}: partition {_name(tp)} has {len(replicas)} replicas but log_dirs {dirs}", 2)
        if any(d != "any" for d in dirs):
            fail(f"{path}: partition {_name(tp)}: moving replicas between log directories is not supported "
                 "(this broker has one per node); use \"any\"", 2)
        if tp in moves:
            fail(f"Duplicate reassignment partitions: {_name(tp)}", 2)
        moves[tp] = replicas
    if not moves:
        fail(f"{path}: the reassignment lists no partitions", 2)
    return moves


def _assignment_json(assignment: Assignment) -> str:
    return json.dumps({"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": r, "log_dirs": ["any"] * len(r)}
        for (t, p), r in sorted(assignment.items())]}, separators=(",", ":"))


def _current(cluster: Cluster, topics: set[str]) -> Assignment:
    """The replicas of every partition of `topics`, as Metadata has them; a missing topic fails."""
    meta = cluster.metadata(sorted(topics))
    out: Assignment = {}
    for name in sorted(topics):
        t = meta.topics.get(name)
        if t is None or t.error == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            fail(f"Topic {name} not found")
        out.update({(name, p): s.replicas for p, s in t.partitions.items()})
    return out


def _name(tp: tuple[str, int]) -> str:
    return f"{tp[0]}-{tp[1]}"


def _ids(ids: list[int]) -> str:
    return ",".join(map(str, ids))


@reassign.command()
def plan(
    topics_to_move: Path = typer.Option(..., "--topics-to-move-json-file", exists=True, dir_okay=False,
                                        help='{"version":1,"topics":[{"topic":"t"}]}'),
    broker_list: str = typer.Option(..., "--broker-list", help="The brokers to move them to, e.g. 1,2,3."),
    disable_rack_aware: bool = typer.Option(False, "--disable-rack-aware", help="Ignore broker.rack."),
    brokers: str = BROKERS,
) -> None:
    """Propose moving whole topics onto --broker-list (Kafka's --generate); nothing is changed. Prints
    the current assignment (for rollback) and the proposal (for execute), a JSON line each."""
    try:
        targets = sorted({int(b) for b in broker_list.split(",") if b.strip()})
    except ValueError:
        raise typer.BadParameter(f"{broker_list!r} is not a comma-separated list of broker ids",
                                 param_hint="--broker-list") from None
    names = {e.get("topic") for e in _entries(_load(topics_to_move, "topics-to-move"), "topics", topics_to_move)}
    if not all(isinstance(n, str) for n in names):
        fail(f'{topics_to_move}: each entry of "topics" needs a "topic" (string)', 2)
    if not names or not targets:
        fail("give at least one topic and one broker", 2)
    with connect(brokers) as cluster:
        current = _current(cluster, names)
        nodes = cluster.nodes
    unknown = [b for b in targets if b not in nodes]
    if unknown:
        fail(f"brokers {_ids(unknown)} are not in the cluster (it has {_ids(sorted(nodes))})")
    racks = {b: None if disable_rack_aware else nodes[b].rack for b in targets}
    if not disable_rack_aware and any(racks.values()) and not all(racks.values()):
        fail("Not all brokers have rack information. Add --disable-rack-aware in command line to make replica "
             "assignment without rack information.")
    usable = [UsableBroker(b, racks[b], False) for b in targets]
    proposal: Assignment = {}
    rng = random.Random()
    for name in sorted(names):
        parts = sorted(p for t, p in current if t == name)
        try:
            placed = place(usable, len(parts), len(current[(name, parts[0])]), rng)
        except PlacementError as e:
            fail(f"topic {name}: {e}")
        proposal.update({(name, p): r for p, r in zip(parts, placed)})
    typer.echo("Current partition replica assignment\n" + _assignment_json(current) + "\n")
    typer.echo("Proposed partition reassignment configuration\n" + _assignment_json(proposal))


@reassign.command()
def execute(reassignment: Path = REASSIGNMENT_FILE, brokers: str = BROKERS) -> None:
    """Start the moves of a reassignment file (AlterPartitionReassignments). New replicas catch
    up, join the ISR, then the replicas not in the target list leave; `verify` says when."""
    moves = _reassignment_file(reassignment)
    with connect(brokers) as cluster:
        current = _current(cluster, {t for t, _ in moves})
        missing = [tp for tp in moves if tp not in current]
        if missing:
            fail(f"Unable to find partitions: {', '.join(map(_name, missing))}")
        typer.echo("Current partition replica assignment\n\n"
                   + _assignment_json({tp: current[tp] for tp in moves}) + "\n")
        typer.echo("Save this to use as the --reassignment-json-file option during rollback")
        errors = cluster.reassign(dict(moves))
    _summary("Successfully started partition reassignments for", "Error reassigning partition(s):", errors)


@reassign.command()
def cancel(reassignment: Path = REASSIGNMENT_FILE, brokers: str = BROKERS) -> None:
    """Stop the moves of a reassignment file that are under way: their replicas go back to what
    they were before (added replicas leave)."""
    moves = _reassignment_file(reassignment)
    with connect(brokers) as cluster:
        errors = cluster.reassign(dict.fromkeys(moves))
    _summary("Successfully cancelled partition reassignments for", "Error cancelling partition(s):", errors)


def _summary(ok: str, failed: str, errors: dict) -> None:
    done = [tp for tp, e in sorted(errors.items()) if e is None]
    if done:
        typer.echo(f"{ok} {','.join(map(_name, done))}")
    bad = [(tp, e) for tp, e in sorted(errors.items()) if e is not None]
    if bad:
        typer.echo(failed, err=True)
        for tp, e in bad:
            typer.echo(f"{_name(tp)}: {e}", err=True)
        raise typer.Exit(1)


@reassign.command()
def verify(reassignment: Path = REASSIGNMENT_FILE, brokers: str = BROKERS) -> None:
    """Say, for each partition of a reassignment file, whether its move is complete, still in
    progress (with the replicas being added and removed), or not what the file asks. Exits 0
    only when every move is complete, so a script can wait on it."""
    moves = _reassignment_file(reassignment)
    with connect(brokers) as cluster:
        ongoing = cluster.reassignments(list(moves))
        current = _current(cluster, {t for t, _ in moves})
    typer.echo("Status of partition reassignment:")
    complete = True
    for tp, target in sorted(moves.items()):
        if tp in ongoing:
            o = ongoing[tp]
            typer.echo(f"Reassignment of partition {_name(tp)} is still in progress "
                       f"(adding [{_ids(o.adding_replicas)}], removing [{_ids(o.removing_replicas)}]).")
            complete = False
        elif current.get(tp) == target:
            typer.echo(f"Reassignment of partition {_name(tp)} is completed.")
        else:
            typer.echo(f"There is no active reassignment of partition {_name(tp)}, but replica set is "
                       f"{_ids(current.get(tp, []))} rather than {_ids(target)}.")
            complete = False
    if not complete:
        raise typer.Exit(1)


@app.command("elect-leaders")
def elect_leaders(
    election_type: str = typer.Option(..., "--election-type", help="preferred or unclean.",
                                      case_sensitive=False),
    topic: str | None = typer.Option(None, "--topic", help="The topic (with --partition)."),
    partition: int | None = typer.Option(None, "--partition", help="The partition of --topic."),
    all_topic_partitions: bool = typer.Option(False, "--all-topic-partitions",
                                              help="Every partition of the cluster."),
    path_to_json_file: Path | None = typer.Option(None, "--path-to-json-file", exists=True, dir_okay=False,
                                                  help='{"partitions":[{"topic":"t","partition":0}]}'),
    brokers: str = BROKERS,
) -> None:
    """Elect partition leaders (as kafka-leader-election). preferred: the first replica of the
    list, if it is in sync; unclean: any live replica, in sync or not, for partitions without a
    leader (records the ISR had and it did not are lost)."""
    kind = ELECTION_TYPES.get(election_type.lower())
    if kind is None:
        raise typer.BadParameter(f"{election_type!r} is not preferred or unclean", param_hint="--election-type")
    given = sum((topic is not None, all_topic_partitions, path_to_json_file is not None))
    if given != 1 or (topic is None) != (partition is None):
        fail("give exactly one of --topic with --partition, --all-topic-partitions, --path-to-json-file", 2)
    if path_to_json_file is not None:
        wanted = [_partition(e, path_to_json_file)
                  for e in _entries(_load(path_to_json_file, "partitions"), "partitions", path_to_json_file)]
    else:
        wanted = None if all_topic_partitions else [(topic, partition)]
    with connect(brokers) as cluster:
        results = cluster.elect_leaders(kind, wanted)
    label = election_type.upper()
    done = [tp for tp, e in sorted(results.items()) if e is None]
    noop = [tp for tp, e in sorted(results.items()) if e is not None and e.code == ErrorCode.ELECTION_NOT_NEEDED]
    failed = [(tp, e) for tp, e in sorted(results.items())
              if e is not None and e.code != ErrorCode.ELECTION_NOT_NEEDED]
    if done:
        typer.echo(f"Successfully completed leader election ({label}) for partitions {', '.join(map(_name, done))}")
    if noop:
        typer.echo(f"Valid replica already elected for partitions {', '.join(map(_name, noop))}")
    for tp, e in failed:
        typer.echo(f"Error completing leader election ({label}) for partition: {_name(tp)}: {e}", err=True)
    if failed:
        fail(f"{len(failed)} replica(s) could not be elected")
