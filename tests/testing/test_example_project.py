"""kafka-compat as a user installs it: a wheel built from this tree, installed with pip into a
virtualenv of its own next to the example application (`examples/orders`), whose tests then run
there against clusters from the pytest fixtures; and the wheel's `kafka-compat` command.

The virtualenv is kept in pytest's cache (`.pytest_cache/d/example-venv/<key>`), keyed by the
wheel's dependencies, the example's pyproject.toml and the Python version: while those stay the
same, the next run only reinstalls the freshly built wheel; a change builds a new one from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "examples" / "orders"
NO_BYTECODE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "*.egg-info", "build")


def run(argv: list, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> str:
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, argv))} exited with {r.returncode}:\n{r.stdout[-4000:]}" \
                              f"\n{r.stderr[-4000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The kafka-compat wheel, built (with pip, in an isolated build environment) from a copy of
    the package's sources, so that nothing is written into this tree."""
    src = tmp_path_factory.mktemp("kafka-compat-src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "kafka_compat", src / "kafka_compat", ignore=NO_BYTECODE)
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, src])
    (built,) = dist.glob("kafka_compat-*.whl")
    return built


def requirements_of(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        (metadata,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return [line for line in z.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]


@pytest.fixture(scope="module")
def venv(request, tmp_path_factory, wheel) -> Path:
    key = hashlib.sha256("\n".join([*requirements_of(wheel), (EXAMPLE / "pyproject.toml").read_text(),
                                    sys.version]).encode()).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)
    base = cache.mkdir("example-venv") if cache is not None else tmp_path_factory.mktemp("example-venv")
    path = base / key
    pip = [path / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "--quiet"]
    if (path / ".complete").exists():
        run([*pip, "install", "--force-reinstall", "--no-deps", wheel])
        return path
    for old in base.iterdir():  # venvs of earlier keys
        shutil.rmtree(old, ignore_errors=True)
    run([sys.executable, "-m", "venv", path])
    # As the example's README says, with kafka-compat from the wheel rather than from an index; from
    # a copy, since building the example writes into its directory.
    app = tmp_path_factory.mktemp("orders-build") / "orders"
    shutil.copytree(EXAMPLE, app, ignore=NO_BYTECODE)
    run([*pip, "install", wheel, f"{app}[test]"])
    (path / ".complete").touch()
    return path


def clean_env(venv: Path) -> dict[str, str]:
    """No trace of this repository's environment: the venv's bin first on PATH, no PYTHONPATH."""
    keep = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR", "USER")}
    return {**keep, "PATH": f"{venv / 'bin'}:/usr/bin:/bin", "VIRTUAL_ENV": str(venv)}


def test_the_example_applications_tests_pass_in_their_own_virtualenv(venv, tmp_path):
    app = tmp_path / "orders"
    shutil.copytree(EXAMPLE, app, ignore=NO_BYTECODE)
    where = run([venv / "bin" / "python", "-c", "import kafka_compat; print(kafka_compat.__file__)"], cwd=app,
                env=clean_env(venv))
    assert where.startswith(str(venv)), where
    out = run([venv / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=app,
              env=clean_env(venv), timeout=300)
    assert "3 passed" in out, out


def test_the_wheel_gives_the_kafka_compat_command(venv, tmp_path):
    cli = venv / "bin" / "kafka-compat"
    assert "topic" in run([cli, "--help"], cwd=tmp_path, env=clean_env(venv))
    keys = json.loads(run([cli, "config", "keys", "--output", "json"], cwd=tmp_path, env=clean_env(venv)))
    assert {"num.partitions", "log.dirs"} <= {k["key"] for k in keys["broker"]}
