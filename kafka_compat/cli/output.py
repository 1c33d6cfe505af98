"""How the commands print what they found.

A command builds `Section`s (a titled table of plain values: ints, strings, None, bools, lists)
and hands them to `show`, which prints them for the reader at hand:

- `--output text` (the default) on a terminal: rich tables;
- `--output text` piped: plain columns two spaces apart under upper-case headers (rpk's look), one
  row a line, for grep, awk and `column`;
- `--output json`: one JSON document on stdout, for scripts. One section is a list of objects;
  several are an object of sections, a one-row section (`one=True`) an object. Keys are the
  column names in snake_case, values keep their types (null for a missing value).

Errors stay one line each on stderr in every format (`admin.fail`), and the exit code says whether
everything was done. `progress` draws a progress bar on stderr only when stderr is a terminal and
the command's own output goes elsewhere.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import typer


class Format(str, Enum):
    text = "text"
    json = "json"


OUTPUT = typer.Option(
    Format.text, "--output", envvar="KAFKA_COMPAT_OUTPUT",
    help="text: tables (drawn on a terminal, plain columns when piped); json: one JSON document, for scripts.")


@dataclass
class Section:
    """A titled table. `one`: a single row, an object in JSON; `fields`: printed as `Key: value`
    lines instead of a table (as Kafka's tools print a summary); `key`: its name in JSON (default:
    the title in snake_case); `note`: said after the title in text only."""

    title: str | None
    columns: Sequence[str]
    rows: list[list[Any]] = field(default_factory=list)
    one: bool = False
    fields: bool = False
    key: str | None = None
    note: str = ""

    def records(self) -> list[dict[str, Any]]:
        keys = [snake(c) for c in self.columns]
        return [dict(zip(keys, row)) for row in self.rows]


def snake(name: str) -> str:
    """'log-end-offset', 'LogEndOffset', 'Log end offset' -> 'log_end_offset'."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def cell(value: Any) -> str:
    """How a value reads in a table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def as_json(sections: Sequence[Section]) -> Any:
    if len(sections) == 1 and not sections[0].one:
        return sections[0].records()
    doc = {}
    for s in sections:
        records = s.records()
        doc[s.key or snake(s.title or "rows")] = (records[0] if records else None) if s.one else records
    return doc


def emit_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, default=str))


def show(fmt: Format, *sections: Section, err: bool = False) -> None:
    """Print `sections` as `fmt` asks, on stdout (stderr with `err`, text only)."""
    if fmt == Format.json:
        emit_json(as_json(sections))
        return
    stream = sys.stderr if err else sys.stdout
    if stream.isatty():
        _rich(sections, err)
        return
    for n, s in enumerate(sections):
        if n:
            typer.echo("", err=err)
        if s.title:
            typer.echo(s.title.upper() + (f"  {s.note}" if s.note else ""), err=err)
        if s.fields:
            for name, value in zip(s.columns, s.rows[0] if s.rows else []):
                typer.echo(f"{name + ':':<24}{cell(value)}", err=err)
        else:
            table(s.columns, s.rows, err=err)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, err: bool = False) -> None:
    """Left-aligned columns two spaces apart, upper-case headers (rpk's look)."""
    cells = [[str(h).upper() for h in headers]] + [[cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), err=err)


def _rich(sections: Sequence[Section], err: bool) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(stderr=err, highlight=False)
    for n, s in enumerate(sections):
        if n:
            console.print()
        if s.fields:
            t = Table(box=None, show_header=False, title=s.title and s.title.upper(), title_justify="left",
                      title_style="bold", pad_edge=False)
            t.add_column(style="bold")
            t.add_column()
            for name, value in zip(s.columns, s.rows[0] if s.rows else []):
                t.add_row(name, _text(value))
        else:
            t = Table(box=box.SIMPLE_HEAD,
                      title=s.title and (s.title.upper() + (f"  [dim]{escape(s.note)}[/]" if s.note else "")),
                      title_justify="left", title_style="bold", header_style="bold cyan", pad_edge=False)
            for c in s.columns:
                t.add_column(c, overflow="fold")
            for row in s.rows:
                t.add_row(*(_text(v) for v in row))
        console.print(t)


def _text(value: Any):
    """A cell as rich text: never read as markup; a missing value dimmed."""
    from rich.text import Text

    return Text(cell(value), style="dim" if value is None else "")


class Progress:
    """What `progress` hands back: `advance(n)` moves the bar (a no-op when none is drawn)."""

    def __init__(self, bar=None, task=None):
        self._bar, self._task = bar, task

    def advance(self, n: float = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def update(self, **fields) -> None:
        if self._bar is not None:
            self._bar.update(self._task, **fields)


@contextmanager
def progress(description: str, total: float | None = None, *, unit: str = "", output_on_stdout: bool = False,
             when: bool = True) -> Iterator[Progress]:
    """A transient progress bar on stderr for a long operation (`total` None: a count without an
    end; `unit` "bytes" shows sizes and a rate). Nothing is drawn unless `when` and stderr is a
    terminal, nor when `output_on_stdout` and stdout is that terminal too (what is printed there
    shows how far it got)."""
    if not (when and sys.stderr.isatty() and not (output_on_stdout and sys.stdout.isatty())):
        yield Progress()
        return
    from rich import progress as rp
    from rich.console import Console

    columns = [rp.SpinnerColumn(), rp.TextColumn("{task.description}")]
    if total is not None:
        columns.append(rp.BarColumn())
    if unit == "bytes":
        columns += [rp.DownloadColumn(), rp.TransferSpeedColumn()]
    elif total is not None:
        columns.append(rp.MofNCompleteColumn())
    else:
        columns.append(rp.TextColumn("{task.completed:,.0f}" + (f" {unit}" if unit else "")))
    columns.append(rp.TimeElapsedColumn())
    with rp.Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield Progress(bar, bar.add_task(description, total=total))
