"""Running the CLI against a real broker: in-process through typer's runner (fast), or as the
installed `kafka-compat` executable in a subprocess (what users run)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from kafka_compat.cli.main import app
from kafka_compat.testing.broker_process import CLI


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(broker):
    """cli(*args, input=...) runs the real executable against the session broker."""

    def run(*args: str, input: str | bytes = b"", brokers: str | None = None, timeout: float = 30) -> Result:
        env = {**os.environ, "KAFKA_COMPAT_BROKERS": brokers or broker.bootstrap}
        data = input.encode() if isinstance(input, str) else input
        p = subprocess.run([CLI, *args], input=data, capture_output=True, env=env, timeout=timeout)
        return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    return run


@pytest.fixture
def invoke(broker):
    """invoke(*args, input=...) runs the same commands in-process (no interpreter start-up)."""
    runner = CliRunner()

    def run(*args: str, input: str | bytes | None = None, brokers: str | None = None) -> Result:
        r = runner.invoke(app, list(args), input=input, env={"KAFKA_COMPAT_BROKERS": brokers or broker.bootstrap})
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return Result(r.exit_code, r.stdout, r.stderr)

    return run
