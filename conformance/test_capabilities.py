"""The client x capability table (conformance/capabilities.py) is the one README.md carries, and it
is honest: every scenario a cell names exists, and every client scenario file is in some cell."""

import re
from pathlib import Path

from conformance.capabilities import PREFIXES, ROWS, markdown

HERE = Path(__file__).parent
README = HERE.parent / "README.md"


def test_readme_carries_the_table():
    assert markdown() in README.read_text(), "README.md's client x capability table differs: paste markdown()"


def test_every_scenario_a_cell_names_exists():
    for capability, cells in ROWS:
        for client, cell in cells.items():
            for scenario in cell.scenarios:
                file, _, prefix = scenario.partition("::")
                assert (HERE / file).is_file(), f"{capability} / {client}: no {file}"
                assert re.search(rf"^(async )?def test_{prefix}", (HERE / file).read_text(), re.M), \
                    f"{capability} / {client}: no test_{prefix}* in {file}"


def test_every_client_scenario_file_is_in_the_table():
    named = {s.partition("::")[0] for _, cells in ROWS for cell in cells.values() for s in cell.scenarios}
    files = {p.name for prefix in PREFIXES.values() for p in HERE.glob(f"test_{prefix}_*.py")}
    assert sorted(files - named) == []
