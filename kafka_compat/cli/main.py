"""The `kafka-compat` command line: one typer app, one module per command family; `main` is the
executable."""

import sys

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError

from kafka_compat.cli import certs as _certs
from kafka_compat.cli import cluster as _cluster
from kafka_compat.cli import config as _config
from kafka_compat.cli import consume as _consume
from kafka_compat.cli import dump_log as _dump_log
from kafka_compat.cli import group as _group
from kafka_compat.cli import partitions as _partitions
from kafka_compat.cli import produce as _produce
from kafka_compat.cli import quorum as _quorum
from kafka_compat.cli import security as _security
from kafka_compat.cli import server as _server
from kafka_compat.cli import specs as _specs
from kafka_compat.cli import topic as _topic
from kafka_compat.cli import txn as _txn

app = typer.Typer(
    name="kafka-compat",
    help="A broker that speaks the Apache Kafka wire protocol, and tools to run and administer it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("start")(_server.start)
app.command("format")(_server.format_)
app.add_typer(_specs.app, name="specs")
app.command("dump-log")(_dump_log.dump_log)
app.add_typer(_topic.app, name="topic")
app.add_typer(_partitions.app, name="partitions")
app.command("produce")(_produce.produce)
app.command("consume")(_consume.consume)
app.add_typer(_cluster.app, name="cluster")
app.add_typer(_group.app, name="group")
app.add_typer(_config.app, name="config")
app.add_typer(_quorum.app, name="quorum")
app.add_typer(_certs.app, name="certs")
app.add_typer(_txn.app, name="txn")
app.add_typer(_security.acl_app, name="acl")
app.add_typer(_security.user_app, name="user")
app.add_typer(_security.quota_app, name="quota")


def main() -> None:
    """Run the app; a usage mistake is one line (`error: ...; see COMMAND --help`) like every other
    error, where typer would draw a box."""
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError:  # the help was shown
        code = 2
    except ClickException as e:
        where = e.ctx.command_path if getattr(e, "ctx", None) else "kafka-compat"
        typer.echo(f"error: {e.format_message().rstrip('.')}; see {where} --help", err=True)
        code = e.exit_code
    sys.exit(code if isinstance(code, int) else 0)
