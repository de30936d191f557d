"""History backfill end to end: demo database -> `pipeline-exporter backfill` -> promtool blocks ->
a real Prometheus, whose daily differences must equal the rows of each day and whose values at the
cut-over instant must equal what the live exporter reports."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter import backfill
from exporter.app import Exporter, families
from exporter.demo import build_demo
from tests.support.paths import DDL, REPO
from tests.support.procs import free_port, require_binary, running, wait_for

DAY = 86400
DAYS = 30
INSTANCE = "127.0.0.1:9333"
TARGET = {"job": "pipeline-exporter", "instance": INSTANCE}


# --------------------------------------------------------------------------- helpers


def epoch(text: str | None) -> float | None:
    """Unix seconds of a stored timestamp (both forms), parsed in Python, independently of SQL."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "exporter", "backfill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def live_counters(db: Path, now: float) -> dict[tuple, float]:
    """The live exporter's backfillable counters, in process with its clock at ``now``."""
    exporter = Exporter(None, {"database_url": f"sqlite:///{db}", "coverage": db.parent / "none.json",
                               "e2e_report": db.parent / "none.xml"}, clock=lambda: now)
    exporter.pipeline.scheduler.run_once()
    try:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in families(exporter.registry).values() for s in family.samples
                if s.name in backfill.COUNTERS}
    finally:
        exporter.pipeline.db.close()


class Prom:
    def __init__(self, url: str):
        self.url = url

    def api(self, path: str, **params: Any) -> Any:
        body = requests.get(self.url + path, params=params, timeout=10).json()
        assert body["status"] == "success", f"{params}: {body.get('error')}"
        return body["data"]["result"]

    def daily(self, expr: str, end: int, first: int = 0) -> dict[tuple, list[float]]:
        """Values of ``expr`` at the DAYS + 1 day boundaries ending at ``end``, by labels (0.0 before ``first``)."""
        result = self.api("/api/v1/query_range", query=expr, start=end - (DAYS - first) * DAY, end=end,
                          step=f"{DAY}s")
        out = {}
        for series in result:
            stamps = [int(float(t)) for t, _ in series["values"]]
            assert stamps == [end - (DAYS - i) * DAY for i in range(first, DAYS + 1)], f"{expr}: gaps"
            # Only the labels that tell the series apart: not the name, the target or the selected event.
            labels = {k: v for k, v in series["metric"].items()
                      if k not in ("__name__", "job", "instance", "event")}
            out[tuple(sorted(labels.items()))] = [0.0] * first + [float(v) for _, v in series["values"]]
        return out


def per_day(rows: list[tuple], end: int, key: Callable[[tuple], tuple]) -> dict[tuple, list[float]]:
    """Rows (…, timestamp text, value): the sum in each day (a, b] of the DAYS days before ``end``,
    plus the sum of everything up to the first boundary as element 0."""
    start = end - DAYS * DAY
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * (DAYS + 1))
    for row in rows:
        ts, value = epoch(row[-2]), row[-1]
        assert ts is not None and ts <= end
        index = 0 if ts <= start else -int(-(ts - start) // DAY)  # the day whose end b has a < ts <= b
        out[key(row)][index] += value
    return out


def compare(actual: dict[tuple, list[float]], expected: dict[tuple, list[float]], what: str,
            increments: bool = True, rel: float = 1e-9) -> None:
    """Day-by-day increments (and the level at the first boundary) of Prometheus vs the rows."""
    assert set(expected) <= set(actual), f"{what}: series missing in Prometheus: {set(expected) - set(actual)}"
    for key, values in actual.items():
        want = expected.get(key, [0.0] * (DAYS + 1))
        got = [values[0]] + [b - a for a, b in zip(values, values[1:])] if increments else values
        if not increments:
            want = [0.0] + want[1:]  # increase() windows hold nothing of before the first boundary
            got = [0.0] + got[1:]
        assert got == pytest.approx(want, rel=rel, abs=1e-6), f"{what} {dict(key)}"


# --------------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    promtool = require_binary("promtool")
    prometheus = require_binary("prometheus")
    root = tmp_path_factory.mktemp("backfill")
    end = int(time.time()) - 600  # a cut-over instant a little in the past, known to the test
    db = root / "db" / "sites.db"
    build_demo(db, sites=2000, seed=333, now=datetime.fromtimestamp(end, timezone.utc))
    out = root / "history.om"
    done = cli("--days", str(DAYS), "--step", "1h", "--end", str(end), "--out", str(out),
               "--database-url", f"sqlite:///{db}", "--job", TARGET["job"], "--instance", INSTANCE, cwd=root)
    assert done.returncode == 0, done.stderr
    assert out.read_text().endswith("\n# EOF\n")
    data = root / "prometheus-data"
    blocks = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                             str(out), str(data)], capture_output=True, text=True, timeout=60)
    assert blocks.returncode == 0, blocks.stdout + blocks.stderr
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")  # no targets: only the backfilled blocks
    port = free_port()
    log = root / "prometheus.log"
    # Retention counts back from the newest block: 30 days of history need more than the 15d default.
    with running([prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
                  "--storage.tsdb.retention.time=400d", f"--web.listen-address=127.0.0.1:{port}"], log, cwd=root):
        prom = Prom(f"http://127.0.0.1:{port}")
        try:
            wait_for(lambda: requests.get(prom.url + "/-/ready", timeout=2).status_code == 200,
                     timeout=30, what="prometheus")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
        yield {"prom": prom, "db": db, "end": end, "out": out, "stderr": done.stderr}


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


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
        expected = per_day(rows(db, sql), end, key)
        assert sum(sum(v[1:]) for v in expected.values()) > 0, f"{selector}: the demo has no rows in the window"
        compare(prom.daily(f"{agg}({selector})", end), expected, f"{agg}({selector})")
        # increase() over each day: the window [b - 1d, b] holds 25 hourly samples spanning exactly one
        # day, so Prometheus does not extrapolate and the result is exact too (the first boundary has
        # no day of data before it).
        compare(prom.daily(f"{agg}(increase({selector}[1d]))", end, first=1), expected,
                f"{agg}(increase({selector}[1d]))", increments=False)


def test_values_at_the_cut_over_equal_the_live_exporter(stack):
    prom, db, end = stack["prom"], stack["db"], stack["end"]
    backfilled = {}
    for r in prom.api("/api/v1/query", query='{__name__=~"pipeline_.+_total"}', time=end):
        labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")}
        backfilled[(r["metric"]["__name__"], tuple(sorted(labels.items())))] = float(r["value"][1])
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
    fams = list(text_string_to_metric_families(text))  # the strict OpenMetrics parser accepts it
    assert [f.name for f in fams] == [n.removesuffix("_total") for n in backfill.COUNTERS]
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


def test_bad_arguments_exit_2(tmp_path):
    out = tmp_path / "x.om"
    for args in (["--step", "1.5s"], ["--days", "0"], ["--end", "yesterday"], ["--label", "job"]):
        done = cli("--out", str(out), "--database-url", f"sqlite:///{tmp_path / 'none.db'}", *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert "pipeline-exporter backfill:" in done.stderr
    assert not out.exists()
