"""Each further pack's rule files: the committed copies are the generator's output, promtool
accepts them, every alert fires in its promtool test and has a runbook section."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from pipeline_exporter.mixin import packs, render_pack
from tests.alerts.conftest import REPO, github_anchors

PACKS = sorted(name for name in packs() if name != "method333")
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("pack", PACKS)]


def test_committed_files_are_the_generated_ones(pack: str) -> None:
    for name, text in render_pack(packs()[pack]).items():
        assert (REPO / name).read_text(encoding="utf-8") == text, f"{name}: run pipeline-exporter mixin --out ."


def test_promtool_checks_and_unit_tests_the_rules(promtool: str, pack: str) -> None:
    rules = REPO / "alerts" / "packs" / pack
    checked = subprocess.run([promtool, "check", "rules", *map(str, sorted(rules.glob("*.yml")))],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(rules / "tests" / f"{pack}.yml")],
                            capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_fires_in_a_test_and_has_a_runbook(pack: str) -> None:
    rules = REPO / "alerts" / "packs" / pack
    alerts = {r["alert"] for g in yaml.safe_load((rules / f"{pack}-alerts.yml").read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    tests = (rules / "tests" / f"{pack}.yml").read_text(encoding="utf-8")
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:", tests))
    assert alerts == fired
    anchors = github_anchors((REPO / "docs" / "packs" / f"{pack}.md").read_text(encoding="utf-8"))
    assert {a.lower() for a in alerts} <= anchors


def test_every_runbook_link_of_the_pack_dashboards_lands_on_a_section(pack: str) -> None:
    prefix = "https://github.com/333method/pipeline-exporter/blob/main/"
    links = {url for path in (REPO / "grafana" / "packs" / pack).glob("*.json")
             for url in re.findall(r'"url": "([^"]+)"', path.read_text(encoding="utf-8")) if url.startswith(prefix)}
    assert links, f"{pack}: no runbook links in its dashboards"
    for url in links:
        page, _, anchor = url.removeprefix(prefix).partition("#")
        assert anchor in github_anchors((REPO / page).read_text(encoding="utf-8")), url
