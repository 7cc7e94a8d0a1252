"""The package layout docs/architecture.md describes, checked against the source tree.

Each unit (a top-level module or a feature package) may import only the units its entry in docs/architecture.md lists after
"Imports:", and only `session/autogen_adapter.py` imports AutoGen. A new arrow is a design decision: docs/architecture.md
says it first, and this test reads the rules from there. Imports point one way between modules too: the import
graph of the source, imports inside functions included, has no cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "interview_sim"

UNIT_LINE = re.compile(r"^  (?P<unit>[a-z_0-9]+)(?:\.py|/)\s", re.M)


def _architecture() -> str:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    return page.split("# Architecture", 1)[1].split("\n## ", 1)[0]


def _allowed_by_readme() -> dict[str, set[str] | None]:
    """Per unit, the units its docs/architecture.md entry says it imports ("Imports: a, b; c inside f."); None for "anything"."""
    section = _architecture()
    starts = list(UNIT_LINE.finditer(section))
    units = {m["unit"] for m in starts}
    allowed: dict[str, set[str] | None] = {}
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        entry = " ".join(section[m.end() : nxt.start() if nxt else len(section)].split())
        if "Imports anything" in entry:
            allowed[m["unit"]] = None
            continue
        clause = re.search(r"Imports: (.*?)\.(?:\s|$)", entry)
        words = set(re.findall(r"[a-z_0-9]+", clause.group(1))) if clause else set()
        allowed[m["unit"]] = words & units
    return allowed


FEATURE_PACKAGES = ("session", "grading", "compare", "autogen02", "report", "exports")
AUTOGEN_ADAPTER = PACKAGE / "session" / "autogen_adapter.py"


def _unit(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "interview_sim":
                names += [f"interview_sim.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith("interview_sim."):
                found.add(name.split(".")[1])
            elif name.split(".")[0] in ("autogen_agentchat", "autogen_core", "autogen_ext", "autogen"):
                found.add("AutoGen")
    return found


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    unit = _unit(path)
    if unit in ("__init__", "__main__"):
        unit = "cli"  # the public API and the entry point sit on top, like the CLI
    allowed = _allowed_by_readme()
    assert unit in allowed, f"{path}: a new unit {unit!r}: describe it in docs/architecture.md"
    may = allowed[unit]
    imports = _imports(path) - {unit}
    if path != AUTOGEN_ADAPTER:
        assert "AutoGen" not in imports, f"{path}: only session/autogen_adapter.py imports AutoGen"
    if may is not None:
        extra = imports - may - {"AutoGen"}
        assert not extra, f"{path} imports {sorted(extra)}, which docs/architecture.md does not allow {unit}"


def test_no_private_module_at_the_top_level_and_feature_packages_exist() -> None:
    assert sorted(p.name for p in PACKAGE.glob("_*.py")) == ["__init__.py", "__main__.py"]
    for name in FEATURE_PACKAGES:
        init = PACKAGE / name / "__init__.py"
        assert init.is_file(), f"{name}/ is not a package"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "May import" in doc, f"{name}/__init__.py must say what the feature is and what it may import"


def test_no_source_file_over_600_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in _sources() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long


def test_no_function_over_80_lines_in_the_engine_and_feature_packages() -> None:
    long: dict[str, int] = {}
    for path in _sources():
        if _unit(path) not in FEATURE_PACKAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None
            if is_function and (length := (node.end_lineno or 0) - node.lineno + 1) > 80:
                long[f"{path.relative_to(PACKAGE)}:{node.name}"] = length
    assert not long


def test_readme_architecture_names_every_unit() -> None:
    units = {_unit(p) for p in _sources()} - {"__init__", "__main__"}
    listed = set(_allowed_by_readme())
    assert listed == units, f"docs/architecture.md lists {sorted(listed)}, the tree has {sorted(units)}"


def test_the_readme_parser_reads_the_rules() -> None:
    allowed = _allowed_by_readme()
    assert allowed["errors"] == set()
    assert allowed["record"] == {"errors", "files", "usage"}
    assert allowed["files"] == {"errors"}
    assert allowed["cli"] is None
    assert allowed["session"] == {"catalog", "config", "errors", "models", "record", "version"}
    assert allowed["catalog"] == {"errors", "files", "record", "text"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module → the modules of this package it imports, anywhere in its source (inside functions and under
    TYPE_CHECKING too). `from pkg import name` points at `pkg.name` when that is a module, else at `pkg`."""
    paths = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, one level up per extra dot
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names)
        resolved = set()
        for target in targets:
            while target and target not in paths:
                target = target.rpartition(".")[0]  # `import pkg.mod.attr` style: the longest module prefix
            if target and target != name:
                resolved.add(target)
        graph[name] = resolved
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while (w := stack.pop()) != v:
                component.add(w)
            component.add(v)
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for component in components:
        start = min(component)
        paths = {start: [start]}
        queue = [start]
        while queue:  # breadth first inside the component: the shortest way back to the start
            v = queue.pop(0)
            for w in sorted(graph[v] & component):
                if w == start:
                    cycles.append([*paths[v], start])
                    queue = []
                    break
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    queue.append(w)
    return sorted(cycles)


def test_no_import_cycles() -> None:
    cycles = [" -> ".join(cycle) for cycle in _cycles(_import_graph())]
    assert not cycles, "import cycles (imports inside functions count):\n" + "\n".join(cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert "interview_sim.session.run" in _import_graph()["interview_sim.session"]
