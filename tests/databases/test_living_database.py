"""The life of a pipeline database, against the real exporter process on SQLite, PostgreSQL and MariaDB.

A demo database of now; the exporter runs the default pack with short intervals, settle and recount
times (a copy of the pack with only those changed). Then the pipeline lives: the oldest half of every
append-only table is pruned, failed SMS are re-queued, messages are classified, cents-valued sales and
other events are added, the exporter is reloaded (SIGHUP) and runs past a recount. No ``_total``
series may be lower than before, the added events are counted exactly once, and nothing else moves.
Then the exporter restarts, and every windowed gauge equals a plain count of the rows over the same
window, computed here in Python from the rows' own timestamps.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml

from pipeline_exporter.packs.method333.demo import build_demo, build_demo_url
from tests.support import stack
from tests.support.paths import REPO
from tests.support.procs import wait_for
from tests.support.servers import connect_server, unique

PACK = REPO / "pipeline_exporter" / "packs" / "method333" / "pack.yaml"
PRUNED = ("site_status_history", "sales", "conversations", "opt_outs", "llm_usage", "http_errors", "cron_job_logs")
NEW = "living"  # the label value of every event the test adds, so its increments stand apart

# family -> (table, time column, {label: column}, summed column or None, extra SQL condition)
WINDOWED = {
    "pipeline_http_errors_recent": ("http_errors", "created_at",
                                    {"source": "source", "stage": "stage", "code": "status_code"}, None, ""),
    "pipeline_opt_outs_recent": ("opt_outs", "created_at", {"channel": "channel"}, None, ""),
    "pipeline_sales_recent": ("sales", "sold_at", {"channel": "channel"}, None, ""),
    "pipeline_sales_revenue_usd_recent": ("sales", "sold_at", {"channel": "channel"}, "amount_usd", ""),
    "pipeline_conversation_messages_recent": ("conversations", "created_at",
                                              {"channel": "channel", "direction": "direction"}, None, ""),
    "pipeline_site_transitions_recent": ("site_status_history", "changed_at", {"to_status": "to_status"}, None, ""),
    "pipeline_outreach_sent_recent": ("outreaches", "sent_at", {"channel": "channel", "status": "status"}, None, ""),
    "pipeline_outreach_replies_recent": ("outreaches", "replied_at", {"channel": "channel"}, None, ""),
    "pipeline_cron_job_runs_recent": ("cron_job_logs", "finished_at", {"cron_job": "job_name", "status": "status"},
                                      None, " AND status <> 'running'"),
}
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 604800}


class Backend:
    """A demo database of now on one kind of database, and a writer connection to it."""

    def __init__(self, kind: str, url: str, engine: sqlalchemy.Engine):
        self.kind, self.url, self.engine = kind, url, engine

    def stamp(self, moment: float) -> Any:
        """A timestamp value as the pipeline stores it on this database."""
        aware = datetime.fromtimestamp(moment, timezone.utc).replace(microsecond=0)
        if self.kind == "sqlite":
            return aware.strftime("%Y-%m-%d %H:%M:%S")
        return aware if self.kind == "postgresql" else aware.replace(tzinfo=None)

    def execute(self, sql: str, rows: list[dict] | dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sqlalchemy.text(sql), rows or {})

    def rows(self, sql: str) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(sql))]


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if request.param == "sqlite":
        path = tmp_path / "sites.db"
        build_demo(path, sites=600, seed=11, now=now)
        engine = sqlalchemy.create_engine(f"sqlite:///{path}", poolclass=sqlalchemy.pool.NullPool)
        yield Backend("sqlite", f"sqlite:///{path}", engine)
        engine.dispose()
        return
    server = connect_server(request.param)
    name = unique("pe_living")
    server.create_database(name)
    engine = sqlalchemy.create_engine(server.url(name), poolclass=sqlalchemy.pool.NullPool)
    try:
        build_demo_url(server.url(name), sites=600, seed=11, now=now)
        yield Backend(request.param, server.url(name), engine)
    finally:
        engine.dispose()
        server.drop_database(name)
        server.admin.dispose()


def fast_pack(tmp: Path) -> Path:
    """The default pack with its counting and windowed queries every 1 s, events settling after 2 s and
    recounts every 3 s."""
    pack_data = yaml.safe_load(PACK.read_text())
    # Only the counting and windowed queries (what this test checks) run every second: the heavy
    # gauges (sorts for the exact percentiles, cron's correlated reads) at 1 s saturated a 2-core
    # machine's PostgreSQL and timed out. They keep the pack's own intervals.
    for query in pack_data["queries"].values():
        if "incremental" in query or "windows" in query:
            query["interval"] = "1s"
        if "incremental" in query:
            query["incremental"].update(full_every="3s", settle_after="2s")
    pack = tmp / "fast-pack.yaml"
    pack.write_text(yaml.safe_dump(pack_data, sort_keys=False))
    config = tmp / "config.yml"
    config.write_text(f"packs: [{pack}]\ndefaults: {{timeout: 20s}}\n"
                      "checks: {size_interval: 1s, host_interval: 1s}\n")
    return config


def counters(service: stack.Service) -> dict[tuple, float]:
    return {key: value for key, value in service.samples().items() if key[0].endswith("_total")
            and key[0].startswith("pipeline_") and not key[0].startswith("pipeline_exporter_")}


def live(backend: Backend, now: float) -> dict[str, int]:
    """Prune, re-queue, classify; add events under the label value NEW. Returns what was added."""
    for table in PRUNED:
        (low, high), = backend.rows(f"SELECT MIN(id), MAX(id) FROM {table}")
        backend.execute(f"DELETE FROM {table} WHERE id <= :middle", {"middle": (low + high) // 2})
    backend.execute("UPDATE outreaches SET status = 'queued', sent_at = NULL, delivered_at = NULL "
                    "WHERE channel = 'sms' AND status = 'failed'")
    backend.execute("UPDATE conversations SET sentiment = 'neutral' WHERE direction = 'inbound' AND sentiment IS NULL")
    at = backend.stamp(now - 30)
    backend.execute("INSERT INTO http_errors (source, stage, status_code, url, created_at) "
                    "VALUES (:s, 'fetch', 403, 'https://x.example/p', :t)", [{"s": NEW, "t": at}] * 7)
    backend.execute("INSERT INTO sales (site_id, channel, amount_usd, sold_at) VALUES (1, :c, :a, :t)",
                    [{"c": NEW, "a": a, "t": at} for a in (0.1, 0.2, 19.99)])
    backend.execute("INSERT INTO opt_outs (channel, contact, created_at) VALUES (:c, 'x', :t)",
                    [{"c": NEW, "t": at}] * 2)
    backend.execute("INSERT INTO conversations (site_id, channel, direction, is_read, sender, body, created_at) "
                    "VALUES (1, :c, 'inbound', 0, 'jane@example.com', 'call me', :t)", [{"c": NEW, "t": at}] * 4)
    backend.execute("INSERT INTO llm_usage (stage, provider, model, prompt_tokens, completion_tokens, cost_usd, "
                    "created_at) VALUES ('scoring', :p, 'm', 10, 5, :c, :t)",
                    [{"p": NEW, "c": c, "t": at} for c in (0.000123, 0.1)])
    backend.execute("INSERT INTO site_status_history (site_id, from_status, to_status, changed_at) "
                    "VALUES (1, 'found', :s, :t)", {"s": NEW, "t": at})
    backend.execute("INSERT INTO outreaches (site_id, channel, contact, status, created_at, sent_at) "
                    "VALUES (1, :c, 'jane@example.com', 'sent', :t, :t)", {"c": NEW, "t": at})
    return {"errors": 7, "sales": 3, "opt_outs": 2, "messages": 4, "llm": 2}


EXPECTED_GROWTH = {
    ("pipeline_http_errors_total", (("code", "403"), ("source", NEW), ("stage", "fetch"))): 7,
    ("pipeline_sales_total", (("channel", NEW),)): 3,
    ("pipeline_sales_revenue_usd_total", (("channel", NEW),)): 20.29,
    ("pipeline_opt_outs_total", (("channel", NEW),)): 2,
    ("pipeline_conversation_messages_total", (("channel", NEW), ("direction", "inbound"))): 4,
    ("pipeline_llm_requests_total", (("model", "m"), ("provider", NEW), ("stage", "scoring"))): 2,
    ("pipeline_llm_cost_usd_total", (("model", "m"), ("provider", NEW), ("stage", "scoring"))): 0.100123,
    ("pipeline_llm_tokens_total", (("model", "m"), ("provider", NEW), ("stage", "scoring"), ("type", "prompt"))): 20,
    ("pipeline_llm_tokens_total", (("model", "m"), ("provider", NEW), ("stage", "scoring"),
                                   ("type", "completion"))): 10,
    ("pipeline_site_transitions_total", (("to_status", NEW),)): 1,
    ("pipeline_outreach_events_total", (("channel", NEW), ("event", "created"))): 1,
    ("pipeline_outreach_events_total", (("channel", NEW), ("event", "sent"))): 1,
    ("pipeline_outreach_events_total", (("channel", NEW), ("event", "delivered"))): 0,
    ("pipeline_outreach_events_total", (("channel", NEW), ("event", "replied"))): 0,
}


def epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace(" ", "T")).replace(
            tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def plain_count(backend: Backend, family: str, now: float) -> dict[tuple, float]:
    """The windowed family computed here: rows fetched plainly, timestamps parsed in Python."""
    table, column, labels, summed, condition = WINDOWED[family]
    columns = list(labels.values()) + [column] + ([summed] if summed else [])
    counts: Counter = Counter()
    groups = set()
    for row in backend.rows(f"SELECT {', '.join(columns)} FROM {table} WHERE {column} IS NOT NULL{condition}"):
        ts = epoch(row[len(labels)])
        if ts is None or ts < now - WINDOWS["7d"]:
            continue
        group = tuple((name, str(value)) for name, value in zip(labels, row))
        groups.add(group)
        amount = Decimal(str(row[-1])) if summed else 1
        for window, seconds in WINDOWS.items():
            if ts >= now - seconds:
                counts[group + (("window", window),)] += amount
    return {tuple(sorted(g + (("window", w),))): float(counts[g + (("window", w),)]) for g in groups for w in WINDOWS}


def test_prune_requeue_classify_reload_recount_then_restart(backend: Backend, tmp_path: Path) -> None:
    config = fast_pack(tmp_path)
    with stack.exporter(tmp_path, None, url=backend.url, config=config) as service:
        wait_for(lambda: service.value("pipeline_sites_created_total"), timeout=20, what="the first counts")
        before = counters(service)
        assert before, "the demo feeds the counters"
        live(backend, time.time())
        os.kill(service.proc.pid, signal.SIGHUP)
        wait_for(lambda: 'msg="configuration reloaded"' in service.log_text(), timeout=20, what="the reload")
        wait_for(lambda: all(counters(service).get(key) is not None for key in EXPECTED_GROWTH),
                 timeout=20, what="the new events")
        time.sleep(4)  # past a recount (every 3 s) and the settling of the new events (2 s)
        after = counters(service)
        for key, value in before.items():
            assert after.get(key, -1) >= value, (key, value, after.get(key))
        for key, growth in EXPECTED_GROWTH.items():
            assert after[key] - before.get(key, 0) == pytest.approx(growth, abs=1e-9), key
            assert after[key] == growth  # exactly, to the cent: nothing under NEW existed before
        unchanged = {key for key in before if key not in EXPECTED_GROWTH}
        moved = {key: (before[key], after[key]) for key in unchanged if after[key] != before[key]}
        assert not moved, f"prune, re-queue, classify, reload or recount moved counters: {moved}"
        assert 'msg="job failing"' not in service.log_text() and 'msg="job crashed"' not in service.log_text()
        ups = {key: value for key, value in service.samples().items() if key[0] == "pipeline_exporter_query_up"}
        assert ups and all(value == 1 for value in ups.values()), ups

    with stack.exporter(tmp_path, None, url=backend.url) as service:  # a restart, on the shipped pack
        def consistent() -> dict | None:
            first, second = service.samples(), service.samples()
            return first if first == second else None  # no run landed between the two reads

        samples = wait_for(consistent, timeout=20, what="a quiet moment between runs")
        for family in WINDOWED:
            query = {"pipeline_sales_revenue_usd_recent": "sales_recent", "pipeline_outreach_sent_recent":
                     "outreach_sent_recent", "pipeline_outreach_replies_recent": "outreach_replies_recent",
                     "pipeline_http_errors_recent": "http_errors_recent", "pipeline_opt_outs_recent":
                     "opt_outs_recent", "pipeline_sales_recent": "sales_recent",
                     "pipeline_conversation_messages_recent": "conversation_messages_recent",
                     "pipeline_site_transitions_recent": "site_transitions_recent",
                     "pipeline_cron_job_runs_recent": "cron_job_runs_recent"}[family]
            ran_at = samples[("pipeline_exporter_query_last_success_timestamp_seconds", (("query", query),))]
            got = {labels: value for (name, labels), value in samples.items() if name == family}
            want = plain_count(backend, family, ran_at)
            assert got.keys() == want.keys(), family
            for key, value in want.items():
                assert got[key] == pytest.approx(value, abs=1e-6), (family, key)
        assert samples[("pipeline_http_errors_recent", (("code", "403"), ("source", NEW), ("stage", "fetch"),
                                                        ("window", "15m")))] == 7
