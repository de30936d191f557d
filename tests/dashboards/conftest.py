"""Fixtures for the dashboard, provisioning and compose tests: the JSON, the docs, the rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
DASHBOARDS = REPO / "grafana" / "dashboards"
ALERTS = REPO / "alerts"

# Grafana's built-in variables, replaced by something PromQL accepts before parsing.
BUILTINS = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__interval": "1m",
            "${__interval}": "1m", "$__range": "1h", "${__range}": "1h",
            "$__range_s": "3600", "$__range_ms": "3600000"}
# Range selectors a dashboard may use: Grafana's rate interval or a literal duration.
RANGE_OK = re.compile(r"^(\$__rate_interval|\$\{__rate_interval\}|\d+[smhdwy])(:\d+[smhdwy])?$")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def substitute(expr: str) -> str:
    """The PromQL Grafana would send, with every user variable set to "All" (``.*``)."""
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", ".*", expr)


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(DASHBOARDS.glob("*.json"))}


def panels_of(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included (a collapsed row keeps its panels inside)."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries_of(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, variable query and annotation of a dashboard."""
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {target.get('refId')}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["definition"])
            assert match, f"variable {variable['name']}: not label_values(selector, label)"
            yield f"variable {variable['name']}", match["selector"]
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]


def documented_uids() -> list[str]:
    """The dashboards docs/dashboards.md describes, one section each: ``## Title (`uid`)``."""
    text = (DOCS / "dashboards.md").read_text(encoding="utf-8")
    return re.findall(r"^## .*\(`(pipeline-[a-z-]+)`\)", text, flags=re.M)


def served_metrics() -> set[str]:
    """Series names the exporter serves, from the metric tables of docs/metrics.md."""
    names: set[str] = set()
    for line in (DOCS / "metrics.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2:
            continue
        kind = cells[1].split()[0] if cells[1] else ""
        for name in re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0]):
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            elif kind in ("gauge", "counter"):
                names.add(name)
    return names


def recording_rules() -> set[str]:
    """Names recorded by alerts/*.yml; recording-rules.yml must exist (no vacuous pass)."""
    assert (ALERTS / "recording-rules.yml").is_file(), "alerts/recording-rules.yml is missing"
    names: set[str] = set()
    for path in sorted(ALERTS.glob("*.yml")) + sorted(ALERTS.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in document.get("groups", []):
            names.update(rule["record"] for rule in group.get("rules", []) if "record" in rule)
    return names


def alert_names() -> set[str]:
    document = yaml.safe_load((ALERTS / "pipeline-alerts.yml").read_text(encoding="utf-8"))
    return {rule["alert"] for group in document["groups"] for rule in group["rules"]}


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    found = load_dashboards()
    assert found, f"no dashboards in {DASHBOARDS}"
    return found


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


# Pytest ids: one test per dashboard file reads better in failures than one loop.
DASHBOARD_UIDS = [path.stem for path in sorted(DASHBOARDS.glob("*.json"))]


@pytest.fixture(params=DASHBOARD_UIDS)
def dashboard(request: pytest.FixtureRequest, dashboards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dashboards[request.param]
