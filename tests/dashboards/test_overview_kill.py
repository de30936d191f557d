"""Issue 21, "Blind, but green": kill the exporter under a real Prometheus and no status tile of the
Overview reads OK two scrape intervals later.

The real stack on loopback: the exporter (``python -m pipeline_exporter``, integrity check every
second) on a small demo database, and the ``prometheus`` binary scraping it and evaluating the
shipped rule files every second (tests/support/stack.py). First every status tile reads OK; then the
database file is corrupted, so DatabaseIntegrityCheckFailed (critical, ``for: 0m``) fires: System
reads CRITICAL, "Firing alerts" counts it, and the other tiles still read OK. Then the exporter
gets SIGKILL at T. Once Prometheus has recorded at least two failed scrapes after T, each status
panel of the rendered Overview (grafana/dashboards/pipeline-overview.json: the stats of the Status
row, "Firing alerts", and any stat that maps a value to OK) runs as an instant query *at*
T + 2 scrape intervals, with its template variables filled as Grafana fills them (the dashboard's
default "All", and the one instance picked), and its result goes through the panel's own value
mappings, thresholds and ``noValue``: none shows OK or a green colour. Empty (UNKNOWN) passes,
and so does CRITICAL from an alert that is still firing.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pipeline_exporter.packs.method333.demo import build_demo
from tests.dashboards.conftest import BUILTINS, DASHBOARDS
from tests.support import stack
from tests.support.procs import require_binary, wait_for

pytestmark = pytest.mark.e2e

SITES = 300
SCRAPE = 1.0  # seconds: the scrape and rule evaluation interval of the test's Prometheus
JOB = "pipeline-exporter"
ALERT = "DatabaseIntegrityCheckFailed"
STATUS_ROW = "Status"
OK_COLOURS = {"green", "semi-dark-green", "dark-green", "light-green", "super-light-green"}
# Grafana's special regex characters, escaped in a variable's value (prometheusSpecialRegexEscape:
# two backslashes in the PromQL string, one in the regex).
REGEX_SPECIAL = re.compile(r"[$^*{}\[\]+?.()|]")
# A recording rule's name (level:metric:operations) in a query.
RECORDED = re.compile(r"\b[a-z_]+:[a-z_0-9]+:[a-z_0-9]+\b")


# ---------------------------------------------------------------- the dashboard as Grafana reads it

def overview() -> dict[str, Any]:
    return json.loads((DASHBOARDS / "pipeline-overview.json").read_text(encoding="utf-8"))


def maps_ok(panel: dict[str, Any]) -> bool:
    return any(option["text"].upper() == "OK" for mapping in panel["fieldConfig"]["defaults"]["mappings"]
               if mapping["type"] == "value" for option in mapping["options"].values())


def status_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The stats of the Status row, "Firing alerts", and every other stat with a value mapped to OK."""
    found, row = [], None
    for item in board["panels"]:
        if item["type"] == "row":
            row = item["title"]
            items = item.get("panels", [])  # a collapsed row keeps its panels inside
        else:
            items = [item]
        for panel in items:
            if panel["type"] == "stat" and (row == STATUS_ROW or panel["title"] == "Firing alerts"
                                            or maps_ok(panel)):
                found.append(panel)
    return found


def stats(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for item in board["panels"] for panel in [item, *item.get("panels", [])]
            if panel["type"] == "stat"]


def grafana_regex_value(values: list[str], variable: dict[str, Any]) -> str:
    """A multi-value variable's selection as Grafana's Prometheus data source writes it into a query."""
    if values == ["$__all"]:
        return variable["allValue"]
    escaped = [REGEX_SPECIAL.sub(lambda m: "\\\\" + m[0], value) for value in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(expr: str, selection: dict[str, str]) -> str:
    """The PromQL Grafana sends: the dashboard's variables as selected, then its built-in ones."""
    for name, value in selection.items():
        expr = re.sub(rf"\$\{{{name}(?::\w+)?\}}|\${name}\b", lambda _m, v=value: v, expr)
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable left in {expr}"
    return expr


def display(panel: dict[str, Any], value: float | None) -> tuple[str, str]:
    """What a stat shows for one value (None: the query returned nothing): (text, colour).

    Grafana's order: a value mapping (a special null/NaN one for no value), else the text of the
    number (``noValue`` when there is none) in the colour of the highest threshold step reached."""
    defaults = panel["fieldConfig"]["defaults"]
    missing = value is None or math.isnan(value)
    for mapping in defaults.get("mappings", []):
        options = mapping["options"]
        if mapping["type"] == "special" and missing and options["match"] in ("null", "nan", "null+nan"):
            return options["result"].get("text", ""), options["result"].get("color", "")
        if mapping["type"] == "value" and not missing:
            for key, result in options.items():
                if float(key) == value:
                    return result.get("text", ""), result.get("color", "")
    steps = defaults["thresholds"]["steps"]
    if missing:
        # No mapping for no value: Grafana writes noValue; count the base colour against the panel.
        return defaults.get("noValue", "No data"), steps[0]["color"]
    colour = steps[0]["color"]
    for step in steps[1:]:
        if value >= step["value"]:
            colour = step["color"]
    return f"{value:g}", colour


def shown(prom: stack.Service, panel: dict[str, Any], selection: dict[str, str],
          at: float | None = None) -> list[tuple[str, str]]:
    """Every value the stat shows (one per series; a single "no value" when there is none)."""
    values: list[float | None] = []
    for target in panel["targets"]:
        params = {"query": interpolate(target["expr"], selection)}
        if at is not None:
            params["time"] = f"{at:.3f}"
        body = prom.get("/api/v1/query", **params).json()
        assert body["status"] == "success", (panel["title"], params, body)
        values += [float(sample["value"][1]) for sample in body["data"]["result"]]
    return [display(panel, value) for value in values or [None]]


def is_ok(text: str, colour: str) -> bool:
    return text.strip().upper() == "OK" or colour in OK_COLOURS


# ---------------------------------------------------------------- the stack

def corrupt(db: Path) -> None:
    """Overwrite the SQLite header in place: the next integrity check fails ("not a database")."""
    with open(db, "r+b") as f:
        f.write(b"corrupted by test_overview_kill!!" * 3 + b"\xff")  # the first 100 bytes
        f.flush()


def failed_scrapes_after(prom: stack.Service, moment: float) -> list[float]:
    """The times of the exporter's scrapes Prometheus has recorded after ``moment`` (all failed)."""
    body = prom.get("/api/v1/query", query=f'up{{job="{JOB}"}}[30s]').json()
    assert body["status"] == "success", body
    after = [(float(ts), float(v)) for series in body["data"]["result"] for ts, v in series["values"]
             if float(ts) > moment]
    assert all(v == 0 for _, v in after), f"a successful scrape after the kill: {after}"
    return [ts for ts, _ in after]


def test_a_killed_exporter_leaves_no_status_tile_ok(tmp_path: Path) -> None:
    require_binary("prometheus")  # before building anything: fails under CI=true, skips locally
    board = overview()
    panels = status_panels(board)
    titles = [panel["title"] for panel in panels]
    assert titles[:6] == ["Deliverability", "Pipeline flow", "Conversations", "System", "Exporter", "Data as of"]
    assert "Firing alerts" in titles
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "instance"]
    assert variable["includeAll"] and variable["multi"]  # the default selection is "All"

    demo = tmp_path / "demo"
    db = demo / "db" / "sites.db"
    build_demo(db, sites=SITES, seed=333, now=datetime.now(timezone.utc).replace(microsecond=0), files_dir=demo)
    config = tmp_path / "exporter.yml"
    config.write_text("checks: {integrity_interval: 1s}\n")

    with stack.exporter(tmp_path, db, coverage=demo / "coverage" / "coverage-summary.json",
                        e2e_report=demo / "test-results" / "e2e-junit.xml", config=config) as exporter, \
            stack.prometheus(tmp_path, exporter.address, interval=f"{SCRAPE:g}s") as prom:
        stack.wait_for_scrapes(prom, 3)
        instance = stack.query(prom, f'up{{job="{JOB}"}}')[0]["metric"]["instance"]
        selections = {"All": {"instance": grafana_regex_value(["$__all"], variable)},
                      instance: {"instance": grafana_regex_value([instance], variable)}}
        by_title = {panel["title"]: panel for panel in panels}

        def tiles(selection: dict[str, str], at: float | None = None) -> dict[str, list[tuple[str, str]]]:
            return {panel["title"]: shown(prom, panel, selection, at) for panel in panels}

        # 1. Healthy: every ALERTS tile reads OK (the rules are loaded and nothing fires on the demo).
        alert_tiles = [title for title in titles if maps_ok(by_title[title])]
        assert set(alert_tiles) >= {"Deliverability", "Pipeline flow", "Conversations", "System", "Exporter"}
        wait_for(lambda: all(tiles(selection)[t] == [("OK", "green")] for selection in selections.values()
                             for t in alert_tiles) or None,
                 timeout=30, what="every status tile OK on the healthy demo")

        # 2. An alert fires: System is CRITICAL, "Firing alerts" counts it, the other tiles stay OK.
        corrupt(db)
        firing = f'ALERTS{{alertname="{ALERT}", alertstate="firing", job="{JOB}"}}'
        wait_for(lambda: stack.query(prom, firing) or None, timeout=30, what=f"{ALERT} firing")

        def system_critical() -> dict[str, list[tuple[str, str]]] | None:
            got = tiles(selections["All"])
            return got if got["System"] == [("CRITICAL", "red")] else None

        before = wait_for(system_critical, timeout=15, what="System CRITICAL")
        assert before["Firing alerts"][0][1] == "red", before
        still_ok = [t for t in alert_tiles if before[t] == [("OK", "green")]]
        assert set(still_ok) >= {"Deliverability", "Pipeline flow", "Conversations", "Exporter"}, before

        # 3. SIGKILL: no goodbye, no last scrape. T is when the process is certainly gone.
        assert exporter.proc is not None
        os.kill(exporter.proc.pid, signal.SIGKILL)
        exporter.proc.wait(timeout=30)
        killed = time.time()  # Prometheus runs on this machine: its clock is ours
        at = killed + 2 * SCRAPE
        # Two failed scrapes recorded after T, and `at` past for Prometheus too (samples stamped
        # at or before it are written; an evaluation time in the future would read the latest).

        def two_failed_scrapes() -> list[float] | None:
            found = failed_scrapes_after(prom, killed)
            return found if len(found) >= 2 and time.time() > at + SCRAPE else None

        scrapes = wait_for(two_failed_scrapes, timeout=30, what="two failed scrapes after the kill")
        # Prometheus kept its schedule: the failed scrape is in the data the tiles read at `at`.
        assert min(scrapes) <= at, f"no scrape stamped between the kill ({killed}) and {at}: {scrapes}"

        # 4. At T + 2 scrape intervals no status panel shows OK or green, whatever the selection.
        healthy_looking, seen = [], {}
        for name, selection in selections.items():
            after = tiles(selection, at)
            seen[name] = after
            healthy_looking += [f"{name} / {title}: {values}" for title, values in after.items()
                                if any(is_ok(text, colour) for text, colour in values)]
        assert not healthy_looking, "\n".join(healthy_looking) + f"\nall shown: {seen}"
        # Not vacuous: the tiles that read OK before the kill are UNKNOWN now (no data, grey).
        for title in still_ok:
            assert seen["All"][title] == [("UNKNOWN", "grey")], (title, seen["All"][title])
        # Nor does any other stat read a number from the exporter's series ("Outreach sent, last
        # 24h" read 0 in the review): they went stale at the failed scrape. A recording rule's
        # output lasts until its group's next evaluation (the outreach group's is 1 m), so the
        # stats that read one are left out: Prometheus's lag, not the panel's.
        counted = [panel for panel in stats(board) if panel not in panels
                   and not any(RECORDED.search(target["expr"]) for target in panel["targets"])]
        assert len(counted) >= 4
        numbers = {panel["title"]: shown(prom, panel, selections["All"], at) for panel in counted}
        assert all(values == [("UNKNOWN", "grey")] for values in numbers.values()), numbers
