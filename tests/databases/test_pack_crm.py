"""The CRM pack against known rows: every metric's values, labels, types and histogram buckets,
on SQLite and on each real server (PostgreSQL, MariaDB), and no personal data (planted names,
email, phone, street address, notes) in any series or log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_exporter import demowriter as demos
from pipeline_exporter.windows import month_start
from tests.support.pack_rows import scrape, server_db, sqlite_db, v
from tests.support.servers import NOW_TS, Server

PACK = "crm"
NOW = int(NOW_TS)
M, H, D = 60, 3600, 86400
FIRST, LAST, EMAIL = "Planted-Evangeline", "Planted-Wozniak", "evangeline.planted@example.org"
PHONE, STREET, NOTE = "+12485550777", "88 Planted Hollow Ln", "PLANTED-NOTE alarm code 9931"
REP, REP_EMAIL = "Planted Repname", "rep.planted@example.org"

ROWS: dict[str, list[tuple[Any, ...]]] = {
    "team_members": [(1, REP, REP_EMAIL, "+12485550999", "sales", NOW - 365 * D)],
    "leads": [
        (1, FIRST, LAST, EMAIL, PHONE, STREET, "Birmingham", "ultra_premium", "google_lsa", "hot", "converted", 90,
         1, NOTE, NOW - 10 * D, NOW - 10 * D + 60, NOW - 5 * D),
        (2, "Other", "Person", None, "+12480000001", None, "Troy", "professional", "google_lsa", "warm",
         "contacted", 50, 1, None, NOW - 2 * H, NOW - 2 * H + 300, None),
        (3, FIRST, LAST, EMAIL, PHONE, STREET, "Ferndale", "standard", "facebook_ads", "cold", "new", 20, None,
         NOTE, NOW - 10 * M, None, None),
        (4, "Third", "Person", None, "+12480000002", None, "Ferndale", "standard", "facebook_ads", "cold", "new",
         15, None, None, NOW - 60, None, None),
        (5, "Fourth", "Person", None, "+12480000003", None, "Troy", "professional", "nextdoor", "warm", "lost",
         40, 1, None, NOW - 40 * D, NOW - 40 * D + 100, None),
        (6, "Fifth", "Person", None, "+12480000004", None, "Troy", "professional", "google_lsa", "hot",
         "converted", 85, 1, None, NOW - 3 * D, NOW - 3 * D + 30, NOW - H),
    ],
    "customers": [(1, 1, FIRST, LAST, EMAIL, PHONE, "Birmingham", "ultra_premium", NOW - 5 * D),
                  (2, 6, "Fifth", "Person", None, "+12480000004", "Troy", "professional", NOW - H)],
    "projects": [(1, 1, 1, "google_lsa", "ultra_premium", "completed", 45000.10, NOW - 5 * D, NOW - D),
                 (2, 2, 6, "google_lsa", "professional", "scheduled", 27000.25, NOW - H, None)],
    "marketing_spend": [(1, "google_lsa", NOW - 40 * D, 100.05, NOW - 39 * D),
                        (2, "facebook_ads", NOW - 2 * D, 250.50, NOW - D),
                        (3, "google_lsa", NOW - 2 * D, 75.25, NOW - D)],
}
def check(got: dict, types: dict[str, str]) -> None:
    assert types["crm_leads_created"] == "counter" and types["crm_revenue_usd"] == "counter"
    assert types["crm_deals_closed"] == "counter" and types["crm_marketing_spend_usd"] == "counter"
    assert types["crm_lead_response_time_seconds"] == "histogram"
    assert types["crm_leads"] == "gauge" and types["crm_leads_recent"] == "gauge"
    # targets, from the pack's parameters
    assert v(got, "crm_lead_response_target_seconds") == 120
    assert v(got, "crm_monthly_revenue_target_usd") == 500000
    assert v(got, "crm_conversion_target_min_ratio") == 0.25 and v(got, "crm_conversion_target_max_ratio") == 0.35
    cpl = {"google_lsa": 75, "facebook_ads": 75, "community": 17, "insurance_referral": 25,
           "real_estate_agent": 30, "nextdoor": 15}
    for source, target in cpl.items():
        assert v(got, "crm_channel_cpl_target_usd", source=source) == target
    # state
    for (status, temperature), n in {("converted", "hot"): 2, ("contacted", "warm"): 1, ("new", "cold"): 2,
                                     ("lost", "warm"): 1}.items():
        assert v(got, "crm_leads", status=status, temperature=temperature) == n
    assert v(got, "crm_leads_awaiting_response", source="facebook_ads") == 2
    assert v(got, "crm_leads_awaiting_response_over_target", source="facebook_ads") == 1
    assert ("crm_leads_awaiting_response", (("source", "google_lsa"),)) not in got
    # counters
    for (source, temperature), n in {("google_lsa", "hot"): 2, ("google_lsa", "warm"): 1,
                                     ("facebook_ads", "cold"): 2, ("nextdoor", "warm"): 1}.items():
        assert v(got, "crm_leads_created_total", source=source, temperature=temperature) == n
    assert v(got, "crm_deals_closed_total", source="google_lsa", segment="ultra_premium") == 1
    assert v(got, "crm_deals_closed_total", source="google_lsa", segment="professional") == 1
    assert v(got, "crm_revenue_usd_total", source="google_lsa", segment="ultra_premium") == pytest.approx(45000.10)
    assert v(got, "crm_revenue_usd_total", source="google_lsa", segment="professional") == pytest.approx(27000.25)
    assert v(got, "crm_marketing_spend_usd_total", source="google_lsa") == pytest.approx(175.30)
    assert v(got, "crm_marketing_spend_usd_total", source="facebook_ads") == pytest.approx(250.50)
    # windows: leads by source and temperature (24h, 7d, 30d; month from the calendar)
    month = month_start(NOW)

    def in_month(t: int) -> int:
        return 1 if t >= month else 0

    leads = {("google_lsa", "warm"): ((1, 1, 1), [NOW - 2 * H]),
             ("facebook_ads", "cold"): ((2, 2, 2), [NOW - 10 * M, NOW - 60]),
             ("google_lsa", "hot"): ((0, 1, 2), [NOW - 10 * D, NOW - 3 * D])}
    for (source, temperature), (counts, created) in leads.items():
        for window, n in zip(("24h", "7d", "30d"), counts):
            assert v(got, "crm_leads_recent", source=source, temperature=temperature, window=window) == n
        assert v(got, "crm_leads_recent", source=source, temperature=temperature, window="month") == \
            sum(map(in_month, created))
    assert v(got, "crm_leads_recent", source="nextdoor", temperature="warm", window="30d") == 0
    hot = {"source": "google_lsa", "temperature": "hot"}
    assert [v(got, "crm_leads_converted_recent", **hot, window=w) for w in ("24h", "7d", "30d")] == [0, 1, 2]
    assert [v(got, "crm_leads_responded_in_target_recent", **hot, window=w) for w in ("24h", "7d", "30d")] == \
        [0, 1, 2]
    warm = {"source": "google_lsa", "temperature": "warm"}
    assert v(got, "crm_leads_responded_recent", **warm, window="24h") == 1
    assert v(got, "crm_leads_responded_in_target_recent", **warm, window="24h") == 0
    assert v(got, "crm_leads_responded_recent", source="facebook_ads", temperature="cold", window="30d") == 0
    for segment, (n, converted) in {"ultra_premium": (1, 1), "professional": (2, 1), "standard": (2, 0)}.items():
        assert v(got, "crm_segment_leads_recent", segment=segment, window="30d") == n
        assert v(got, "crm_segment_leads_converted_recent", segment=segment, window="30d") == converted
    # deals and revenue: 24h has the professional deal, 7d and 30d both; month by the calendar
    pro = {"source": "google_lsa", "segment": "professional"}
    ultra = {"source": "google_lsa", "segment": "ultra_premium"}
    assert [v(got, "crm_deals_closed_recent", **pro, window=w) for w in ("24h", "7d", "30d")] == [1, 1, 1]
    assert [v(got, "crm_deals_closed_recent", **ultra, window=w) for w in ("24h", "7d", "30d")] == [0, 1, 1]
    assert v(got, "crm_revenue_usd_recent", **pro, window="24h") == pytest.approx(27000.25)
    assert v(got, "crm_revenue_usd_recent", **ultra, window="30d") == pytest.approx(45000.10)
    assert v(got, "crm_revenue_usd_recent", **pro, window="month") == pytest.approx(27000.25 * in_month(NOW - H))
    assert v(got, "crm_revenue_usd_recent", **ultra, window="month") == pytest.approx(45000.10 * in_month(NOW - 5 * D))
    # spend by the day spent: the 40-day-old row is outside every window
    assert v(got, "crm_marketing_spend_usd_recent", source="google_lsa", window="7d") == pytest.approx(75.25)
    assert v(got, "crm_marketing_spend_usd_recent", source="google_lsa", window="30d") == pytest.approx(75.25)
    assert v(got, "crm_marketing_spend_usd_recent", source="facebook_ads", window="30d") == pytest.approx(250.50)
    assert v(got, "crm_marketing_spend_usd_recent", source="facebook_ads", window="month") == \
        pytest.approx(250.50 * in_month(NOW - 2 * D))
    # the histogram: the last 24 h's leads with a first contact: lead 2, 300 s
    bounds = ("30.0", "60.0", "120.0", "300.0", "600.0", "1800.0", "3600.0", "14400.0", "+Inf")
    for le, n in zip(bounds, (0, 0, 0, 1, 1, 1, 1, 1, 1)):
        assert v(got, "crm_lead_response_time_seconds_bucket", source="google_lsa", le=le) == n, le
    assert v(got, "crm_lead_response_time_seconds_count", source="google_lsa") == 1
    assert v(got, "crm_lead_response_time_seconds_sum", source="google_lsa") == pytest.approx(300)
    assert ("crm_lead_response_time_seconds_count", (("source", "facebook_ads"),)) not in got
    assert v(got, "pipeline_exporter_query_errors_total") == 0
    assert not [k for k, n in got.items() if k[0] == "pipeline_exporter_query_errors_total" and n
                and dict(k[1]).get("query") not in ("coverage_report", "e2e_report")]


def no_personal_data(got: dict, log: str) -> None:
    shown = repr(list(got)) + log
    for secret in (FIRST, LAST, EMAIL, PHONE, STREET, NOTE, REP, REP_EMAIL, "9931", "Planted"):
        assert secret not in shown


def test_every_crm_metric_on_sqlite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got, types = scrape(PACK, sqlite_db(PACK, ROWS, tmp_path / "crm.db"), tmp_path)
    check(got, types)
    no_personal_data(got, caplog.text)


@pytest.fixture
def crm_server_db(server: Server, scratch_database: str) -> Iterator[str]:
    url = server.url(scratch_database)
    server_db(PACK, ROWS, url)
    yield url


def test_every_crm_metric_on_a_server(crm_server_db: str, tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got, types = scrape(PACK, crm_server_db, tmp_path)
    check(got, types)
    no_personal_data(got, caplog.text)


def test_the_demo_loads_on_a_server_and_is_refused_twice(server: Server, scratch_database: str) -> None:
    url = server.url(scratch_database)
    counts = demos.build_url("crm", url, now=NOW)
    assert counts["leads"] > 300 and counts["projects"] > 30
    with pytest.raises(demos.DemoTargetNotEmpty):
        demos.build_url("crm", url, now=NOW)
    assert demos.build_url("crm", url, now=NOW, force=True) == counts
