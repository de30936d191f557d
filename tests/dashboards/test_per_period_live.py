"""Per-day and per-hour bars read against SQL on a real Prometheus with a backfilled history (issue 21).

For the method333 pack and each further pack with such panels (BotFlow, Scraper): its demo
database written as of a moment ``E`` (a multiple of the backfill step, so the backfill's samples
fall on every midnight and every hour), `pipeline-exporter backfill` of the 9 days before ``E``
loaded into a Prometheus's storage with promtool (`tsdb create-blocks-from openmetrics`), then
that Prometheus started, scraping the exporter on the same database every second: a Prometheus
that started a minute ago, with history from the first minute.

Each per-period panel's query then runs as Grafana runs it on a dashboard in UTC: the panel's own
range (``timeFrom`` ``now-7d/d``, ``now-24h/h``) from its rounded start to now, both aligned down
to the step (Grafana's Prometheus data source rounds start and end down to a multiple of the
step, in the dashboard's time zone's offset: 0 for UTC), step = the panel's interval. Every bar
must equal the SQL count (or sum) of the rows whose own timestamp is in its period
``(T, T + P]``, label by label, the current period's bar the count so far: the rows up to ``E``
(the last backfilled sample, which every live scrape repeats, since no row is newer).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pipeline_exporter import demowriter as demos
from pipeline_exporter.packs.method333.demo import build_demo
from tests.dashboards.conftest import DASHBOARDS, REPO, panels_of, substitute
from tests.support import stack
from tests.support.backfill import cli, epoch
from tests.support.procs import require_binary

pytestmark = pytest.mark.e2e

SITES = 2000
STEP = 900            # the backfill's step: 15 minutes, so every hour and midnight is a sample
HISTORY_DAYS = 9      # more than the 7 days the per-day panels show, and the day before the first
PERIOD = {"1d": 86400, "1h": 3600}
TIME_FROM = re.compile(r"^now-(\d+)([dh])/([dh])$")
UNIT = {"d": 86400, "h": 3600}

# Per-period panel -> the rows its counter counts: (pack, table, timestamp column, label columns as
# "label = SQL", value SQL, condition). What each pack's history: says its counter counts.
PERIOD_SQL: dict[tuple[str, str], tuple[str, str, str, tuple[str, ...], str, str]] = {
    ("pipeline-overview", "Outreach sent per day"):
        ("method333", "outreaches", "sent_at", ("channel = channel",), "1", "sent_at IS NOT NULL"),
    ("pipeline-overview", "Replies per day"):
        ("method333", "outreaches", "replied_at", ("channel = channel",), "1", "replied_at IS NOT NULL"),
    ("pipeline-outreach", "Outreach sent per day"):
        ("method333", "outreaches", "sent_at", ("channel = channel",), "1", "sent_at IS NOT NULL"),
    ("pipeline-outreach", "Replies per day"):
        ("method333", "outreaches", "replied_at", ("channel = channel",), "1", "replied_at IS NOT NULL"),
    ("pipeline-outreach", "Sales per day"):
        ("method333", "sales", "sold_at", ("channel = channel",), "1", "1"),
    ("pipeline-outreach", "Revenue per day"):
        ("method333", "sales", "sold_at", ("channel = channel",), "amount_usd", "1"),
    ("pipeline-outreach", "LLM cost per day"):
        ("method333", "llm_usage", "created_at", ("stage = stage",), "cost_usd", "1"),
    ("pipeline-compliance", "Opt-outs per day"):
        ("method333", "opt_outs", "created_at", ("channel = channel",), "1", "1"),
    ("pipeline-compliance", "LLM tokens per day"):
        ("method333", "llm_usage", "created_at", ("provider = provider",), "prompt_tokens + completion_tokens", "1"),
    ("pipeline-health", "Status changes per day"):
        ("method333", "site_status_history", "changed_at", ("to_status = to_status",), "1", "1"),
    ("pipeline-health", "Status changes per hour"):
        ("method333", "site_status_history", "changed_at", ("to_status = to_status",), "1", "1"),
    ("pipeline-conversations", "Inbound messages per day"):
        ("method333", "conversations", "created_at", ("channel = channel",), "1", "direction = 'inbound'"),
    ("pipeline-system", "Cron runs per hour"):
        ("method333", "cron_job_logs", "finished_at", ("status = status",), "1",
         "status <> 'running' AND finished_at IS NOT NULL"),
    ("pipeline-system", "HTTP 403 / 429 / 503 per hour"):
        ("method333", "http_errors", "created_at", ("source = source", "code = CAST(status_code AS TEXT)"), "1",
         "status_code IN (403, 429, 503)"),
    ("botflow-bot-performance", "Tokens per day, by bot"):
        ("botflow", "conversation_metrics", "created_at",
         ("bot = (SELECT name FROM bots WHERE bots.id = conversation_metrics.bot_id)",), "tokens_used", "1"),
    ("scraper-analytics", "Jobs per hour, by site"):
        ("scraper", "jobs", "scraped_at", ("site = site_name",), "1", "1"),
    ("scraper-analytics", "Errors per hour, by type"):
        ("scraper", "scrape_errors", "created_at", ("error_type = COALESCE(error_type, 'unknown')",), "1", "1"),
}


@dataclass
class History:
    prom: stack.Service
    db: Path
    end: int  # E: the demo's now and the backfill's last step


BOARDS = {path.stem: json.loads(path.read_text(encoding="utf-8"))
          for path in [*sorted(DASHBOARDS.glob("*.json")), *sorted((REPO / "grafana" / "packs").glob("*/*.json"))]}


def counter_panels() -> dict[tuple[str, str], dict[str, Any]]:
    """Every per-period panel (main dashboards and packs') whose bars are a counter's differences."""
    return {(uid, panel["title"]): panel for uid, board in BOARDS.items()
            for panel in panels_of(board) if panel.get("timeFrom") and "last_over_time(" in json.dumps(panel)}


def newest_row(db: Path, source: str) -> float:
    """The latest timestamp among the rows the source's panels count (none may be newer than E)."""
    newest = 0.0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for pack, table, column, *_ in set(PERIOD_SQL.values()):
            if pack != source:
                continue
            for (text,) in conn.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                newest = max(newest, epoch(text) or 0.0)
    return newest


@contextmanager
def backfilled_and_live(source: str, root: Path) -> Iterator[History]:
    """The source's demo as of E, its backfill loaded by promtool, then a Prometheus scraping it live."""
    promtool = require_binary("promtool")
    require_binary("prometheus")
    db = root / "db" / "sites.db"
    end = int(time.time()) // STEP * STEP
    args, extra = [], []
    if source == "method333":
        build_demo(db, sites=SITES, seed=21, files_dir=root, now=datetime.fromtimestamp(end, timezone.utc))
    else:
        db.parent.mkdir(parents=True)
        demos.build(source, db, seed=21, now=end)
        config = root / f"{source}.yml"
        config.write_text(f"packs: [{source}]\ncollectors: {{host: false}}\n")
        args, extra = ["--config.file", str(config)], ["--config.file", str(config)]
    assert newest_row(db, source) <= end, "the demo wrote rows after its own now"
    with ExitStack() as stack_:
        exporter = stack_.enter_context(stack.exporter(root, db, extra=extra))
        out = root / "history.om"
        done = cli("--days", str(HISTORY_DAYS), "--step", f"{STEP}s", "--end", str(end), "--out", str(out),
                   "--database-url", f"sqlite:///{db}", "--job", "pipeline-exporter",
                   "--instance", exporter.address, *args, cwd=root)
        assert done.returncode == 0, done.stderr
        blocks = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                                 str(out), str(root / "prometheus-data")], capture_output=True, text=True, timeout=300)
        assert blocks.returncode == 0, blocks.stdout + blocks.stderr
        prom = stack_.enter_context(stack.prometheus(root, exporter.address, interval="1s",
                                                     overrides={"rule_files": []}))
        stack.wait_for_scrapes(prom, 3, timeout=60)
        yield History(prom, db, end)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Iterator[Callable[[str], History]]:
    """One backfilled, live stack per source (the method333 pack or a further pack), made on first use."""
    made: dict[str, History] = {}
    with ExitStack() as stacks:
        def get(source: str) -> History:
            if source not in made:
                root = tmp_path_factory.mktemp(f"per-period-{source}")
                made[source] = stacks.enter_context(backfilled_and_live(source, root))
            return made[source]
        yield get


def grafana_range(panel: dict[str, Any], now: float) -> tuple[int, int, int]:
    """start, end, step of the range query Grafana sends for the panel on a UTC dashboard."""
    match = TIME_FROM.match(panel["timeFrom"])
    assert match, panel["timeFrom"]
    step = PERIOD[panel["interval"]]
    rounding = UNIT[match[3]]
    start = (now - int(match[1]) * UNIT[match[2]]) // rounding * rounding
    return int(start // step * step), int(now // step * step), step


def sql_periods(db: Path, spec: tuple[str, str, str, tuple[str, ...], str, str], start: int,
                step: int, count: int) -> dict[tuple, list[float]]:
    """labels -> the value of each period (start + k step, start + (k + 1) step], from the rows."""
    _, table, column, labels, value, condition = spec
    names = [label.split(" = ", 1)[0] for label in labels]
    exprs = ", ".join(label.split(" = ", 1)[1] for label in labels)
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * count)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for *keys, text, amount in conn.execute(f"SELECT {exprs}, {column}, {value} FROM {table} WHERE {condition}"):
            moment = epoch(text)
            assert moment is not None
            if moment <= start:
                continue
            index = math.ceil((moment - start) / step) - 1
            assert index < count, (table, text)
            out[tuple(sorted(zip(names, map(str, keys))))][index] += float(amount)
    return out


def bars(history: History, expr: str, start: int, end: int, step: int) -> dict[tuple, list[float | None]]:
    body = history.prom.get("/api/v1/query_range", query=substitute(expr), start=str(start), end=str(end),
                            step=str(step)).json()
    assert body["status"] == "success", body.get("error")
    count = (end - start) // step + 1
    out: dict[tuple, list[float | None]] = {}
    for series in body["data"]["result"]:
        labels = tuple(sorted(series["metric"].items()))
        values: list[float | None] = [None] * count
        for stamp, value in series["values"]:
            values[(int(float(stamp)) - start) // step] = float(value)
        out[labels] = values
    return out


def test_every_counter_period_panel_is_checked_against_sql():
    assert sorted(counter_panels()) == sorted(PERIOD_SQL), "a per-period panel without its SQL here"
    assert all(board["timezone"] == "utc" for board in BOARDS.values())


def mismatches(history: History, panel: dict[str, Any], expr: str,
               spec: tuple[str, str, str, tuple[str, ...], str, str]) -> list[str]:
    """Every label set whose bars differ from the SQL of their periods (missing bars included)."""
    now = int(time.time())
    start, end, step = grafana_range(panel, now)
    count = (end - start) // step + 1
    assert count == {"1d": 8, "1h": 25}[panel["interval"]], "today (this hour) and the 7 days (24 hours) before"
    expected = sql_periods(history.db, spec, start, step, count)
    assert sum(1 for values in expected.values() for value in values[:-1] if value) >= 2, \
        f"{panel['title']}: fewer than two periods with rows: nothing to compare"
    got = bars(history, expr, start, end, step)
    since = f"{datetime.fromtimestamp(start, timezone.utc):%Y-%m-%d %H:%M} UTC"
    out = [f"no bars for {dict(labels)}" for labels in set(expected) - set(got)]
    for labels, values in got.items():
        want = expected.get(labels, [0.0] * count)
        if None in values or values != pytest.approx(want, rel=1e-9, abs=1e-6):
            out.append(f"{dict(labels)} from {since}: bars {values}, SQL {want}")
    return out


@pytest.mark.parametrize("uid, title", sorted(PERIOD_SQL), ids=lambda v: str(v))
def test_each_bar_equals_the_sql_count_of_its_period(history, uid, title):
    """Bars of the panel's days (hours) from the backfill, the last one today (this hour) so far."""
    panel = counter_panels()[(uid, title)]
    (target,) = panel["targets"]
    spec = PERIOD_SQL[(uid, title)]
    bad = mismatches(history(spec[0]), panel, target["expr"], spec)
    assert not bad, f"{uid} / {title}:\n" + "\n".join(bad)


def test_the_check_refuses_what_the_panels_drew_before(history):
    """Guard against a vacuous pass: the windowed gauge (backfilled too) sampled at each midnight, what
    the per-day panels drew before issue 21, is the day that ENDS there: every bar a day late."""
    key = ("pipeline-compliance", "Opt-outs per day")
    old = 'sum by (channel) (pipeline_opt_outs_recent{job="pipeline-exporter", window="24h"})'
    assert mismatches(history("method333"), counter_panels()[key], old, PERIOD_SQL[key])
