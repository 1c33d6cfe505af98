"""`kafka-compat config get/set`: a broker's or topic's configs over the wire, with where each value
comes from (Kafka's config sources and synonyms: DescribeConfigs; IncrementalAlterConfigs).

`kafka-compat config keys`: every config key the broker understands, with its type, default and
meaning, read from the tables the broker validates against (`server.config.BROKER_CONFIGS`,
`storage.config.TOPIC_CONFIGS`) and the Kafka keys it accepts but ignores. `--markdown` writes
the same as the page `docs/configuration.md` (`make docs`)."""

from __future__ import annotations

from typing import Any

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect, explain, fail, key_values
from kafka_compat.cli.output import OUTPUT, Format, Section, cell, show
from kafka_compat.cli.topic import DEFAULT_CONFIG, DELETE, SET, TOPIC_RESOURCE
from kafka_compat.cli.topic import SOURCES as CONFIG_SOURCES
from kafka_compat.client import Cluster, error_code
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import KafkaError

app = typer.Typer(help="Broker and topic configs: get, set, and every key the broker knows.", no_args_is_help=True)

BROKER_RESOURCE = 4  # ConfigResource.Type.BROKER
RESOURCE_HELP = "topic:NAME, broker:ID, or broker for the default of every broker (Kafka's --entity-default)."


def parse_resource(spec: str) -> tuple[int, str, int | None]:
    """'topic:orders' / 'broker:1' / 'broker' -> (resource type, resource name, the broker to ask or None)."""
    kind, _, name = spec.partition(":")
    if kind == "topic" and name:
        return TOPIC_RESOURCE, name, None
    if kind == "broker" and (not name or name == "default"):
        return BROKER_RESOURCE, "", None
    if kind == "broker" and name.isdigit():
        return BROKER_RESOURCE, name, int(name)  # a broker's own configs are its to describe
    raise typer.BadParameter(f"{spec!r}: give {RESOURCE_HELP}", param_hint="RESOURCE")


def describe(cluster: Cluster, resource: tuple[int, str, int | None], keys: list[str] | None):
    """The DescribeConfigs answer for one resource (with synonyms), or KafkaError."""
    kind, name, node = resource
    D = m.DescribeConfigsRequest
    resp = cluster.request(D(include_synonyms=True, resources=[D.DescribeConfigsResource(
        resource_type=kind, resource_name=name, configuration_keys=keys or None)]), node)
    res = resp.results[0]
    if res.error_code:
        raise KafkaError(error_code(res.error_code), res.error_message or f"configs of {name or 'every broker'}")
    return res.configs


def config_section(configs, output: Format) -> Section:
    """key, value, source, read-only and synonyms (every level that sets the key, the one in effect
    first, as `kafka-configs --describe` lists them)."""
    rows = []
    for c in sorted(configs, key=lambda c: c.name):
        synonyms = [{"key": s.name, "value": s.value, "source": CONFIG_SOURCES.get(s.source, s.source)}
                    for s in c.synonyms or ()]
        if output == Format.text:
            synonyms = ", ".join(f"{s['source']}:{s['key']}={cell(s['value'])}" for s in synonyms) or None
        rows.append([c.name, "(sensitive)" if c.is_sensitive else c.value,
                     CONFIG_SOURCES.get(c.config_source, c.config_source), c.read_only, synonyms])
    return Section(None, ["key", "value", "source", "read-only", "synonyms"], rows)


@app.command("get")
def get(
    resource: str = typer.Argument(..., help=RESOURCE_HELP),
    keys: list[str] | None = typer.Argument(None, help="Only these keys (default: every key that is set)."),
    all_: bool = typer.Option(False, "--all", "-a", help="Keys at their default too."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """A topic's or broker's configs: value, source (DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG,
    DEFAULT_CONFIG, ...) and the synonyms behind it (DescribeConfigs)."""
    where = parse_resource(resource)
    with connect(brokers, command_config) as cluster:
        configs = describe(cluster, where, keys)
    if not keys and not all_:
        configs = [c for c in configs if c.config_source != DEFAULT_CONFIG]
    show(output, config_section(configs, output))


@app.command("set")
def set_(
    resource: str = typer.Argument(..., help=RESOURCE_HELP),
    pairs: list[str] | None = typer.Argument(None, help="key=value to set."),
    delete: list[str] | None = typer.Option(None, "--delete", "-d",
                                            help="A key to remove here, so that the next level's value applies. "
                                                 "Repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only validate the change."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """Set or remove configs of a topic or broker in place (IncrementalAlterConfigs); keys not named
    stay as they are. Prints the keys changed as they now read, with their sources."""
    where = parse_resource(resource)
    A = m.IncrementalAlterConfigsRequest
    ops = [A.AlterableConfig(name=k, config_operation=SET, value=v) for k, v in key_values(pairs, "key=value")]
    ops += [A.AlterableConfig(name=k, config_operation=DELETE, value=None) for k in delete or ()]
    if not ops:
        fail("nothing to change: give key=value pairs or --delete KEY", 2)
    kind, name, node = where
    with connect(brokers, command_config) as cluster:
        resp = cluster.request(A(validate_only=dry_run, resources=[A.AlterConfigsResource(
            resource_type=kind, resource_name=name, configs=ops)]), node)
        r = resp.responses[0]
        if r.error_code:
            fail(f"{resource}: {explain(KafkaError(error_code(r.error_code), r.error_message))}")
        if dry_run:
            show(output, Section(None, ["resource", "status"], [[resource, "OK (dry run)"]]))
            return
        show(output, config_section(describe(cluster, where, [op.name for op in ops]), output))

SOURCES = ("A server.properties file (`--config`), then `KAFKA_*` environment variables (`KAFKA_LOG_DIRS` -> "
           "`log.dirs`), then `--override key=value`; an unknown key or a bad value stops the start with one line.")


def _default(key) -> str | None:
    from kafka_compat.storage.config import format_value

    return None if key.default is None or key.default == [] else format_value(key, key.default)


def _tables() -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    """(broker rows, topic rows, ignored rows) in the order they are printed."""
    from kafka_compat.server.config import BROKER_CONFIGS, KNOWN_PREFIXES, KNOWN_UNUSED
    from kafka_compat.storage.config import TOPIC_CONFIGS

    broker = [[k.name, k.type, _default(k), k.dynamic, k.doc]
              for k in sorted(BROKER_CONFIGS.values(), key=lambda k: k.name) if k.used]
    topic = [[k.name, k.type, _default(k), k.broker_key, k.doc]
             for k in sorted(TOPIC_CONFIGS.values(), key=lambda k: k.name) if k.used]
    ignored = sorted([[k.name, "broker", k.doc] for k in BROKER_CONFIGS.values() if not k.used]
                     + [[k.name, "topic", k.doc] for k in TOPIC_CONFIGS.values() if not k.used]
                     + [[k, "broker", None] for k in KNOWN_UNUSED]
                     + [[p + "*", "broker", "a family of keys (metrics, tiered storage)"]
                        for p in KNOWN_PREFIXES])
    return broker, topic, ignored


@app.command("keys")
def keys(markdown: bool = typer.Option(False, "--markdown", help="As the page docs/configuration.md."),
         output: Format = OUTPUT) -> None:
    """Every broker and topic config key with its type, default and meaning; then Kafka's keys that
    are accepted but not acted on."""
    broker, topic, ignored = _tables()
    if markdown:
        typer.echo(_page(broker, topic, ignored), nl=False)
        return
    show(output,
         Section("broker", ["key", "type", "default", "dynamic", "meaning"], broker,
                 note="(server.properties, KAFKA_* variables, --override)"),
         Section("topic", ["key", "type", "default", "broker-key", "meaning"], topic,
                 note="(topic create --config, config set topic:NAME; the broker key sets the default of every topic)"),
         Section("accepted but ignored", ["key", "applies-to", "meaning"], ignored, key="ignored",
                 note="(Kafka's keys: taken, named in one warning line at start, not acted on)"))


def _md(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[cell(c).replace("|", "\\|") for c in row] for row in rows]
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
                     + ["| `" + row[0] + "` | " + " | ".join(row[1:]) + " |" for row in cells]) + "\n"


def _page(broker, topic, ignored) -> str:
    return "\n".join([
        "# Configuration keys",
        "",
        "Generated by `kafka-compat config keys --markdown` (`make docs`) from the tables the broker validates",
        "against; a test keeps it current. The same list prints with `kafka-compat config keys`.",
        "",
        "## Broker keys",
        "",
        SOURCES + " Dynamic keys can also be changed at run time (AlterConfigs, per broker or cluster-wide).",
        "",
        _md(["Key", "Type", "Default", "Dynamic", "Meaning"], broker),
        "## Topic keys",
        "",
        "Set per topic at creation (`kafka-compat topic create --config key=value`) or later (`topic alter-config`);",
        "a topic that does not set one gets the broker key's value, or the default.",
        "",
        _md(["Key", "Type", "Default", "Broker key", "Meaning"], topic),
        "## Accepted but ignored",
        "",
        "Kafka's keys that the broker takes (an existing server.properties works) and does not act on (yet).",
        "Those set are named in one warning line when the broker starts.",
        "",
        _md(["Key", "Applies to", "Meaning"], ignored),
    ])
