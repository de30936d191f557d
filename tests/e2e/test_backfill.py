"""History backfill end to end: demo database -> `pipeline-exporter backfill` -> promtool blocks ->
a real Prometheus, whose daily differences must equal the rows of each day and whose values at the
cut-over instant must equal what the live exporter reports."""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from pipeline_exporter import backfill
from pipeline_exporter.app import Exporter, families
from pipeline_exporter.packs.method333.demo import build_demo
from tests.support.backfill import (
    DAY,
    DAYS,
    INSTANCE,
    TARGET,
    backfilled_prometheus,
    cli,
    compare_days,
    epoch,
    per_day,
    rows,
)
from tests.support.paths import DDL

# --------------------------------------------------------------------------- the stack


def live_counters(db: Path, now: float) -> dict[tuple, float]:
    """The live exporter's backfillable counters, in process with its clock at ``now``."""
    exporter = Exporter(None, {"database_url": f"sqlite:///{db}", "coverage": db.parent / "none.json",
                               "e2e_report": db.parent / "none.xml"}, clock=lambda: now)
    exporter.pipeline.scheduler.run_once()
    counters = set(backfill.COUNTERS)  # read from the pack at each access: once, not once a sample
    try:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in families(exporter.registry).values() for s in family.samples
                if s.name in counters}
    finally:
        exporter.pipeline.db.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("backfill")
    end = int(time.time()) - 600  # a cut-over instant a little in the past, known to the test
    db = root / "db" / "sites.db"
    build_demo(db, sites=2000, seed=333, now=datetime.fromtimestamp(end, timezone.utc))
    out = root / "history.om"
    done = cli("--days", str(DAYS), "--step", "1h", "--end", str(end), "--out", str(out),
               "--database-url", f"sqlite:///{db}", "--job", TARGET["job"], "--instance", INSTANCE, cwd=root)
    assert done.returncode == 0, done.stderr
    assert out.read_text().endswith("\n# EOF\n")
    with backfilled_prometheus(out, root) as prom:
        yield {"prom": prom, "db": db, "end": end, "out": out, "stderr": done.stderr}


# --------------------------------------------------------------------------- tests


def test_blocks_cover_thirty_days_with_target_labels_and_monotonic_counters(stack):
    prom, end = stack["prom"], stack["end"]
    assert "written to" in stack["stderr"]
    first = prom.api("/api/v1/query", query="count(pipeline_sites_created_total)", time=end - DAYS * DAY)
    assert first and float(first[0]["value"][1]) == 1, "the first step (end - 30 d) is not in the loaded blocks"
    at_end = prom.api("/api/v1/query", query='{__name__=~"pipeline_.+_total"}', time=end)
    assert {r["metric"]["__name__"] for r in at_end} == set(backfill.COUNTERS)
    assert all({k: r["metric"].get(k) for k in TARGET} == TARGET for r in at_end)
    # Hourly samples in every series at every hour of the last day, and never a counter reset.
    for name in backfill.COUNTERS:
        counts = {float(r["value"][1]) for r in prom.api("/api/v1/query", query=f"count_over_time({name}[1d])",
                                                          time=end)}
        assert counts == {25.0}, f"{name}: {counts} samples in [end - 1d, end]"  # both ends included
        resets = prom.api("/api/v1/query", query=f"max(resets({name}[{DAYS + 1}d]))", time=end)
        assert float(resets[0]["value"][1]) == 0, name


def test_daily_differences_equal_the_rows_of_each_day(stack):
    prom, db, end = stack["prom"], stack["db"], stack["end"]
    by = lambda name: (lambda row: ((name, row[0]),))  # noqa: E731 - the label key of a row
    checks = [  # (aggregation, selector, rows as (labels..., timestamp, value), label key of a row)
        ("", 'pipeline_outreach_events_total{event="sent"}',
         "SELECT channel, sent_at, 1 FROM outreaches WHERE sent_at IS NOT NULL", by("channel")),
        ("", 'pipeline_outreach_events_total{event="replied"}',
         "SELECT channel, replied_at, 1 FROM outreaches WHERE replied_at IS NOT NULL", by("channel")),
        ("", 'pipeline_outreach_events_total{event="delivered"}',
         "SELECT channel, delivered_at, 1 FROM outreaches WHERE delivered_at IS NOT NULL", by("channel")),
        ("", "pipeline_conversation_messages_total", "SELECT channel, direction, created_at, 1 FROM conversations",
         lambda row: (("channel", row[0]), ("direction", row[1]))),
        ("", "pipeline_site_transitions_total", "SELECT to_status, changed_at, 1 FROM site_status_history",
         by("to_status")),
        ("sum", "pipeline_llm_cost_usd_total", "SELECT created_at, cost_usd FROM llm_usage", lambda row: ()),
        ("sum by (source, code)", "pipeline_http_errors_total",
         "SELECT source, CAST(status_code AS TEXT), created_at, 1 FROM http_errors",
         lambda row: (("code", row[1]), ("source", row[0]))),
        ("", "pipeline_opt_outs_total", "SELECT channel, created_at, 1 FROM opt_outs", by("channel")),
        ("", "pipeline_sales_total", "SELECT channel, sold_at, 1 FROM sales", by("channel")),
        ("sum", "pipeline_sales_revenue_usd_total", "SELECT sold_at, amount_usd FROM sales", lambda row: ()),
        ("", "pipeline_sites_created_total", "SELECT created_at, 1 FROM sites", lambda row: ()),
    ]
    for agg, selector, sql, key in checks:
        compare_days(prom, selector, per_day(rows(db, sql), end, key), end, agg)


WINDOWED = ("pipeline_site_transitions_recent", "pipeline_outreach_sent_recent", "pipeline_outreach_replies_recent",
            "pipeline_sales_recent", "pipeline_sales_revenue_usd_recent", "pipeline_llm_cost_usd_recent",
            "pipeline_llm_tokens_recent", "pipeline_conversation_messages_recent", "pipeline_opt_outs_recent",
            "pipeline_cron_job_runs_recent", "pipeline_http_errors_recent")


def daily_or_absent(prom: Any, expr: str, end: int) -> dict[tuple, list[float]]:
    """Values of ``expr`` at the day boundaries ending at ``end``, 0.0 where the series is absent (a
    label set with no event for two weeks has no series, as live)."""
    result = prom.api("/api/v1/query_range", query=expr, start=end - DAYS * DAY, end=end, step=f"{DAY}s")
    out = {}
    for series in result:
        values = [0.0] * (DAYS + 1)
        for stamp, value in series["values"]:
            values[DAYS - (end - int(float(stamp))) // DAY] = float(value)
        labels = {k: v for k, v in series["metric"].items() if k not in ("__name__", "job", "instance", "window")}
        out[tuple(sorted(labels.items()))] = values
    return out


def test_per_day_bars_of_the_windowed_gauges_equal_the_rows_of_each_day(stack):
    """What a per-day panel draws from the first minute: the 24 h window at each day boundary b is
    the rows of (b - 1d, b]; the 7 d window at the cut-over the rows of the last week."""
    prom, db, end = stack["prom"], stack["db"], stack["end"]
    by = lambda name: (lambda row: ((name, row[0]),))  # noqa: E731 - the label key of a row
    checks = [  # (selector of the summed gauge, rows as (labels..., timestamp, value), label key of a row)
        ('sum by (channel) (pipeline_outreach_sent_recent{window="24h"})',
         "SELECT channel, sent_at, 1 FROM outreaches WHERE sent_at IS NOT NULL", by("channel")),
        ('pipeline_outreach_replies_recent{window="24h"}',
         "SELECT channel, replied_at, 1 FROM outreaches WHERE replied_at IS NOT NULL", by("channel")),
        ('pipeline_site_transitions_recent{window="24h"}', "SELECT to_status, changed_at, 1 FROM site_status_history",
         by("to_status")),
        ('sum(pipeline_llm_cost_usd_recent{window="24h"})', "SELECT created_at, cost_usd FROM llm_usage",
         lambda row: ()),
        ('sum by (source, code) (pipeline_http_errors_recent{window="24h"})',
         "SELECT source, CAST(status_code AS TEXT), created_at, 1 FROM http_errors",
         lambda row: (("code", row[1]), ("source", row[0]))),
        ('sum(pipeline_sales_revenue_usd_recent{window="24h"})', "SELECT sold_at, amount_usd FROM sales",
         lambda row: ()),
    ]
    for selector, sql, key in checks:
        expected = per_day(rows(db, sql), end, key)
        got = daily_or_absent(prom, selector, end)
        assert sum(sum(v[1:]) for v in expected.values()) > 0, selector
        for series, values in got.items():
            want = expected.get(series, [0.0] * (DAYS + 1))
            assert values[1:] == pytest.approx(want[1:], rel=1e-9, abs=1e-6), f"{selector} {dict(series)}"
        assert {k for k, v in expected.items() if sum(v[1:])} <= set(got), selector
    week = defaultdict(float)
    for channel, sent in rows(db, "SELECT channel, sent_at FROM outreaches WHERE sent_at IS NOT NULL"):
        ts = epoch(sent)
        if ts is not None and end - 7 * DAY < ts <= end:
            week[(("channel", channel),)] += 1
    got = prom.api("/api/v1/query", query='sum by (channel) (pipeline_outreach_sent_recent{window="7d"})', time=end)
    assert {(("channel", r["metric"]["channel"]),): float(r["value"][1]) for r in got} == dict(week)


def test_values_at_the_cut_over_equal_the_live_exporter(stack):
    prom, db, end = stack["prom"], stack["db"], stack["end"]
    backfilled = prom.at('{__name__=~"pipeline_.+_total"}', end)
    live = live_counters(db, end)
    assert set(live) == set(backfilled)
    for key, value in live.items():
        assert backfilled[key] == value, key  # exact: money is summed in integer units on both sides


# --------------------------------------------------------------------------- edge rows, no binaries


def build_db(path: Path, tables: dict[str, list[dict[str, Any]]]) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(DDL.read_text())
    for table, table_rows in tables.items():
        for row in table_rows:
            conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         list(row.values()))
    conn.commit()
    conn.close()
    return path


def test_edge_rows_caps_and_openmetrics_shape(tmp_path):
    end = 1_795_000_000
    fmt = lambda ago, iso=False: time.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S",  # noqa: E731
                                               time.gmtime(end - ago))
    outreaches = [
        {"site_id": 1, "channel": "email", "contact": "a@x", "status": "sent", "created_at": fmt(7200),
         "sent_at": fmt(3600, iso=True)},                                # ISO form
        {"site_id": 1, "channel": "email", "contact": "b@x", "status": "sent", "created_at": fmt(90 * DAY),
         "sent_at": "garbage"},                                          # unparseable: no sent event
        {"site_id": 1, "channel": "", "contact": "c@x", "status": "bounced", "created_at": fmt(-600),
         "sent_at": fmt(-300)},                                          # future, empty channel
        {"site_id": 1, "channel": "sms", "contact": "d@x", "status": "complained", "created_at": fmt(3 * DAY),
         "sent_at": fmt(3 * DAY - 10), "delivered_at": fmt(3 * DAY - 20)},
    ]
    # 25 sources: the cap (20) keeps the 20 largest by final total, the rest become `other`.
    errors = [{"source": f"api{i:02d}", "stage": "scoring", "status_code": 500, "url": "u",
               "created_at": fmt((i * 7919) % (2 * DAY))} for i in range(25) for _ in range(i + 1)]
    sentiments = [{"site_id": 1, "channel": "email", "direction": d, "sentiment": s, "is_read": 0,
                   "sender": "x", "body": "y", "created_at": fmt(100)}
                  for d, s in (("inbound", None), ("outbound", None), ("inbound", "positive"))]
    db = build_db(tmp_path / "sites.db", {"outreaches": outreaches, "http_errors": errors,
                                          "conversations": sentiments})
    out = tmp_path / "out.om"
    assert backfill.main(["--days", "2", "--step", "15m", "--end", str(end), "--out", str(out),
                          "--database-url", f"sqlite:///{db}", "--instance", INSTANCE, "--label", "env=test"]) == 0
    text = out.read_text()
    every = list(text_string_to_metric_families(text))  # the strict OpenMetrics parser accepts it
    fams = [f for f in every if f.type == "counter"]
    assert [f.name for f in fams] == [n.removesuffix("_total") for n in backfill.COUNTERS]
    gauges = {f.name: f for f in every if f.type != "counter"}
    assert set(gauges) == set(WINDOWED) and all(f.type == "gauge" for f in gauges.values())
    check_edge_windows(gauges, end)
    steps = 2 * DAY // 900 + 1
    last: dict[tuple, float] = {}
    for family in fams:
        assert family.type == "counter"
        by_series: dict[tuple, list] = defaultdict(list)
        for s in family.samples:
            assert s.labels.pop("job") == "pipeline-exporter" and s.labels.pop("instance") == INSTANCE
            assert s.labels.pop("env") == "test"
            by_series[(s.name, tuple(sorted(s.labels.items())))].append((float(s.timestamp), s.value))
        for key, points in by_series.items():
            assert [t for t, _ in points] == [end - (steps - 1 - i) * 900 for i in range(steps)], key
            assert all(a[1] <= b[1] for a, b in zip(points, points[1:])), f"{key} not monotonic"
            last[key] = points[-1][1]
    assert last == live_counters(db, end)
    sent = lambda channel: [(t, v) for f in fams for s in f.samples  # noqa: E731
                            for t, v in [(float(s.timestamp), s.value)]
                            if s.name == "pipeline_outreach_events_total"
                            and s.labels == {"channel": channel, "event": "sent"}]
    # The ISO row counts from its own hour on; the garbage sent_at is not a time, so no sent event,
    # as live (the row itself is still a created event).
    assert [v for t, v in sent("email") if t < end - 3600] == [0] * (steps - 5)
    assert [v for t, v in sent("email") if t >= end - 3600] == [1, 1, 1, 1, 1]
    assert sent("unknown")[-1][1] == 1 and sent("unknown")[-2][1] == 0  # the future row: at the cut-over
    sources = {dict(k[1]).get("source") for k in last if k[0] == "pipeline_http_errors_total"}
    assert len(sources) == 21 and "other" in sources and "api24" in sources and "api00" not in sources
    assert last[("pipeline_http_errors_total", (("code", "500"), ("source", "other"), ("stage", "scoring")))] == 15
    # A message's classification is a gauge, not part of the counter.
    assert {k[1] for k in last if k[0] == "pipeline_conversation_messages_total"} == \
        {(("channel", "email"), ("direction", "inbound")), (("channel", "email"), ("direction", "outbound"))}
    assert last[("pipeline_conversation_messages_total", (("channel", "email"), ("direction", "inbound")))] == 2


def check_edge_windows(gauges: dict[str, Any], end: int) -> None:
    """The windowed gauges of the edge rows at the cut-over: windows are (t - w, t], a NULL,
    garbage or future time is in no window, and the cap folds sources as a live run does."""
    at_end: dict[tuple, float] = {}
    for name, family in gauges.items():
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if k not in ("job", "instance", "env")}
            if float(s.timestamp) == end:
                at_end[(name, tuple(sorted(labels.items())))] = s.value

    def sent(channel: str, status: str, window: str) -> float | None:
        return at_end.get(("pipeline_outreach_sent_recent",
                           (("channel", channel), ("status", status), ("window", window))))

    assert sent("email", "sent", "1h") == 0 and sent("email", "sent", "24h") == 1  # sent exactly 1 h ago
    assert sent("sms", "complained", "24h") == 0 and sent("sms", "complained", "7d") == 1
    assert not any(dict(k[1]).get("channel") == "unknown" for k in at_end if k[0] == "pipeline_outreach_sent_recent")
    windows = {dict(k[1])["window"] for k in at_end if k[0] == "pipeline_outreach_sent_recent"}
    assert windows == {"15m", "1h", "24h", "7d"}
    sources = {dict(k[1])["source"] for k in at_end if k[0] == "pipeline_http_errors_recent"}
    assert len(sources) == 21 and "other" in sources
    total = sum(v for k, v in at_end.items() if k[0] == "pipeline_http_errors_recent" and dict(k[1])["window"] == "7d")
    assert total == sum(range(1, 26))  # folded, never dropped
    assert at_end[("pipeline_conversation_messages_recent",
                   (("channel", "email"), ("direction", "inbound"), ("window", "15m")))] == 2


def test_bad_arguments_exit_2(tmp_path):
    out = tmp_path / "x.om"
    for args in (["--step", "1.5s"], ["--days", "0"], ["--end", "yesterday"], ["--label", "job"]):
        done = cli("--out", str(out), "--database-url", f"sqlite:///{tmp_path / 'none.db'}", *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert "pipeline-exporter backfill:" in done.stderr
    assert not out.exists()
