"""The README's walk-through, run top to bottom as a new user runs it: every `sh`, `python` and `js`
block in order, against a fresh broker started as `make run` starts it (its data under ./data of
the working directory), with the bootstrap address 127.0.0.1:9092 changed to the free port the
test uses; a `python` block that defines tests runs under pytest, with the plugin's fixtures. A
block that fails fails the README.

Commands that serve until stopped are started in the background and stopped at the end
(`SERVERS`); a few cannot run here and are named with the reason (`NOT_RUN`). Java fragments are
not programs and are left to the Java scenarios; everything else runs as written.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.support import NODE_DIR
from kafka_compat.testing.broker_process import CLI, free_port, free_port_range
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO = Path(__file__).parents[1]
README = REPO / "README.md"
BOOTSTRAP = "127.0.0.1:9092"
CLUSTER_PORT = "9192"  # the README's `cluster up --port`: its nodes take the 6 ports from there
MAKE_RUN = "kafka-compat start --config config/server.properties"
NOT_RUN = {
    "make test": "this is part of make test",
    "pip install kafka-compat": "tests/testing/test_example_project.py installs a wheel built from this tree",
    "docker-compose up": "no docker where the tests run",
}
# KafkaJS's consumer runs until stopped: the block ends once it printed its first message.
JS_WRAPPER = """
const print = console.log
console.log = (...args) => { print(...args); process.exit(0) }
setTimeout(() => { console.error('no message within 30 s'); process.exit(1) }, 30000)
;(async () => {
%s
})().catch(e => { console.error(e); process.exit(1) })
"""


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of the fenced blocks, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.M | re.S)]


class Walkthrough:
    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.port = free_port()
        self.cluster_port = free_port_range(6)
        self.env = {**os.environ, "PATH": f"{Path(CLI).parent}:{os.environ['PATH']}",
                    "KAFKA_COMPAT_BROKERS": f"127.0.0.1:{self.port}",  # the CLI's default address, moved
                    "NODE_PATH": str(NODE_DIR / "node_modules")}
        self.servers: list[subprocess.Popen] = []

    def substitute(self, code: str) -> str:
        return code.replace(BOOTSTRAP, f"127.0.0.1:{self.port}").replace(CLUSTER_PORT, str(self.cluster_port))

    def run(self, lang: str, code: str) -> None:
        code = self.substitute(code)
        if lang == "sh":
            for line in code.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    self.shell(line)
        elif lang == "python" and re.search(r"^def test_", code, re.M):
            tests = self.cwd / "test_readme_block.py"
            tests.write_text(code)
            self.check([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], code)
        elif lang == "python":
            self.check([sys.executable, "-c", code], code)
        elif lang == "js":
            self.check(["node", "-e", JS_WRAPPER % code], code)

    def shell(self, line: str) -> None:
        command = line.split("#")[0].strip()
        if any(command.startswith(c) for c in NOT_RUN):
            return
        if command.startswith("make run"):
            # What `make run` runs (checked below), here with ./data in the test's directory and its
            # ports (the metrics endpoint on any free one).
            self.serve([CLI, *MAKE_RUN.split()[1:], "-o", f"listeners=PLAINTEXT://{BOOTSTRAP}",
                        "-o", f"advertised.listeners=PLAINTEXT://{BOOTSTRAP}", "-o", "metrics.port=0"], "ready: ")
        elif command.startswith("kafka-compat cluster up"):
            self.serve(["bash", "-c", command], "Bootstrap servers")
        else:
            self.check(["bash", "-c", command], line)

    def serve(self, argv: list[str], ready: str) -> None:
        argv = [self.substitute(a).replace("config/", f"{REPO}/config/") for a in argv]
        log = self.cwd / f"server-{len(self.servers)}.log"
        with open(log, "wb") as out:
            self.servers.append(subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                                 start_new_session=True))
        proc = self.servers[-1]
        wait_until(lambda: ready in log.read_text() or proc.poll() is not None, f"{argv}", timeout=120)
        assert proc.poll() is None, f"{' '.join(argv)} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"

    def check(self, argv: list[str], shown: str) -> None:
        r = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=90,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, \
            f"README: {shown!r} exited with {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"

    def stop(self) -> None:
        for proc in reversed(self.servers):  # SIGTERM as Ctrl-C would stop them
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.servers:
            try:
                assert proc.wait(60) == 0
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)


def test_the_readme_walkthrough_runs_top_to_bottom_on_a_fresh_broker(tmp_path):
    assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), "KafkaJS is not installed: run `make test-deps`"
    assert f"$(BIN)/{MAKE_RUN}\n" in (REPO / "Makefile").read_text(), "make run no longer runs what this test runs"
    walk = Walkthrough(tmp_path)
    try:
        ran = 0
        for lang, code in blocks(README.read_text()):
            if lang in ("sh", "python", "js"):
                walk.run(lang, code)
                ran += 1
        assert ran >= 5
    finally:
        walk.stop()
