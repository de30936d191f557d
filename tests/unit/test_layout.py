"""The README's module map is the tree: every module is listed, and imports follow the table."""

from __future__ import annotations

import ast
import re

from tests.support.paths import REPO

PACKAGE = REPO / "pipeline_exporter"
ANYONE_MAY_IMPORT = {"errors", "model", "config"}


def module_map() -> dict[str, set[str]]:
    """README rows: module (a folder ends in /) -> the modules it may import."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Module map"):]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = [name.rstrip("/") for name in re.findall(r"`([\w/]+)`", cells[0])]
        allowed = {a.rstrip("/") for a in re.findall(r"`([\w/]+)`", cells[2])} | set(names)  # a row's own
        for name in names:
            rows[name] = allowed
    return rows


def top_level_units() -> set[str]:
    """The package's modules and subpackages, as the map names them."""
    units = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return units | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists() and p.name != "__pycache__"}


def imports_of(unit: str) -> set[str]:
    """The top-level exporter units a module (or every module of a subpackage) imports."""
    path = PACKAGE / unit
    files = list(path.rglob("*.py")) if path.is_dir() else [PACKAGE / f"{unit}.py"]
    found: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline_exporter."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.ImportFrom) and node.module == "pipeline_exporter":
                found.update(alias.name for alias in node.names)
    return found - {unit, "__version__"}


def test_every_module_is_in_the_readme_module_map_and_nothing_else():
    assert set(module_map()) == top_level_units()


def test_modules_import_only_what_the_map_allows():
    table = module_map()
    wrong = {}
    for unit, allowed in table.items():
        extra = imports_of(unit) - allowed - ANYONE_MAY_IMPORT
        if extra:
            wrong[unit] = sorted(extra)
    assert wrong == {}, f"imports the README's module map does not list: {wrong}"


def import_cycle() -> list[str]:
    """One cycle in the units' import graph (function-level imports count too), or []."""
    graph = {unit: imports_of(unit) & set(module_map()) for unit in module_map()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(unit: str, path: list[str]) -> list[str]:
        state[unit] = 1
        for other in sorted(graph[unit]):
            if state.get(other) == 1:
                return path[path.index(other):] + [unit, other] if other in path else [unit, other]
            if other not in state and (found := visit(other, path + [unit])):
                return found
        state[unit] = 2
        return []

    for unit in sorted(graph):
        if unit not in state and (found := visit(unit, [])):
            return found
    return []


def test_no_two_modules_import_each_other_even_through_others():
    assert import_cycle() == []


def test_the_specs_module_imports_nothing_of_ours_but_the_error_types():
    # config and the pack reader both build on model: if model imported either, they would circle.
    assert imports_of("model") <= {"errors"}
    assert "config" not in imports_of("packloader")


def test_the_cycle_check_finds_a_cycle(monkeypatch):
    real = imports_of

    def with_circle(unit: str) -> set[str]:
        return real(unit) | ({"config"} if unit == "packloader" else set())

    monkeypatch.setitem(globals(), "imports_of", with_circle)
    cycle = import_cycle()
    assert cycle and cycle[0] == cycle[-1] and {"config", "packloader"} <= set(cycle)


# The mixin's Python dashboards and alerts give way to the packs' declarations (issue 20).
TOO_LONG_UNTIL_REPLACED = {"mixin/alerts.py", "mixin/dashboards/common.py"}


def test_no_module_is_over_500_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert set(long) <= TOO_LONG_UNTIL_REPLACED, long
