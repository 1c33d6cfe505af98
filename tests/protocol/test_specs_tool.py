"""The import tool and the generator: facts kept, prose dropped, the versions Kafka dropped kept,
output reproducible."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kafka_compat.protocol.codegen import OUT_DIR, generate_all
from kafka_compat.protocol.specs_import import ARTIFACTS, JAR_NAME, SpecImportError, import_specs, strip_comments

ROOT = Path(__file__).resolve().parents[2]
# A Kafka source tree's schema folders, beside the checkout where there is one.
SHARED = Path(os.environ.get("SPECS_SRC", ROOT.parent / "shared" / "kafka-specs"))
needs_kafka_schemas = pytest.mark.skipif(not SHARED.is_dir(),
                                         reason=f"no Kafka schema tree at {SHARED} (set SPECS_SRC)")
# The jars of the release protocol_specs/ follows: the conformance suite's pinned Kafka release, as
# `make test-deps` resolved it (conformance/java/target/classpath.txt).
CLASSPATH = ROOT / "conformance" / "java" / "target" / "classpath.txt"


def release_jars() -> list[Path]:
    assert CLASSPATH.is_file(), "the pinned Kafka release is not resolved: run `make test-deps`"
    jars = [Path(p) for p in CLASSPATH.read_text().strip().split(":")]
    return [j for j in jars if (m := JAR_NAME.match(j.name)) and m["artifact"] in ARTIFACTS]


def jar(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def spec(name: str, valid: str, fields: list[dict], type: str = "request") -> dict:
    return {"apiKey": 99, "type": type, "name": name, "validVersions": valid, "flexibleVersions": "none",
            "fields": fields}


def test_strip_comments_leaves_strings_alone():
    text = '// header\n{ "a": "http://x//y", /* c */ "b": 1 } // tail'
    assert json.loads(strip_comments(text)) == {"a": "http://x//y", "b": 1}


@needs_kafka_schemas
def test_import_keeps_facts_and_drops_prose(tmp_path):
    counts = import_specs(SHARED, tmp_path / "specs")
    assert counts["message"] > 180 and counts["metadata"] > 20 and counts["raft"] == 1
    fetch = json.loads((tmp_path / "specs" / "message" / "FetchRequest.json").read_text())
    assert fetch["apiKey"] == 1 and fetch["validVersions"] and "about" not in json.dumps(fetch)
    assert "latestVersionUnstable" not in fetch or isinstance(fetch["latestVersionUnstable"], bool)


def test_reimport_of_the_release_jars_reproduces_protocol_specs(tmp_path):
    jars = release_jars()
    assert sorted(JAR_NAME.match(j.name)["artifact"] for j in jars) == sorted(ARTIFACTS)
    shutil.copytree(ROOT / "protocol_specs", tmp_path / "specs")
    counts = import_specs(jars, tmp_path / "specs")
    assert None not in counts.values(), "every folder comes from the release's jars"
    ours = sorted(p.relative_to(ROOT / "protocol_specs") for p in (ROOT / "protocol_specs").rglob("*"))
    assert sorted(p.relative_to(tmp_path / "specs") for p in (tmp_path / "specs").rglob("*")) == ours
    for rel in ours:
        if (ROOT / "protocol_specs" / rel).is_file():
            assert (tmp_path / "specs" / rel).read_text() == (ROOT / "protocol_specs" / rel).read_text(), rel


def test_import_from_a_jar_replaces_its_folder_only(tmp_path):
    dest = tmp_path / "specs"
    (dest / "metadata").mkdir(parents=True)
    (dest / "metadata" / "TopicRecord.json").write_text("{}\n")
    source = jar(tmp_path / "kafka-clients-9.9.9.jar", {
        "common/message/FooRequest.json": "// licence\n" + json.dumps(
            spec("FooRequest", "0-1", [{"name": "A", "type": "int32", "versions": "0+", "about": "prose"}])),
        "common/message/nested/Ignored.json": "{}",
        "LICENSE": "the licence"})
    counts = import_specs([source], dest)
    assert counts == {"message": 1, "metadata": None, "raft": None, "group-coordinator-records": None,
                      "transaction-coordinator": None}
    foo = json.loads((dest / "message" / "FooRequest.json").read_text())
    assert foo["fields"] == [{"name": "A", "type": "int32", "versions": "0+"}]
    assert (dest / "metadata" / "TopicRecord.json").read_text() == "{}\n"
    assert (dest / "LICENSE").read_text() == "the licence"
    assert "- message/: kafka-clients-9.9.9.jar" in (dest / "README.md").read_text()


def test_a_jar_without_kafka_schemas_is_refused(tmp_path):
    with pytest.raises(SpecImportError, match="not one of the jars"):
        import_specs([jar(tmp_path / "kafka-streams-9.9.9.jar", {"x": ""})], tmp_path / "specs")
    assert not (tmp_path / "specs").exists()


def test_a_reimport_keeps_the_versions_kafka_dropped(tmp_path):
    """Kafka 4 dropped versions 0-1 of many requests and the fields only they had; the project's
    copy keeps them, each old field where it stood."""
    old = spec("FooRequest", "0-3", [{"name": "A", "type": "int32", "versions": "0+"},
                                     {"name": "Gone", "type": "int64", "versions": "1"},
                                     {"name": "B", "type": "string", "versions": "0+", "nullableVersions": "1+"}])
    new = spec("FooRequest", "2-4", [{"name": "A", "type": "int32", "versions": "0+"},
                                     {"name": "B", "type": "string", "versions": "0+", "nullableVersions": "2+"},
                                     {"name": "C", "type": "int8", "versions": "4+"}])
    dest = tmp_path / "specs"
    (dest / "message").mkdir(parents=True)
    (dest / "message" / "FooRequest.json").write_text(json.dumps(old))
    import_specs([jar(tmp_path / "kafka-clients-9.9.9.jar", {"common/message/FooRequest.json": json.dumps(new)})],
                 dest)
    merged = json.loads((dest / "message" / "FooRequest.json").read_text())
    assert merged["validVersions"] == "0-4"
    assert [(f["name"], f["versions"], f.get("nullableVersions")) for f in merged["fields"]] == [
        ("A", "0+", None), ("Gone", "1", None), ("B", "0+", "1+"), ("C", "4+", None)]


def test_a_reimport_refuses_a_merge_that_changes_a_kept_version(tmp_path):
    old = spec("FooRequest", "0-3", [{"name": "A", "type": "int32", "versions": "0+"}])
    renamed = spec("FooRequest", "2-4", [{"name": "B", "type": "int32", "versions": "0+"}])
    dest = tmp_path / "specs"
    (dest / "message").mkdir(parents=True)
    (dest / "message" / "FooRequest.json").write_text(json.dumps(old))
    with pytest.raises(SpecImportError, match="FooRequest v0: keeping the versions Kafka dropped changes"):
        import_specs([jar(tmp_path / "kafka-clients-9.9.9.jar",
                          {"common/message/FooRequest.json": json.dumps(renamed)})], dest)
    assert json.loads((dest / "message" / "FooRequest.json").read_text()) == old


def test_generated_code_is_up_to_date():
    assert generate_all(ROOT / "protocol_specs", OUT_DIR, check=True) == []


def test_specs_cli_check_passes():
    cli = Path(sys.executable).parent / "kafka-compat"
    out = subprocess.run([str(cli), "specs", "generate", "--check"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "up to date" in out.stdout


def test_generated_modules_say_they_are_generated():
    for path in OUT_DIR.glob("*.py"):
        assert path.read_text().startswith("# Generated by kafka_compat.protocol.codegen"), path
