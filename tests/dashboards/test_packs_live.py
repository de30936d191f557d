"""Every dashboard query of each further pack returns data from a real Prometheus scraping the
exporter (``--pack NAME``) on that pack's demo, with the pack's recording rules loaded; and
``promtool check metrics`` finds nothing to say about the pack's exposition."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from pipeline_exporter import demowriter as demos
from tests.dashboards.conftest import LABEL_VALUES, panels_of, substitute
from tests.support import stack
from tests.support.paths import REPO
from tests.support.procs import require_binary, wait_for

pytestmark = pytest.mark.e2e

PACKS = {  # pack: (a recording rule its dashboards read, its dashboards)
    "botflow": ("botflow:response_time_seconds:p95",
                {"botflow-realtime", "botflow-bot-performance", "botflow-workers"}),
    "crm": ("crm:conversion_ratio:30d", {"crm-home", "crm-enhanced-analytics"}),
    "scraper": ("scraper:site_error_ratio:1h",
                {"scraper-overview", "scraper-sessions", "scraper-analytics", "scraper-insights"}),
}


def has_data(prom: stack.Service, panel: dict, target: dict) -> bool:
    """An instant query's answer; for a per-period panel (its bar at t reads the samples after t, the
    period's end) a range query of the last minute, every second: a bar wherever samples lie both before
    and after its step (Grafana runs it as a range query; at "now" nothing is after)."""
    expr = substitute(target["expr"])
    if not (panel.get("timeFrom") and not target["instant"]):
        return bool(stack.query(prom, expr))
    end = time.time()
    body = prom.get("/api/v1/query_range", query=expr, start=str(end - 60), end=str(end), step="1s").json()
    assert body["status"] == "success", body.get("error")
    return any(series["values"] for series in body["data"]["result"])


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_every_dashboard_query_of_the_pack_returns_data(pack: str, tmp_path: Path) -> None:
    require_binary("prometheus")
    rule, names = PACKS[pack]
    dashboards = sorted((REPO / "grafana" / "packs" / pack).glob("*.json"))
    assert {p.stem for p in dashboards} == names
    db = tmp_path / f"{pack}.db"
    demos.build(pack, db)
    rules = [str(p) for p in sorted((REPO / "alerts" / "packs" / pack).glob("*.yml"))]
    with stack.exporter(tmp_path, db, extra=["--pack", pack, "--no-collector.host"]) as exporter, \
            stack.prometheus(tmp_path, exporter.address, overrides={"rule_files": rules}) as prom:
        stack.wait_for_scrapes(prom, 3)
        # promtool's lint of the pack's exposition: names, units (botflow once had `_kb_`), types.
        lint = subprocess.run([require_binary("promtool"), "check", "metrics"], input=exporter.get("/metrics").content,
                              capture_output=True, timeout=60, check=False)
        assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), \
            lint.stdout.decode() + lint.stderr.decode()
        wait_for(lambda: stack.query(prom, rule) or None, timeout=30, what="the recording rules")
        empty = []
        for path in dashboards:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
            for panel in panels_of(dashboard):
                for target in panel.get("targets", []):
                    if not has_data(prom, panel, target):
                        empty.append(f"{path.stem} / {panel['title']}: {target['expr']}")
            for variable in dashboard["templating"]["list"]:
                if variable["type"] == "query":
                    match = LABEL_VALUES.match(variable["definition"])
                    assert match
                    values = prom.get("/api/v1/label/" + match["label"] + "/values",
                                      **{"match[]": match["selector"]}).json()["data"]
                    if not values:
                        empty.append(f"{path.stem} variable {variable['name']}")
        assert not empty, "\n".join(empty)
