"""The CRM pack's history backfill end to end: CRM demo -> `pipeline-exporter backfill` with
`packs: [crm]` -> promtool blocks -> a real Prometheus. `crm_leads_created_total`'s daily
differences equal the leads created each day, and every CRM counter at the cut-over equals what
the live exporter reports."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from exporter import demos
from tests.e2e import test_backfill as base
from tests.support.procs import free_port, require_binary, running, wait_for
from tests.support.servers import make_exporter, samples

DAY, DAYS = base.DAY, base.DAYS
TARGET = {"job": "pipeline-exporter", "instance": base.INSTANCE}


@pytest.fixture(scope="module")
def crm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    promtool = require_binary("promtool")
    prometheus = require_binary("prometheus")
    root = tmp_path_factory.mktemp("backfill-crm")
    end = int(time.time()) - 600
    db = root / "crm.db"
    demos.build("crm", db, now=end)
    config = root / "crm.yml"
    config.write_text("packs: [crm]\ncollectors: {host: false}\n")
    out = root / "history.om"
    done = base.cli("--days", str(DAYS), "--step", "1h", "--end", str(end), "--out", str(out),
                    "--config.file", str(config), "--database-url", f"sqlite:///{db}",
                    "--job", TARGET["job"], "--instance", TARGET["instance"], cwd=root)
    assert done.returncode == 0, done.stderr
    assert out.read_text().endswith("\n# EOF\n")
    data = root / "prometheus-data"
    blocks = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                             str(out), str(data)], capture_output=True, text=True, timeout=120)
    assert blocks.returncode == 0, blocks.stdout + blocks.stderr
    prom_config = root / "prometheus.yml"
    prom_config.write_text("global:\n  scrape_interval: 1m\n")  # no targets: only the backfilled blocks
    port = free_port()
    log = root / "prometheus.log"
    with running([prometheus, f"--config.file={prom_config}", f"--storage.tsdb.path={data}",
                  "--storage.tsdb.retention.time=400d", f"--web.listen-address=127.0.0.1:{port}"], log, cwd=root):
        prom = base.Prom(f"http://127.0.0.1:{port}")
        try:
            wait_for(lambda: requests.get(prom.url + "/-/ready", timeout=2).status_code == 200,
                     timeout=30, what="prometheus")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
        yield {"prom": prom, "db": db, "end": end, "config": config, "root": root}


def test_leads_created_per_day_equal_the_rows_of_each_day(crm_stack: dict[str, Any]) -> None:
    prom, db, end = crm_stack["prom"], crm_stack["db"], crm_stack["end"]
    rows = base.rows(db, "SELECT source, temperature, created_at, 1 FROM leads")
    expected = base.per_day(rows, end, lambda row: (("source", row[0]), ("temperature", row[1])))
    assert sum(sum(v[1:]) for v in expected.values()) > 100, "the demo has too few leads in the window"
    compare_daily = prom.daily("crm_leads_created_total", end)
    base.compare(compare_daily, expected, "crm_leads_created_total")
    base.compare(prom.daily("increase(crm_leads_created_total[1d])", end, first=1), expected,
                 "increase(crm_leads_created_total[1d])", increments=False)
    at_end = prom.api("/api/v1/query", query="crm_leads_created_total", time=end)
    assert at_end and all({k: r["metric"].get(k) for k in TARGET} == TARGET for r in at_end)


def test_every_crm_counter_at_the_cut_over_equals_the_live_exporter(crm_stack: dict[str, Any]) -> None:
    prom, db, end = crm_stack["prom"], crm_stack["db"], crm_stack["end"]
    backfilled = {}
    for r in prom.api("/api/v1/query", query='{__name__=~"crm_.+_total"}', time=end):
        labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")}
        backfilled[(r["metric"]["__name__"], tuple(sorted(labels.items())))] = float(r["value"][1])
    assert {name for name, _ in backfilled} == {"crm_leads_created_total", "crm_deals_closed_total",
                                                "crm_revenue_usd_total", "crm_marketing_spend_usd_total"}
    exporter = make_exporter(f"sqlite:///{db}", Path(crm_stack["root"]), crm_stack["config"], now=end)
    try:
        exporter.pipeline.scheduler.run_once()
        live = {k: v for k, v in samples(exporter).items() if k[0].startswith("crm_") and k[0].endswith("_total")}
    finally:
        exporter.stop()
    assert set(live) == set(backfilled)
    for key, value in live.items():
        assert backfilled[key] == pytest.approx(value, rel=1e-12), key
