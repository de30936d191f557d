"""Every dashboard query returns data from a real Prometheus.

One module-scoped stack serves every dashboard: a 3,000-site demo database written relative to
the current time, the exporter (``python -m pipeline_exporter``) on it with the demo coverage and JUnit
files, and the Debian ``prometheus`` binary scraping it every second with the shipped rule
files. Once the exporter has been scraped a few times and every recording rule has produced a
sample, each panel target runs as an instant query (and, for time-series panels, as a range
query over the last minute) with the Grafana variables set as the static tests set them
(``$instance`` and the other user variables to ``.*``, ``$__rate_interval`` to 1m). A NaN
sample is data (Grafana draws it); an empty result is a failure. Each dashboard is one test
whose message lists every empty panel/expression, so one run shows everything that is broken.

The dashboards' variable queries (``label_values(selector, label)``) run against the label
values API, as Grafana's Prometheus data source does, and must list at least one value.

Annotations (firing ``ALERTS``) are not checked: no alert is expected to fire on the demo data.

The exporter runs with an LLM budget so that the budget panels have one to show. The per-day and
per-hour bars are checked against SQL in test_per_period_live.py, on a backfilled history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pipeline_exporter.packs.method333.demo import build_demo
from tests.dashboards.conftest import (
    DASHBOARD_UIDS,
    LABEL_VALUES,
    load_dashboards,
    panels_of,
    recording_rules,
    substitute,
)
from tests.support import stack
from tests.support.procs import require_binary, wait_for

pytestmark = pytest.mark.e2e

SITES = 3000
SCRAPES = 3
# The outreach recording group has `interval: 1m`: its first evaluation comes at a slot up to a
# minute after Prometheus starts, and its increase()-based rules need two scrapes in the window
# by then. If the first slot comes before the second scrape, the next one is a minute later.
RULES_DEADLINE = 75.0
RANGE_SECONDS = 60
RANGE_STEP = "5s"
DAY = 86400
# The demo is written as of SHIFT seconds ago.
SHIFT = 3600


@dataclass
class Live:
    """The running stack and what the start-up wait saw."""

    prom: stack.Service
    exporter: stack.Service
    db: Path
    missing_rules: list[str] = field(default_factory=list)
    rule_health: str = ""


def rule_health(prom: stack.Service) -> str:
    """Every recording group's last evaluation and each unhealthy rule, for failure messages."""
    body = prom.get("/api/v1/rules", type="record").json()
    lines = []
    for group in body.get("data", {}).get("groups", []):
        lines.append(f"group {group['name']} (interval {group['interval']}s): "
                     f"last evaluation {group.get('lastEvaluation')}")
        for rule in group["rules"]:
            if rule.get("health") != "ok":
                lines.append(f"  {rule['name']}: {rule.get('health')} {rule.get('lastError', '')}")
    return "\n".join(lines)


def instant(prom: stack.Service, expr: str) -> dict[str, Any]:
    body = prom.get("/api/v1/query", query=expr).json()
    if body.get("status") != "success":
        raise AssertionError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def ranged(prom: stack.Service, expr: str) -> dict[str, Any]:
    end = time.time()
    body = prom.get("/api/v1/query_range", query=expr, start=str(end - RANGE_SECONDS),
                    end=str(end), step=RANGE_STEP).json()
    if body.get("status") != "success":
        raise AssertionError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def has_data(data: dict[str, Any]) -> bool:
    """A scalar, or a vector/matrix with at least one sample (NaN included)."""
    if data["resultType"] in ("scalar", "string"):
        return True
    if data["resultType"] == "matrix":
        return any(series.get("values") or series.get("histograms") for series in data["result"])
    return bool(data["result"])


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    require_binary("prometheus")
    root = tmp_path_factory.mktemp("dashboards-live")
    db = root / "db" / "sites.db"
    started = time.time()
    build_demo(db, sites=SITES, seed=333, files_dir=root,
               now=datetime.fromtimestamp(started - SHIFT, timezone.utc).replace(microsecond=0))
    config = root / "exporter.yml"
    config.write_text("llm_monthly_budget_usd: 500\n")
    with ExitStack() as stack_:
        exporter = stack_.enter_context(stack.exporter(
            root, db, coverage=root / "coverage" / "coverage-summary.json",
            e2e_report=root / "test-results" / "e2e-junit.xml", config=config))
        prom = stack_.enter_context(stack.prometheus(root, exporter.address, interval="1s"))
        stack.wait_for_scrapes(prom, SCRAPES, timeout=30)
        live = Live(prom, exporter, db)
        names = sorted(recording_rules())

        def missing() -> list[str]:
            return [name for name in names if not stack.query(prom, f"count({name})")]

        try:
            wait_for(lambda: not missing(), timeout=RULES_DEADLINE, interval=0.5,
                     what="a sample of every recording rule")
        except AssertionError:
            live.missing_rules = missing()
            live.rule_health = rule_health(prom)
        yield live


def targets_of(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in panels_of(board):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel, target


DASHBOARDS = load_dashboards()


def test_every_recording_rule_has_a_sample(live):
    assert live.missing_rules == [], (
        f"recording rules without a sample after {RULES_DEADLINE:.0f}s: {live.missing_rules}\n"
        f"{live.rule_health}")


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_every_panel_query_returns_data(live, uid):
    board = DASHBOARDS[uid]
    failures, checked = [], 0
    for panel, target in targets_of(board):
        expr = substitute(target["expr"])
        where = f"{uid} / {panel['title']!r} / {target.get('refId')}"
        # A per-period panel's bar at t reads the samples after t (its period's end): Grafana only
        # ever runs it as a range query, and at "now" it has nothing yet.
        kinds = [] if panel.get("timeFrom") and not target["instant"] else [("instant", instant)]
        if panel["type"] == "timeseries" or target.get("range"):
            kinds.append((f"range {RANGE_SECONDS}s", ranged))
        for kind, run in kinds:
            checked += 1
            try:
                if not has_data(run(live.prom, expr)):
                    failures.append(f"{where} ({kind}): empty\n    {expr}")
            except AssertionError as exc:
                failures.append(f"{where} ({kind}): {exc}\n    {expr}")
    assert checked, f"{uid}: no panel targets"
    assert not failures, (f"{len(failures)} of {checked} queries returned nothing:\n"
                          + "\n".join(failures)
                          + (f"\nrecording rules still without a sample: {live.missing_rules}"
                             if live.missing_rules else ""))


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_every_variable_lists_values(live, uid):
    board = DASHBOARDS[uid]
    failures, checked = [], 0
    start = str(time.time() - 3600)
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = LABEL_VALUES.match(variable["definition"])
        assert match, f"{uid} variable {variable['name']}: not label_values(selector, label)"
        selector = substitute(match["selector"])
        checked += 1
        body = live.prom.get(f"/api/v1/label/{match['label']}/values",
                             **{"match[]": selector, "start": start}).json()
        if body.get("status") != "success" or not body["data"]:
            failures.append(f"{uid} variable {variable['name']}: {body.get('error') or 'no values'}"
                            f"\n    label {match['label']} of {selector}")
    assert checked, f"{uid}: no query variables"
    assert not failures, "\n".join(failures)
