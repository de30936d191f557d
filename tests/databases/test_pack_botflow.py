"""The BotFlow pack against known rows: every metric's values, labels, types and histogram
buckets, on SQLite and on each real server (PostgreSQL, MariaDB), and no personal data (planted
phone number, name, message text, error text) in any series or log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_exporter import demowriter as demos
from tests.support.pack_rows import scrape, server_db, sqlite_db, v
from tests.support.servers import NOW_TS, Server

PACK = "botflow"
NOW = int(NOW_TS)
H, D = 3600, 86400
PHONE, NAME = "+27825550777", "Planted Naledi-Person"
TEXT, ERROR = "PLANTED-TEXT id 8001015009087", "PLANTED-ERR pw=hunter2"

ROWS: dict[str, list[tuple[Any, ...]]] = {
    "organizations": [(1, "Org One", NOW - 90 * D)],
    "bots": [(1, 1, "alpha", "active", NOW - 30 * D), (2, 1, "beta", "paused", NOW - 30 * D)],
    "conversations": [
        (1, 1, 1, PHONE, NAME, "resolved", NOW - 2 * D, NOW - 2 * D + 1, NOW - 2 * D + 300),
        (2, 1, 1, PHONE, NAME, "escalated", NOW - 30 * 60, NOW - 30 * 60 + 6, NOW - 20 * 60),
        (3, 1, 2, "+27820000001", "Other Person", "active", NOW - 10 * 60, NOW - 5 * 60, None),
        (4, 1, 1, "+27820000002", None, "active", NOW - 4 * H, NOW - 3 * H, None),
    ],
    "messages": [
        (1, 1, 1, "inbound", PHONE, TEXT, "received", None, NOW - 2 * D),
        (2, 1, 1, "outbound", PHONE, f"Hi {NAME}", "delivered", 800, NOW - 2 * D + 1),
        (3, 2, 1, "inbound", PHONE, TEXT, "received", None, NOW - 30 * 60),
        (4, 2, 1, "outbound", PHONE, TEXT, "failed", 6000, NOW - 30 * 60 + 6),
        (5, 3, 2, "inbound", "+27820000001", "hello", "received", None, NOW - 10 * 60),
        (6, 3, 2, "outbound", "+27820000001", "hi", "delivered", 300, NOW - 10 * 60 + 1),
        (7, 3, 2, "outbound", "+27820000001", "more", "delivered", 2500, NOW - 5 * 60),
    ],
    "conversation_metrics": [
        (1, 1, 1, 1, "success", 2, 3, 500, 0.001234, 300, 5, NOW - 2 * D + 300),
        (2, 2, 1, 1, "handoff", 2, 0, 700, 0.002, 600, None, NOW - 20 * 60),
    ],
    "bot_performance_metrics": [(1, 1, "2024-01-01", 2, 4, 800, 5000, 6000, .5, 0, 0, .5, 0.003234, NOW - D)],
    "usage_analytics": [(1, 1, NOW - 3 * H, 3, 4, 2, 2, 1, 10, 0.003, NOW - 3 * H + 300)],
    "aggregation_jobs": [
        (1, "hourly", "completed", 1, None, NOW - 2 * H, NOW - 2 * H + 60),
        (2, "hourly", "completed", 1, None, NOW - H, NOW - H + 60),
        (3, "hourly", "waiting", 0, None, NOW - 10 * 60, None),
        (4, "daily", "failed", 3, ERROR, NOW - 5 * H, NOW - 5 * H + 9),
    ],
}
def check(got: dict, types: dict[str, str]) -> None:
    assert types["botflow_messages"] == "counter" and types["botflow_cost_usd"] == "counter"
    assert types["botflow_response_time_seconds"] == "histogram"
    assert types["botflow_conversations"] == "gauge" and types["botflow_messages_recent"] == "gauge"
    assert v(got, "botflow_bots", status="active") == 1 and v(got, "botflow_bots", status="paused") == 1
    assert v(got, "botflow_conversations", bot="alpha", status="resolved") == 1
    assert v(got, "botflow_conversations", bot="alpha", status="escalated") == 1
    assert v(got, "botflow_conversations", bot="alpha", status="active") == 1
    assert v(got, "botflow_conversations", bot="beta", status="active") == 1
    assert v(got, "botflow_active_conversations", bot="alpha") == 0
    assert v(got, "botflow_active_conversations", bot="beta") == 1
    assert v(got, "botflow_aggregation_jobs", queue="hourly", status="completed") == 2
    assert v(got, "botflow_aggregation_jobs", queue="hourly", status="waiting") == 1
    assert v(got, "botflow_aggregation_jobs", queue="daily", status="failed") == 1
    assert v(got, "botflow_aggregation_last_completed_timestamp_seconds", queue="hourly") == NOW - H + 60
    assert ("botflow_aggregation_last_completed_timestamp_seconds", (("queue", "daily"),)) not in got
    assert v(got, "botflow_aggregate_latest_timestamp_seconds", aggregate="usage_analytics") == NOW - 3 * H
    assert v(got, "botflow_aggregate_latest_timestamp_seconds", aggregate="bot_performance_metrics") == NOW - D
    for bot, direction, n in (("alpha", "inbound", 2), ("alpha", "outbound", 2), ("beta", "inbound", 1),
                              ("beta", "outbound", 2)):
        assert v(got, "botflow_messages_total", bot=bot, direction=direction) == n
    assert v(got, "botflow_conversations_finished_total", bot="alpha", outcome="success") == 1
    assert v(got, "botflow_conversations_finished_total", bot="alpha", outcome="handoff") == 1
    assert v(got, "botflow_knowledge_base_hits_total", bot="alpha", outcome="success") == 3
    assert v(got, "botflow_tokens_total", bot="alpha", outcome="handoff") == 700
    assert v(got, "botflow_cost_usd_total", bot="alpha", outcome="success") == pytest.approx(0.001234, abs=1e-12)
    assert v(got, "botflow_cost_usd_total", bot="alpha", outcome="handoff") == pytest.approx(0.002, abs=1e-12)
    recent = {("beta", "inbound"): (1, 1, 1, 1), ("beta", "outbound"): (2, 2, 2, 2),
              ("alpha", "inbound"): (0, 1, 1, 2), ("alpha", "outbound"): (0, 1, 1, 2)}
    for (bot, direction), counts in recent.items():
        for window, n in zip(("15m", "1h", "24h", "7d"), counts):
            assert v(got, "botflow_messages_recent", bot=bot, direction=direction, window=window) == n, (bot, window)
    assert v(got, "botflow_messages_failed_recent", bot="alpha", direction="outbound", window="1h") == 1
    assert v(got, "botflow_messages_failed_recent", bot="alpha", direction="outbound", window="15m") == 0
    assert v(got, "botflow_conversations_finished_recent", bot="alpha", outcome="handoff", window="1h") == 1
    assert v(got, "botflow_conversations_finished_recent", bot="alpha", outcome="success", window="24h") == 0
    assert v(got, "botflow_conversations_finished_recent", bot="alpha", outcome="success", window="7d") == 1
    kb_hit = "botflow_conversations_with_knowledge_base_hit_recent"
    assert v(got, kb_hit, bot="alpha", outcome="success", window="7d") == 1
    assert v(got, kb_hit, bot="alpha", outcome="handoff", window="7d") == 0
    assert v(got, "botflow_tokens_recent", bot="alpha", outcome="handoff", window="1h") == 700
    assert v(got, "botflow_cost_usd_recent", bot="alpha", outcome="success", window="7d") == pytest.approx(0.001234)
    # the histogram: the last hour's answers, alpha 6.0 s; beta 0.3 s and 2.5 s
    bounds = ("0.25", "0.5", "1.0", "2.0", "3.0", "5.0", "8.0", "13.0", "20.0", "30.0", "+Inf")
    expected = {"alpha": (0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1), "beta": (0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2)}
    for bot, counts in expected.items():
        for le, n in zip(bounds, counts):
            assert v(got, "botflow_response_time_seconds_bucket", bot=bot, le=le) == n, (bot, le)
    assert v(got, "botflow_response_time_seconds_count", bot="beta") == 2
    assert v(got, "botflow_response_time_seconds_sum", bot="beta") == pytest.approx(2.8)
    assert v(got, "botflow_response_time_seconds_sum", bot="alpha") == pytest.approx(6.0)
    assert v(got, "pipeline_exporter_query_errors_total") == 0


def no_personal_data(got: dict, log: str) -> None:
    shown = repr(list(got)) + log
    for secret in (PHONE, NAME, TEXT, ERROR, "8001015009087", "hunter2", "Naledi"):
        assert secret not in shown


def test_every_botflow_metric_on_sqlite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got, types = scrape(PACK, sqlite_db(PACK, ROWS, tmp_path / "botflow.db"), tmp_path)
    check(got, types)
    no_personal_data(got, caplog.text)


@pytest.fixture
def botflow_server_db(server: Server, scratch_database: str) -> Iterator[str]:
    url = server.url(scratch_database)
    server_db(PACK, ROWS, url)
    yield url


def test_every_botflow_metric_on_a_server(botflow_server_db: str, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    got, types = scrape(PACK, botflow_server_db, tmp_path)
    check(got, types)
    no_personal_data(got, caplog.text)


def test_the_demo_loads_on_a_server_and_is_refused_twice(server: Server, scratch_database: str) -> None:
    url = server.url(scratch_database)
    counts = demos.build_url("botflow", url, now=NOW)
    assert counts["messages"] > 1000
    with pytest.raises(demos.DemoTargetNotEmpty):
        demos.build_url("botflow", url, now=NOW)
    assert demos.build_url("botflow", url, now=NOW, force=True) == counts
