"""True numbers (issue 21): exact percentiles computed in SQL, recent-only cron durations and
distinct conversations, on two data shapes whose spreads differ from the demo's, on SQLite,
PostgreSQL and MariaDB.

The reference is the nearest-rank percentile of docs/metrics.md computed here in Python over the
very values the rows were generated from: the p-th percentile of n values is the value at rank
ceil(p/100 * n) in ascending order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from pipeline_exporter import packloader
from tests.support.servers import NOW_TS, SERVERS, connect_server, make_exporter, samples, unique

HOUR, DAY = 3600, 86400
CHANNELS = ("email", "sms", "form")
PROCESSING = ("found", "scraped", "scored")
JOBS = ("scrapeSites", "sendOutreach")


def nearest_rank(values: list[float], percentile: int) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(percentile / 100 * len(ordered)) - 1]


def _shape(name: str, seed: int) -> dict[str, Any]:
    """Generated values: reply delays by channel, status ages by status, run durations by job and age."""
    rng = random.Random(seed)
    if name == "minutes":  # tight: replies within minutes, fresh backlogs, short runs that regressed lately
        delay = lambda: round(rng.lognormvariate(math.log(20 * 60), 1.0))  # noqa: E731
        age = lambda: rng.randint(60, 2 * DAY)  # noqa: E731
        duration = lambda ago: int(1000 * (20 if ago < DAY else 8 if ago < 7 * DAY else 2) * rng.uniform(0.5, 1.5))  # noqa: E731
    else:  # "days": bimodal replies (hours or days), long-tailed backlogs, heavy-tailed runs
        delay = lambda: (rng.randint(HOUR, 3 * HOUR) if rng.random() < 0.6  # noqa: E731
                         else rng.randint(2 * DAY, 9 * DAY))
        age = lambda: round(rng.expovariate(1 / (10 * DAY))) + 1  # noqa: E731
        duration = lambda ago: int(1000 * rng.paretovariate(1.5) * (60 if ago < 7 * DAY else 5))  # noqa: E731
    return {
        "delays": {c: [delay() for _ in range(rng.randint(150, 400))] for c in CHANNELS},
        "ages": {s: [age() for _ in range(rng.randint(150, 400))] for s in PROCESSING},
        # (seconds before now it finished, duration in ms): 30 days of runs, more often lately
        "runs": {j: [(ago, duration(ago)) for ago in sorted(rng.randint(1, 30 * DAY) for _ in range(600))]
                 for j in JOBS},
        # site -> channels it talked on (many sites on two or three channels)
        "talks": {site: rng.sample(CHANNELS, rng.randint(1, 3)) for site in range(1, 301)},
    }


def _rows(shape: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    now = int(NOW_TS)
    sites = [{"id": i, "domain": f"s{i}.example", "status": "contacted", "status_changed_at": now - DAY,
              "created_at": now - 30 * DAY, "updated_at": now - DAY} for i in range(1, 301)]
    next_id = 301
    for status, ages in shape["ages"].items():
        for value in ages:
            sites.append({"id": next_id, "domain": f"s{next_id}.example", "status": status,
                          "status_changed_at": now - value, "created_at": now - 40 * DAY, "updated_at": now})
            next_id += 1
    outreaches = []
    for channel, delays in shape["delays"].items():
        for value in delays:
            sent = now - 20 * DAY + len(outreaches) * 60
            outreaches.append({"id": len(outreaches) + 1, "site_id": 1 + len(outreaches) % 300, "channel": channel,
                               "contact": "x", "status": "delivered", "created_at": sent, "sent_at": sent,
                               "replied_at": sent + value})
    conversations = [{"id": i + 1, "site_id": site, "channel": channel, "direction": "inbound", "is_read": 0,
                      "created_at": now - DAY}
                     for i, (site, channel) in enumerate((s, c) for s, cs in shape["talks"].items() for c in cs)]
    cron_jobs = [{"name": j, "description": j, "interval_seconds": 3600, "enabled": 1} for j in JOBS]
    logs = [{"id": 0, "job_name": job, "started_at": now - ago - ms // 1000, "finished_at": now - ago,
             "status": "success", "duration_ms": ms}
            for job, runs in shape["runs"].items() for ago, ms in runs]
    logs.sort(key=lambda row: row["started_at"])
    for i, row in enumerate(logs):
        row["id"] = i + 1
    return {"sites": sites, "outreaches": outreaches, "conversations": conversations, "cron_jobs": cron_jobs,
            "cron_job_logs": logs}


TIMES = {"status_changed_at", "created_at", "updated_at", "sent_at", "replied_at", "started_at", "finished_at"}


def load(url: str, dialect: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    """The method333 schema and the rows: timestamps as UTC text (SQLite), aware (PostgreSQL), naive UTC (MariaDB)."""
    def stamp(t: int) -> Any:
        moment = datetime.fromtimestamp(t, timezone.utc)
        if dialect == "sqlite":
            return moment.strftime("%Y-%m-%d %H:%M:%S")
        return moment if dialect == "postgresql" else moment.replace(tzinfo=None)

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for statement in packloader.schema_statements(packloader.folder("method333"), dialect):
            conn.exec_driver_sql(statement)
        for table, table_rows in rows.items():
            columns = list(table_rows[0])
            target = sqlalchemy.table(table, *map(sqlalchemy.column, columns))
            conn.execute(target.insert(), [{c: stamp(v) if c in TIMES else v for c, v in row.items()}
                                           for row in table_rows])
    engine.dispose()


@pytest.fixture(params=["sqlite", *SERVERS])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(dialect, URL of an empty database) on SQLite and each real server."""
    if request.param == "sqlite":
        yield "sqlite", f"sqlite:///{tmp_path / 'sites.db'}"
        return
    server = connect_server(request.param)
    name = unique("pe_true")
    server.create_database(name)
    try:
        yield request.param, server.url(name)
    finally:
        server.drop_database(name)
        server.admin.dispose()


@pytest.mark.parametrize("shape_name", ["minutes", "days"])
def test_percentiles_recent_durations_and_distinct_conversations_equal_sql(
        backend: tuple[str, str], shape_name: str, tmp_path: Path) -> None:
    dialect, url = backend
    shape = _shape(shape_name, seed=21)
    load(url, dialect, _rows(shape))
    exporter = make_exporter(url, tmp_path)
    try:
        exporter.pipeline.scheduler.run_once()
        failed = {s.info.name: s.error for s in exporter.snapshot.states() if s.error and s.info.kind == "query"}
        assert not failed
        got = samples(exporter)
    finally:
        exporter.stop()

    def value(metric: str, **labels: str) -> float:
        return got[(metric, tuple(sorted(labels.items())))]

    for percentile in (50, 90):
        p = str(percentile)
        for channel, delays in shape["delays"].items():
            assert value("pipeline_outreach_reply_delay_percentile_seconds", channel=channel, percentile=p) == \
                pytest.approx(nearest_rank(delays, percentile), abs=1e-6)
        for status, ages in shape["ages"].items():
            assert value("pipeline_site_status_age_percentile_seconds", status=status, percentile=p) == \
                pytest.approx(nearest_rank(ages, percentile), abs=1e-6)
        for job, runs in shape["runs"].items():
            for window, seconds in (("24h", DAY), ("7d", 7 * DAY)):
                recent = [ms / 1000 for ago, ms in runs if ago < seconds]
                assert value("pipeline_cron_job_duration_percentile_seconds", cron_job=job, window=window,
                             percentile=p) == pytest.approx(nearest_rank(recent, percentile), abs=1e-6)
    for job, runs in shape["runs"].items():
        # The duration histogram holds the last 7 days' runs, not every run ever.
        week = [ms / 1000 for ago, ms in runs if ago < 7 * DAY]
        assert value("pipeline_cron_job_duration_seconds_count", cron_job=job) == len(week) < len(runs)
        assert value("pipeline_cron_job_duration_seconds_sum", cron_job=job) == pytest.approx(sum(week))
    talks = shape["talks"]
    assert value("pipeline_conversation_sites") == len(talks)
    per_channel = sum(value("pipeline_conversations", channel=c) for c in CHANNELS)
    assert per_channel == sum(len(cs) for cs in talks.values()) > len(talks)
