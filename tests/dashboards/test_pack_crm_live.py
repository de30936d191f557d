"""Every CRM dashboard query returns data from a real Prometheus scraping the exporter
(``--pack crm``) on the CRM demo, with the pack's recording rules loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter import demos
from tests.dashboards.conftest import LABEL_VALUES, panels_of, substitute
from tests.support import stack
from tests.support.paths import REPO
from tests.support.procs import require_binary, wait_for

pytestmark = pytest.mark.e2e
DASHBOARDS = sorted((REPO / "grafana" / "packs" / "crm").glob("*.json"))


def test_every_crm_dashboard_query_returns_data(tmp_path: Path) -> None:
    require_binary("prometheus")
    db = tmp_path / "crm.db"
    demos.build("crm", db)
    rules = [str(p) for p in sorted((REPO / "alerts" / "packs" / "crm").glob("*.yml"))]
    with stack.exporter(tmp_path, db, extra=["--pack", "crm", "--no-collector.host"]) as exporter, \
            stack.prometheus(tmp_path, exporter.address, overrides={"rule_files": rules}) as prom:
        stack.wait_for_scrapes(prom, 3)
        wait_for(lambda: stack.query(prom, "crm:conversion_ratio:30d") or None, timeout=30,
                 what="the recording rules")
        empty = []
        for path in DASHBOARDS:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
            for panel in panels_of(dashboard):
                for target in panel.get("targets", []):
                    if not stack.query(prom, substitute(target["expr"])):
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
    assert {p.stem for p in DASHBOARDS} == {"crm-home", "crm-enhanced-analytics"}
