"""The modules of kafka_compat import each other without a cycle.

The graph is read from the source with `ast`: every `import` and `from ... import` counts, those
inside functions too (a lazy import conceals a cycle, it does not remove it); only the imports
under `if TYPE_CHECKING:` do not, since they never run. An edge goes to the module imported
(`from a.b import c` to `a.b.c` if that is a module, else to `a.b`), not to the packages above it.
Imports by name at run time (`importlib.import_module`) would hide edges from the graph: the
generated message registry alone uses one, for the generated modules, which import only
`protocol.primitives`.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import kafka_compat

ROOT = Path(kafka_compat.__file__).parent


@functools.cache
def modules() -> dict[str, tuple[Path, ast.Module]]:
    """Module name -> (its file, its syntax tree), parsed once for every test here. Of a generated
    message module only the part before its classes is read: its imports are all at the top, and
    the codecs below them are most of the package's source."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ("kafka_compat",) + path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        text = path.read_text()
        if path.parent == ROOT / "protocol" / "messages" and path.name != "__init__.py":
            text = text[:text.index("\nclass ")]
        found[name] = (path, ast.parse(text, str(path)))
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, tree: ast.Module, known) -> set[str]:
    """The modules among `known` that module `name` (in `path`, parsed as `tree`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list) -> None:
        for st in statements:
            if isinstance(st, ast.Import):
                found.update(alias.name for alias in st.names)
            elif isinstance(st, ast.ImportFrom):
                base = st.module or ""
                if st.level:
                    up = package.split(".")[:len(package.split(".")) - (st.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                for alias in st.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
            elif isinstance(st, ast.If) and _type_checking(st):
                visit(st.orelse)
            else:  # the statements inside compound ones: functions, classes, if, try, with, match...
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    visit(getattr(st, field, None) or [])

    visit(tree.body)
    return {m for m in found if m in known and m != name}


@functools.cache
def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, tree, found) for name, (path, tree) in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            connect(v)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_module_imports_by_name_at_run_time_but_the_message_registry():
    registry = ROOT / "protocol" / "messages" / "__init__.py"
    dynamic = []
    for name, (path, tree) in modules().items():
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and ((isinstance(n.func, ast.Attribute) and n.func.attr == "import_module")
                      or (isinstance(n.func, ast.Name) and n.func.id in ("import_module", "__import__")))]
        if calls and path != registry:
            dynamic.append(name)
    assert dynamic == []
    assert all(deps <= {"kafka_compat.protocol.primitives"} for name, deps in import_graph().items()
               if name.startswith("kafka_compat.protocol.messages."))


def test_a_lazy_import_counts_and_a_type_checking_one_does_not(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    from pkg import b\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    (tmp_path / "c.py").write_text("from pkg.a import f\n")
    files = {f"pkg.{n}": tmp_path / f"{n}.py" for n in "abc"}
    graph = {name: imports_of(name, path, ast.parse(path.read_text()), files) for name, path in files.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": set(), "pkg.c": {"pkg.a"}}
    assert cycles(graph) == []
    assert cycles({**graph, "pkg.b": {"pkg.c"}}) == [["pkg.a", "pkg.b", "pkg.c"]]
