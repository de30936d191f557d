"""Fixtures for the alerting tests: the rule files, the interface table, the runbooks, the binaries."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_exporter.mixin import DEFAULT
from tests.support.procs import require_binary

REPO = Path(__file__).resolve().parents[2]
ALERTING_DOC = REPO / "docs" / "alerting.md"
ALERTS = REPO / "alerts"
ALERT_RULES = ALERTS / "pipeline-alerts.yml"
RECORDING_RULES = ALERTS / "recording-rules.yml"
RULE_TESTS = ALERTS / "tests"
RUNBOOKS = REPO / "docs" / "runbooks.md"
PROMETHEUS_CONFIG = REPO / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = REPO / "alertmanager" / "alertmanager.yml"
TEMPLATES = REPO / "alertmanager" / "templates"
DATA = Path(__file__).resolve().parent / "data"

SEVERITIES = {"warning", "critical", "none"}
INTERFACE_HEADING = "## The alerts: names and severities are an interface"


def rule_files() -> list[Path]:
    """Every rule file Prometheus loads (the globs in prometheus.yml: alerts/*.yml)."""
    return sorted(ALERTS.glob("*.yml"))


def load_rules(path: Path) -> list[dict[str, Any]]:
    """The rules of one file, in order, each with the name of its group under ``_group``."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [{**rule, "_group": group["name"]} for group in doc["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in load_rules(ALERT_RULES) if "alert" in rule]


def interface_alerts() -> set[tuple[str, str]]:
    """(alert name, severity) pairs of the interface table in docs/alerting.md."""
    text = ALERTING_DOC.read_text(encoding="utf-8")
    section = text.split(INTERFACE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|", section, flags=re.MULTILINE)
    return {(name, severity) for name, severity in rows if severity in SEVERITIES}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub generates for a Markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", markdown, flags=re.MULTILINE):
        text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
        anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


def run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run a tool and capture its output as text (never raises on a non-zero exit)."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def runbook_url(alert: str) -> str:
    """The runbook address the default config gives an alert."""
    return DEFAULT.runbook(alert)


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_binary("amtool")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    """Debian names the binary prometheus-alertmanager; upstream builds call it alertmanager."""
    import shutil
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") \
        or require_binary("prometheus-alertmanager")
