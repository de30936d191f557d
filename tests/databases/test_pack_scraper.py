"""The scraper pack against known rows: every metric's values, labels, types and histogram
buckets, on SQLite and on each real server (PostgreSQL, MariaDB), and no personal data (planted
recruiter name and e-mail, job description, error text and URLs) in any series or log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_exporter import demowriter as demos
from tests.support.pack_rows import absent, scrape, server_db, sqlite_db, v
from tests.support.servers import NOW_TS, Server

PACK = "scraper"
NOW = int(NOW_TS)
M, H, D = 60, 3600, 86400
NAME, EMAIL = "Planted Rosalind-Recruiter", "rosalind.planted@example.com"
DESC, ERROR = "PLANTED-DESC call +1 512 555 0142", "PLANTED-ERR 403 token=tok_PLANTED77"
URL = "https://www.example-jobs.com/view?email=rosalind.planted%40example.com"
SITES = '["indeed", "linkedin", "glassdoor"]'

ROWS: dict[str, list[tuple[Any, ...]]] = {
    "scrape_sessions": [
        (1, "s-1", "python developer", "Remote", SITES, 50, 3, NOW - 2 * D, NOW - 2 * D + 300, 300.0, 3, 2, 1, 1,
         "completed"),
        (2, "s-2", "data engineer", "Austin, TX", SITES, 50, 3, NOW - 30 * M, NOW - 20 * M, 600.0, 1, 1, 0, 3,
         "completed"),
        (3, "s-3", "data engineer", None, SITES, 50, 3, NOW - 5 * M, None, None, 0, 0, 0, 0, "running"),
        (4, "s-4", "devops", "Remote", SITES, 50, 3, NOW - 3 * H, NOW - 3 * H + 60, 60.0, 0, 0, 0, 1, "failed"),
    ],
    "site_executions": [
        (1, 1, "indeed", NOW - 2 * D, NOW - 2 * D + 120, 120.0, 1, 2, 3, True, None, "closed", 0, 0.8, 300.0, 30.0),
        (2, 1, "glassdoor", NOW - 2 * D + 1, NOW - 2 * D + 200, 199.0, 1, 0, 1, False, ERROR, "closed", 1, 4.0,
         310.0, 31.0),
        (3, 2, "indeed", NOW - 30 * M, NOW - 25 * M, 300.0, 1, 1, 2, True, None, "closed", 0, 1.2, 320.0, 32.0),
        (4, 2, "glassdoor", NOW - 30 * M + 1, NOW - 29 * M, 59.0, 1, 0, 1, False, ERROR, "open", 5, 2.5, 330.0,
         33.0),
        (5, 3, "indeed", NOW - 5 * M, None, None, 1, 0, 0, False, None, "closed", 0, None, 340.0, 34.0),
        (6, 4, "linkedin", NOW - 3 * H, NOW - 3 * H + 60, 60.0, 1, 0, 2, False, ERROR, "half_open", 4, 9.0, 350.0,
         35.0),
    ],
    "session_metrics": [
        (1, 2, NOW - 28 * M, 8.0, 3, 1, 400.0, 40.0, None, None, None),
        (2, 3, NOW - 4 * M, 6.0, 2, 5, 450.0, 45.0, None, None, None),
        (3, 3, NOW - 2 * M, 3.5, 2, 9, 500.0, 60.0, '{"indeed": 1.2}', '{"indeed": 1.0}', '{"timeout": 0}'),
    ],
    "system_health": [
        (1, NOW - 10 * M, 16000.0, 8000.0, 40.0, 50.0, 1, 2, 3, True, True, True, True, True, True),
        (2, NOW - M, 16000.0, 1000.0, 85.5, 62.5, 1, 3, 4, True, False, True, True, None, False),
    ],
    "scrape_errors": [
        (1, 1, "glassdoor", "403", ERROR, URL, NOW - 2 * D + 100),
        (2, 2, "glassdoor", "403", ERROR, URL, NOW - 29 * M),
        (3, 2, "glassdoor", "timeout", ERROR, URL, NOW - 10 * M),
        (4, 4, "linkedin", "timeout", ERROR, URL, NOW - 3 * H),
    ],
    "jobs": [
        (1, 1, "indeed", "in-1", "Python Developer", "Acme", "Remote", 100000.0, 120000.0, NAME, EMAIL, DESC, URL,
         NOW - 2 * D + 60),
        (2, 1, "indeed", "in-2", "Python Developer", "Acme", "Austin, TX", None, None, "Other Person", "o@x.com",
         "hiring", URL, NOW - 2 * D + 70),
        (3, 2, "indeed", "in-3", "Data Engineer", "Globex", None, 90000.0, None, NAME, EMAIL, DESC, URL,
         NOW - 26 * M),
    ],
}
def check(got: dict, types: dict[str, str]) -> None:
    assert types["scraper_jobs_scraped"] == "counter" and types["scraper_errors"] == "counter"
    for histogram in ("scraper_page_load_seconds", "scraper_site_execution_duration_seconds", "scraper_job_salary_usd"):
        assert types[histogram] == "histogram"
    assert types["scraper_circuit_breaker_state"] == "gauge" and types["scraper_jobs_scraped_recent"] == "gauge"
    # state
    assert v(got, "scraper_sessions", status="completed") == 2 and v(got, "scraper_sessions", status="running") == 1
    assert v(got, "scraper_sessions", status="failed") == 1
    breakers = {"indeed": "closed", "glassdoor": "open", "linkedin": "half_open"}
    for site, current in breakers.items():
        for state in ("closed", "open", "half_open"):
            assert v(got, "scraper_circuit_breaker_state", site=site, state=state) == (state == current), (site, state)
    assert not absent(got, "scraper_circuit_breaker_state", site="indeed", state="open")
    assert v(got, "scraper_circuit_breaker_failures", site="glassdoor") == 5
    assert v(got, "scraper_circuit_breaker_failures", site="linkedin") == 4
    assert not absent(got, "scraper_circuit_breaker_failures", site="indeed")
    assert v(got, "scraper_site_last_execution_timestamp_seconds", site="indeed") == NOW - 5 * M
    assert v(got, "scraper_site_last_execution_timestamp_seconds", site="linkedin") == NOW - 3 * H
    # system health: the latest sample only
    assert v(got, "scraper_system_cpu_usage_percent") == 85.5
    assert v(got, "scraper_system_memory_usage_percent") == pytest.approx(93.75)
    assert v(got, "scraper_system_disk_usage_percent") == 62.5
    assert v(got, "scraper_system_active_sessions") == 1 and v(got, "scraper_system_scrapers_running") == 3
    assert v(got, "scraper_system_database_connections") == 4
    assert v(got, "scraper_service_up", component="fastapi") == 1
    assert v(got, "scraper_service_up", component="database") == 0
    assert not absent(got, "scraper_service_up", component="database")
    assert v(got, "scraper_service_up", component="orchestrator") == 1
    assert v(got, "scraper_site_accessible", site="indeed") == 1
    assert v(got, "scraper_site_accessible", site="glassdoor") == 0
    assert not absent(got, "scraper_site_accessible", site="glassdoor")
    assert absent(got, "scraper_site_accessible", site="linkedin")  # NULL: not probed
    assert v(got, "scraper_system_health_timestamp_seconds") == NOW - M
    # the running session's latest sample
    assert v(got, "scraper_jobs_per_minute") == 3.5 and v(got, "scraper_queue_depth") == 9
    assert v(got, "scraper_active_scrapers") == 2 and v(got, "scraper_running_sessions_reporting") == 1
    assert v(got, "scraper_running_sessions_oldest_sample_timestamp_seconds") == NOW - 2 * M
    # counters
    assert v(got, "scraper_jobs_scraped_total", site="indeed") == 3
    assert absent(got, "scraper_jobs_scraped_total", site="glassdoor")
    assert v(got, "scraper_errors_total", site="glassdoor", error_type="403") == 2
    assert v(got, "scraper_errors_total", site="glassdoor", error_type="timeout") == 1
    assert v(got, "scraper_errors_total", site="linkedin", error_type="timeout") == 1
    # windows
    windows = ("15m", "1h", "24h", "7d")
    recent = {("indeed", "Remote"): (0, 0, 0, 1), ("indeed", "Austin, TX"): (0, 0, 0, 1),
              ("indeed", "unknown"): (0, 1, 1, 1)}
    for (site, location), counts in recent.items():
        for window, n in zip(windows, counts):
            assert v(got, "scraper_jobs_scraped_recent", site=site, location=location, window=window) == n
    assert v(got, "scraper_jobs_with_salary_recent", site="indeed", location="Remote", window="7d") == 1
    assert v(got, "scraper_jobs_with_salary_recent", site="indeed", location="Austin, TX", window="7d") == 0
    assert v(got, "scraper_jobs_with_salary_recent", site="indeed", location="unknown", window="1h") == 1
    errors = {("glassdoor", "403"): (0, 1, 1, 2), ("glassdoor", "timeout"): (1, 1, 1, 1),
              ("linkedin", "timeout"): (0, 0, 1, 1)}
    for (site, kind), counts in errors.items():
        for window, n in zip(windows, counts):
            assert v(got, "scraper_errors_recent", site=site, error_type=kind, window=window) == n, (site, kind, window)
    executions = {("indeed", "success"): (0, 1, 1, 2), ("glassdoor", "failed"): (0, 1, 1, 2),
                  ("linkedin", "failed"): (0, 0, 1, 1)}
    for (site, outcome), counts in executions.items():
        for window, n in zip(windows, counts):
            assert v(got, "scraper_site_executions_recent", site=site, outcome=outcome, window=window) == n, \
                (site, outcome, window)
    assert absent(got, "scraper_site_executions_recent", site="indeed", outcome="failed", window="7d")  # running
    assert v(got, "scraper_pages_processed_recent", site="indeed", outcome="success", window="7d") == 5
    assert v(got, "scraper_pages_processed_recent", site="glassdoor", outcome="failed", window="1h") == 1
    assert v(got, "scraper_pages_processed_recent", site="linkedin", outcome="failed", window="24h") == 2
    # histograms, bucket by bucket
    hist = {
        "scraper_page_load_seconds": (("0.5", "1.0", "1.5", "2.0", "3.0", "5.0", "8.0", "13.0", "20.0", "+Inf"), {
            "indeed": (0, 0, 1, 1, 1, 1, 1, 1, 1, 1), "glassdoor": (0, 0, 0, 0, 1, 1, 1, 1, 1, 1)}),
        "scraper_site_execution_duration_seconds": (
            ("1.0", "15.0", "30.0", "60.0", "120.0", "180.0", "300.0", "600.0", "1200.0", "+Inf"), {
                "indeed": (0, 0, 0, 0, 0, 0, 1, 1, 1, 1), "glassdoor": (0, 0, 0, 1, 1, 1, 1, 1, 1, 1),
                "linkedin": (0, 0, 0, 1, 1, 1, 1, 1, 1, 1)}),
        "scraper_job_salary_usd": (
            ("40000.0", "60000.0", "80000.0", "100000.0", "120000.0", "150000.0", "200000.0", "+Inf"), {
                "indeed": (0, 0, 0, 1, 2, 2, 2, 2)}),
    }
    for name, (bounds, series) in hist.items():
        for site, counts in series.items():
            for le, n in zip(bounds, counts):
                assert v(got, f"{name}_bucket", site=site, le=le) == n, (name, site, le)
    assert absent(got, "scraper_page_load_seconds_count", site="linkedin")  # finished 3 h ago
    assert v(got, "scraper_page_load_seconds_sum", site="glassdoor") == pytest.approx(2.5)
    assert v(got, "scraper_site_execution_duration_seconds_sum", site="indeed") == pytest.approx(300)
    assert v(got, "scraper_job_salary_usd_count", site="indeed") == 2
    assert v(got, "scraper_job_salary_usd_sum", site="indeed") == pytest.approx(200000)
    assert v(got, "pipeline_exporter_query_errors_total") == 0


def no_personal_data(got: dict, log: str) -> None:
    shown = repr(list(got)) + log
    for secret in (NAME, EMAIL, DESC, ERROR, URL, "Rosalind", "rosalind", "tok_PLANTED77", "555 0142",
                   "Python Developer", "Globex"):
        assert secret not in shown


def test_every_scraper_metric_on_sqlite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got, types = scrape(PACK, sqlite_db(PACK, ROWS, tmp_path / "scraper.db"), tmp_path)
    check(got, types)
    no_personal_data(got, caplog.text)


@pytest.fixture
def scraper_server_db(server: Server, scratch_database: str) -> Iterator[str]:
    url = server.url(scratch_database)
    server_db(PACK, ROWS, url)
    yield url


def test_every_scraper_metric_on_a_server(scraper_server_db: str, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got, types = scrape(PACK, scraper_server_db, tmp_path)
    check(got, types)
    no_personal_data(got, caplog.text)


def test_the_demo_loads_on_a_server_and_is_refused_twice(server: Server, scratch_database: str) -> None:
    url = server.url(scratch_database)
    counts = demos.build_url("scraper", url, now=NOW)
    assert counts["jobs"] > 10000 and counts["site_executions"] > 1000
    with pytest.raises(demos.DemoTargetNotEmpty):
        demos.build_url("scraper", url, now=NOW)
    assert demos.build_url("scraper", url, now=NOW, force=True) == counts
