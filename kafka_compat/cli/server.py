"""`kafka-compat start` and `kafka-compat format`: run a node, or prepare its data directories."""

from __future__ import annotations

from pathlib import Path

import typer

CONFIG = typer.Option(None, "--config", "-c", help="A server.properties file (Kafka's keys).", exists=True,
                      dir_okay=False)
OVERRIDE = typer.Option(None, "--override", "-o",
                        help="key=value, overriding the file and KAFKA_* variables. Repeatable.")


def _config(config: Path | None, override: list[str] | None):
    # Imported here: the broker's modules are heavy, and other commands should start fast.
    from kafka_compat.server.config import ConfigError, load_config

    try:
        return load_config(config, overrides=override or [])
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def start(
    config: Path | None = CONFIG,
    override: list[str] | None = OVERRIDE,
    log_format: str = typer.Option("console", help="console (human) or json (one JSON object a line)."),
    log_level: str = typer.Option("info", help="debug shows one line per request."),
    cluster_id: str | None = typer.Option(
        None, "--cluster-id", "-t", envvar="CLUSTER_ID",
        help="Format empty data directories for this cluster id (every node of a multi-node cluster needs the same)."),
) -> None:
    """Start a node: formats empty data directories, recovers the logs and serves until SIGTERM/SIGINT."""
    import trio

    from kafka_compat import logs
    from kafka_compat.server.broker import Broker, StartupError, run_until_signalled
    from kafka_compat.server.config import ConfigError
    from kafka_compat.storage.dir_lock import DirLocked

    cfg = _config(config, override)
    try:
        logs.configure(log_format, log_level)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    try:
        broker = Broker(cfg, cluster_id)
    except (ConfigError, StartupError, DirLocked) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if cfg.unused:
        import structlog

        structlog.get_logger("kafka_compat.server").warning("config_keys_ignored", keys=",".join(cfg.unused))
    trio.run(run_until_signalled, broker)


def format_(
    config: Path | None = CONFIG,
    override: list[str] | None = OVERRIDE,
    cluster_id: str | None = typer.Option(None, "--cluster-id", "-t", help="Cluster id (a new random one if omitted)."),
    ignore_formatted: bool = typer.Option(False, "--ignore-formatted", "-g", help="Succeed if already formatted."),
) -> None:
    """Write meta.properties into the node's log directories (as `kafka-storage format`)."""
    from kafka_compat.server.broker import format_log_dirs
    from kafka_compat.server.config import ConfigError
    from kafka_compat.storage.dir_lock import DirLocked, DirLocks
    from kafka_compat.storage.meta_properties import read_meta_properties

    cfg = _config(config, override)
    try:
        locks = DirLocks.acquire([*cfg.log_dirs, cfg.metadata_log_dir])  # not under a running node
    except DirLocked as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    try:
        already = [d for d in cfg.log_dirs if read_meta_properties(Path(d))]
        if already and not ignore_formatted:
            typer.echo(f"error: {already[0]} is already formatted (use --ignore-formatted)", err=True)
            raise typer.Exit(1)
        cid = format_log_dirs(cfg, cluster_id, ignore_formatted=ignore_formatted)
    except ConfigError as e:
        locks.release(undo=True)
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    locks.release()
    typer.echo(f"Formatted {', '.join(cfg.log_dirs)} for cluster {cid}, node {cfg.node_id}")
