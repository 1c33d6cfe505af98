"""The `kafka-compat` command line: one typer app, one module per command family."""

import typer

app = typer.Typer(
    name="kafka-compat",
    help="A broker that speaks the Apache Kafka wire protocol, and tools to run and administer it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from kafka_compat.cli import specs as _specs  # noqa: E402

app.add_typer(_specs.app, name="specs")
