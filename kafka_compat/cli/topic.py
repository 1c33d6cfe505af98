"""`kafka-compat topic ...`: create, list, describe, alter the configs of, grow and delete topics.

Each subcommand is one admin request (plus Metadata where it needs the topic's shape). A request
that fails for some topics prints one `error:` line per failure and exits 1.
"""

from __future__ import annotations

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect, explain, fail, key_values, with_leader
from kafka_compat.cli.output import OUTPUT, Format, Section, show
from kafka_compat.client import BrokerUnreachable, Cluster, error_code
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import KafkaError

app = typer.Typer(help="Create, list, describe, alter and delete topics.", no_args_is_help=True)

TOPIC_RESOURCE = 2  # ConfigResource.Type.TOPIC
# DescribeConfigs' ConfigSource codes.
SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
           4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
           7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}
DEFAULT_CONFIG = 5
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3  # IncrementalAlterConfigs operations
TIMEOUT_MS = 30_000


def _report(output: Format, headers: list[str], results: list[tuple[str, int, str | None, list]]) -> None:
    """Results are (topic, error code, error message, row): print the rows of the topics that
    worked, an error line for each that did not, and exit 1 if any did not."""
    ok = [row for _, code, _, row in results if not code]
    if ok or output == Format.json:
        show(output, Section(None, headers, ok))
    failed = [(name, code, msg) for name, code, msg, _ in results if code]
    for name, code, msg in failed:
        typer.echo(f"error: {name}: {explain(KafkaError(error_code(code), msg))}", err=True)
    if failed:
        raise typer.Exit(1)


def _controller(cluster: Cluster) -> int | None:
    """Where topic changes go: the controller Metadata names (any broker forwards them in KRaft;
    older clusters need the controller itself)."""
    meta = cluster.metadata([])
    return meta.controller_id if meta.controller_id in meta.nodes else None


@app.command()
def create(
    names: list[str] = typer.Argument(..., help="Topics to create."),
    partitions: int = typer.Option(-1, "--partitions", "-p", help="Partitions (-1: the broker's num.partitions)."),
    replication_factor: int = typer.Option(
        -1, "--replication-factor", "-r", help="Replicas per partition (-1: the broker's default.replication.factor)."),
    config: list[str] | None = typer.Option(None, "--config", "-c", help="A topic config key=value. Repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only validate the request; create nothing."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """Create topics (CreateTopics)."""
    C = m.CreateTopicsRequest
    configs = [C.CreatableTopicConfig(name=k, value=v) for k, v in key_values(config, "--config")]
    with connect(brokers, command_config) as cluster:
        node = _controller(cluster)
        version = cluster.version(C, node)
        if version < 4 and (partitions < 0 or replication_factor < 0):
            fail(f"this broker's CreateTopics (v{version}) has no defaults: give -p and -r")
        req = C(timeout_ms=TIMEOUT_MS, validate_only=dry_run, topics=[
            C.CreatableTopic(name=n, num_partitions=partitions, replication_factor=replication_factor, configs=configs)
            for n in names])
        resp = cluster.request(req, node, version)
    status = "OK (dry run)" if dry_run else "OK"
    results = []
    for t in resp.topics:  # v5+ answers with the counts the broker chose
        count = t.num_partitions if t.num_partitions >= 0 else partitions
        replicas = t.replication_factor if t.replication_factor >= 0 else replication_factor
        results.append((t.name, t.error_code, t.error_message, [t.name, count, replicas, status]))
    _report(output, ["topic", "partitions", "replicas", "status"], results)


@app.command("list")
def list_(
    internal: bool = typer.Option(False, "--internal", "-i", help="Include internal topics (__consumer_offsets, ...)."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """List topics with their partition and replica counts."""
    with connect(brokers, command_config) as cluster:
        meta = cluster.metadata(None)
    rows = []
    for t in sorted(meta.topics.values(), key=lambda t: t.name):
        if t.internal and not internal:
            continue
        replicas = max((len(p.replicas) for p in t.partitions.values()), default=0)
        rows.append([t.name, len(t.partitions), replicas] + ([t.internal] if internal else []))
    show(output, Section(None, ["name", "partitions", "replicas"] + (["internal"] if internal else []), rows))


@app.command()
def describe(
    name: str = typer.Argument(..., help="The topic."),
    all_configs: bool = typer.Option(False, "--all-configs", "-a", help="Show every config, defaults included."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """Show a topic: summary, non-default configs and their source, partition leaders, replicas, ISR, watermarks."""
    D = m.DescribeConfigsRequest
    with connect(brokers, command_config) as cluster:
        t = cluster.topic(name)
        up, down = with_leader(cluster, name, t.partitions)  # watermarks of those with a leader
        try:
            marks = cluster.watermarks(name, up)
        except (KafkaError, BrokerUnreachable) as e:  # a leader lost meanwhile: still show the rest
            typer.echo(f"warning: no watermarks: {e}", err=True)
            marks = {}
        resp = cluster.request(D(resources=[D.DescribeConfigsResource(
            resource_type=TOPIC_RESOURCE, resource_name=name, configuration_keys=None)]))
    res = resp.results[0]
    if res.error_code:
        fail(f"{error_code(res.error_code).name}: {res.error_message or f'configs of topic {name!r}'}")
    configs = [c for c in res.configs if all_configs or not _is_default(c)]

    replicas = max((len(p.replicas) for p in t.partitions.values()), default=0)
    rows = []
    offline = any(p.offline for p in t.partitions.values())
    for p in t.partitions.values():
        low, high = marks.get(p.partition, (None, None))
        row = [p.partition, p.leader, p.leader_epoch, p.replicas, p.isr, low, high]
        if offline:
            row.append(p.offline)
        if down:
            row.append(down[p.partition].code.name if p.partition in down else None)
        rows.append(row)
    show(output,
         Section("summary", ["name", "id", "partitions", "replicas", "internal"],
                 [[name, str(t.topic_id), len(t.partitions), replicas, t.internal]], one=True),
         Section("configs", ["key", "value", "source"],
                 [[c.name, "(sensitive)" if c.is_sensitive else c.value, SOURCES.get(c.config_source, c.config_source)]
                  for c in sorted(configs, key=lambda c: c.name)]),
         Section("partitions", ["partition", "leader", "epoch", "replicas", "isr", "low-watermark", "high-watermark"]
                 + (["offline"] if offline else []) + (["error"] if down else []), rows))


def _is_default(c) -> bool:
    return c.config_source == DEFAULT_CONFIG if c.config_source >= 0 else c.is_default  # v0 has only is_default


@app.command()
def delete(names: list[str] = typer.Argument(..., help="Topics to delete."), brokers: str = BROKERS,
           command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """Delete topics (DeleteTopics)."""
    D = m.DeleteTopicsRequest
    with connect(brokers, command_config) as cluster:
        node = _controller(cluster)
        version = cluster.version(D, node)
        req = D(timeout_ms=TIMEOUT_MS)
        if version >= 6:
            req.topics = [D.DeleteTopicState(name=n) for n in names]
        else:
            req.topic_names = names
        resp = cluster.request(req, node, version)
    _report(output, ["topic", "status"],
            [(r.name, r.error_code, r.error_message, [r.name, "OK"]) for r in resp.responses])


@app.command("alter-config")
def alter_config(
    name: str = typer.Argument(..., help="The topic."),
    set_: list[str] | None = typer.Option(None, "--set", "-s", help="key=value to set. Repeatable."),
    delete: list[str] | None = typer.Option(None, "--delete", "-d", help="A key to reset to its default. Repeatable."),
    append: list[str] | None = typer.Option(None, "--append", help="key=value to add to a list config. Repeatable."),
    subtract: list[str] | None = typer.Option(
        None, "--subtract", help="key=value to remove from a list config. Repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only validate the change."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """Change a topic's configs in place (IncrementalAlterConfigs): keys not named stay as they are."""
    A = m.IncrementalAlterConfigsRequest
    ops = [A.AlterableConfig(name=k, config_operation=op, value=v)
           for op, given, what in ((SET, set_, "--set"), (APPEND, append, "--append"),
                                   (SUBTRACT, subtract, "--subtract"))
           for k, v in key_values(given, what)]
    ops += [A.AlterableConfig(name=k, config_operation=DELETE, value=None) for k in delete or ()]
    if not ops:
        fail("nothing to change: give --set, --delete, --append or --subtract", 2)
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(A(validate_only=dry_run, resources=[A.AlterConfigsResource(
            resource_type=TOPIC_RESOURCE, resource_name=name, configs=ops)]))
    r = resp.responses[0]
    _report(output, ["topic", "status"],
            [(name, r.error_code, r.error_message, [name, "OK (dry run)" if dry_run else "OK"])])


@app.command("add-partitions")
def add_partitions(
    name: str = typer.Argument(..., help="The topic."),
    num: int = typer.Option(..., "--num", "-n", min=1, help="How many partitions to add."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """Add partitions to a topic (CreatePartitions). Keys move: murmur2 placement depends on the count."""
    C = m.CreatePartitionsRequest
    with connect(brokers, command_config) as cluster:
        total = len(cluster.topic(name).partitions) + num
        resp = cluster.request(C(timeout_ms=TIMEOUT_MS, validate_only=False, topics=[
            C.CreatePartitionsTopic(name=name, count=total, assignments=None)]), _controller(cluster))
    r = resp.results[0]
    _report(output, ["topic", "partitions", "status"], [(name, r.error_code, r.error_message, [name, total, "OK"])])
