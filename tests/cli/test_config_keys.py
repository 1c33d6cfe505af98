"""`kafka-compat config keys`: every key the broker understands, from the tables it validates
against, and the page in the repository generated from the same command."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kafka_compat.server.config import BROKER_CONFIGS, KNOWN_PREFIXES, KNOWN_UNUSED, load_config
from kafka_compat.storage.config import TOPIC_CONFIGS
from kafka_compat.testing.broker_process import CLI

PAGE = Path(__file__).parents[2] / "docs" / "configuration.md"


def keys(*args: str) -> str:
    p = subprocess.run([CLI, "config", "keys", *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and not p.stderr, p.stderr
    return p.stdout


def rows(out: str, section: str) -> dict[str, str]:
    """key -> its whole line, in one section of the console listing."""
    block = out.split(section, 1)[1].split("\n\n", 1)[0]
    return {line.split()[0]: line for line in block.splitlines()[2:] if line.strip()}


def test_every_key_the_broker_validates_is_listed_with_its_default_and_meaning():
    out = keys()
    broker, topic, ignored = rows(out, "BROKER"), rows(out, "TOPIC"), rows(out, "ACCEPTED BUT IGNORED")
    assert set(broker) == {k for k, v in BROKER_CONFIGS.items() if v.used}
    assert set(topic) == {k for k, v in TOPIC_CONFIGS.items() if v.used}
    assert set(ignored) == ({k for k, v in BROKER_CONFIGS.items() if not v.used} | KNOWN_UNUSED
                            | {k for k, v in TOPIC_CONFIGS.items() if not v.used} | {p + "*" for p in KNOWN_PREFIXES})
    assert broker["num.partitions"].split()[1:3] == ["INT", "1"] and "Partitions" in broker["num.partitions"]
    assert topic["retention.ms"].split()[1:4] == ["LONG", "604800000", "log.retention.ms"]
    assert "compact" in topic["cleanup.policy"]


def test_every_key_has_a_meaning():
    assert all(k.doc.strip() for k in [*BROKER_CONFIGS.values(), *TOPIC_CONFIGS.values()])


def test_keys_listed_as_ignored_are_reported_when_set():
    ignored = [k for k, v in BROKER_CONFIGS.items() if not v.used]
    config = load_config(env={}, overrides=[f"{k}={'1' if BROKER_CONFIGS[k].type != 'BOOLEAN' else 'true'}"
                                            for k in ignored])
    assert config.unused == sorted(ignored)


def test_the_configuration_page_is_current():
    assert PAGE.read_text() == keys("--markdown"), "regenerate it: make docs"


def test_each_key_is_in_one_table_only():
    assert not KNOWN_UNUSED & set(BROKER_CONFIGS)
    assert not [k for k in KNOWN_UNUSED | set(BROKER_CONFIGS) if k.startswith(KNOWN_PREFIXES)]
