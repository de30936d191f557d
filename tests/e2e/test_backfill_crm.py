"""The CRM pack's history backfill end to end: CRM demo -> `pipeline-exporter backfill` with
`packs: [crm]` -> promtool blocks -> a real Prometheus. `crm_leads_created_total`'s daily
differences equal the leads created each day, and every CRM counter at the cut-over equals what
the live exporter reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.backfill import TARGET, compare_days, pack_backfilled, per_day, rows
from tests.support.servers import make_exporter, samples


@pytest.fixture(scope="module")
def crm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pack_backfilled("crm", tmp_path_factory.mktemp("backfill-crm")) as stack:
        yield stack


def test_leads_created_per_day_equal_the_rows_of_each_day(crm_stack: dict[str, Any]) -> None:
    prom, db, end = crm_stack["prom"], crm_stack["db"], crm_stack["end"]
    expected = per_day(rows(db, "SELECT source, temperature, created_at, 1 FROM leads"), end,
                       lambda row: (("source", row[0]), ("temperature", row[1])))
    assert sum(sum(v[1:]) for v in expected.values()) > 100, "the demo has too few leads in the window"
    compare_days(prom, "crm_leads_created_total", expected, end)
    at_end = prom.api("/api/v1/query", query="crm_leads_created_total", time=end)
    assert at_end and all({k: r["metric"].get(k) for k in TARGET} == TARGET for r in at_end)


def test_every_crm_counter_at_the_cut_over_equals_the_live_exporter(crm_stack: dict[str, Any]) -> None:
    prom, db, end = crm_stack["prom"], crm_stack["db"], crm_stack["end"]
    backfilled = prom.at('{__name__=~"crm_.+_total"}', end)
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
