"""`kafka-compat specs`: import Kafka's schemas and generate the codecs from them."""

from pathlib import Path

import typer

app = typer.Typer(help="Import Kafka's protocol schemas and generate codecs.", no_args_is_help=True)

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "protocol_specs"


@app.command("import")
def import_(
    sources: list[Path] = typer.Argument(..., help="Kafka jars of one release (kafka-clients, kafka-metadata, "
                                         "kafka-raft, kafka-group-coordinator, kafka-transaction-coordinator), "
                                         "a Kafka source tree, or a folder holding its schema folders."),
    dest: Path = typer.Option(SPECS, help="Where to write the project's copy."),
) -> None:
    """Copy the facts of Kafka's JSON schemas (no prose) into protocol_specs/; folders the sources
    do not hold are kept as they are."""
    from kafka_compat.protocol.specs_import import SpecImportError, import_specs

    try:
        counts = import_specs(sources, dest)
    except SpecImportError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    for folder, n in counts.items():
        typer.echo(f"{folder}: " + ("kept (not in the sources)" if n is None else f"{n} schemas"))


@app.command("generate")
def generate(
    specs: Path = typer.Option(SPECS, help="The project's protocol_specs/."),
    check: bool = typer.Option(False, help="Write nothing; exit 1 if the generated code is out of date."),
) -> None:
    """Generate kafka_compat/protocol/messages/ from protocol_specs/."""
    from kafka_compat.protocol.codegen import OUT_DIR, generate_all

    stale = generate_all(specs, OUT_DIR, check=check)
    if check and stale:
        typer.echo("generated code is out of date; run `make specs`: " + ", ".join(stale), err=True)
        raise typer.Exit(1)
    typer.echo(("up to date" if check else "generated") + f" ({OUT_DIR.relative_to(ROOT)})")
