"""The scraper pack's history backfill end to end: its demo -> `pipeline-exporter backfill` with
`packs: [scraper]` -> promtool blocks -> a real Prometheus, whose `scraper_jobs_scraped_total` at
each day boundary must equal the jobs saved up to then, and at the cut-over the live exporter."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline_exporter import demowriter as demos
from tests.support.backfill import DAY, INSTANCE, backfilled_prometheus, cli
from tests.support.servers import make_exporter, samples

pytestmark = pytest.mark.e2e
DAYS = 7
COUNTER = "scraper_jobs_scraped_total"


def _query(url: str, expr: str, at: int) -> dict[str, float]:
    body = requests.get(f"{url}/api/v1/query", params={"query": expr, "time": at}, timeout=10).json()
    assert body["status"] == "success", body
    return {r["metric"].get("site", ""): float(r["value"][1]) for r in body["data"]["result"]}


def _jobs_until(db: Path, moment: int) -> dict[str, float]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT site_name, COUNT(*) FROM jobs WHERE scraped_at <= ? GROUP BY site_name",
                            (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment)),)).fetchall()
    finally:
        conn.close()
    return {site: float(n) for site, n in rows}


def test_scraper_jobs_counter_backfilled_into_prometheus(tmp_path: Path) -> None:
    end = int(time.time()) - 600
    end -= end % 3600  # on the hour: the demo's first jobs are a little more than 7 days before
    db = tmp_path / "scraper.db"
    demos.build("scraper", db, now=end)
    config = tmp_path / "scraper.yml"
    config.write_text("packs: [scraper]\ncollectors: {host: false}\n")
    out = tmp_path / "history.om"
    done = cli("--config.file", str(config), "--database-url", f"sqlite:///{db}", "--days", str(DAYS + 1),
               "--step", "1h", "--end", str(end), "--out", str(out), "--instance", INSTANCE, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert f"# TYPE {COUNTER.removesuffix('_total')} counter" in text and "scraper_errors_total" in text
    with backfilled_prometheus(out, tmp_path) as prom:
        url = prom.url
        selector = f'{COUNTER}{{job="pipeline-exporter", instance="{INSTANCE}"}}'
        for day in range(DAYS + 1):
            moment = end - day * DAY
            expected = _jobs_until(db, moment)
            got = _query(url, f"sum by (site) ({selector})", moment)
            assert got == expected or (not expected and not any(got.values())), \
                (day, got, expected)
        assert sum(_jobs_until(db, end).values()) > 10000
        at_end = _query(url, f"sum by (site) ({selector})", end)
    live = _live(db, config, end, tmp_path)
    assert at_end == live


def _live(db: Path, config: Path, now: int, tmp: Path) -> dict[str, Any]:
    exporter = make_exporter(f"sqlite:///{db}", tmp, config, now=now)
    try:
        exporter.pipeline.scheduler.run_once()
        return {dict(labels)["site"]: value for (name, labels), value in samples(exporter).items()
                if name == COUNTER}
    finally:
        exporter.stop()
