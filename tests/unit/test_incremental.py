"""Incremental collection: deltas folded into running totals equal a full recount, and counters never fall."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from pipeline_exporter.app import Exporter, families
from pipeline_exporter.config import load_config
from pipeline_exporter.errors import ConfigError
from tests.support.known_rows import ROWS
from tests.support.sqlite import NOW_TS, ago, build_db

HOUR = 3600


def incremental_metrics() -> dict[str, str]:
    """Every metric the default pack collects incrementally, by family name -> type."""
    config = load_config(None, {"database_url": "sqlite:///unused.db"})
    return {m.name.removesuffix("_total") if m.type == "counter" else m.name: m.type
            for q in config.queries if q.incremental for m in q.metrics}


INCREMENTAL = incremental_metrics()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW_TS):
        self.now = now

    def __call__(self) -> float:
        return self.now


def exporter_on(db: Path, clock, config: Path | None = None) -> Exporter:
    base = db.parent
    return Exporter(config, {"database_url": f"sqlite:///{db}", "coverage": base / "none.json",
                             "e2e_report": base / "none.xml"}, clock=clock)


def samples(exporter: Exporter, names=None) -> dict[tuple, float]:
    """Run every job once; the samples of the incremental metrics (or ``names``)."""
    exporter.pipeline.scheduler.run_once()
    fams = families(exporter.registry)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for name in (names or INCREMENTAL) if name in fams for s in fams[name].samples}


def full_recount(db: Path, now: float, config: Path | None = None, names=None) -> dict[tuple, float]:
    """What a fresh exporter (whose first run is a full recount) reports."""
    return samples(exporter_on(db, lambda: now, config), names)


def assert_same(incremental: dict, full: dict) -> None:
    assert incremental.keys() == full.keys()
    for key, expected in full.items():
        assert incremental[key] == pytest.approx(expected, rel=1e-12), key


def assert_not_lower(before: dict, after: dict, types=INCREMENTAL) -> None:
    """Counter samples present before are present after and not smaller."""
    for (name, labels), value in before.items():
        family = name.removesuffix("_total")
        if types.get(family) == "counter":
            assert (name, labels) in after, (name, labels)
            assert after[(name, labels)] >= value, (name, labels, value, after[(name, labels)])


def insert(db: Path, table: str, rows: list[dict]) -> None:
    conn = sqlite3.connect(db)
    with conn:
        for row in rows:
            conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         list(row.values()))
    conn.close()


def execute(db: Path, sql: str, *params) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(sql, params)
    conn.close()


def new_rows(step: int) -> dict[str, list[dict]]:
    """Rows appended between two cycles, including label values never seen before."""
    return {
        "site_status_history": [{"site_id": 1, "from_status": "found", "to_status": t, "changed_at": ago(10)}
                                for t in ("scraped", "scored", f"new_status_{step}")],
        "llm_usage": [{"stage": "scoring", "provider": "openrouter", "model": "m1", "prompt_tokens": 7,
                       "completion_tokens": 3, "cost_usd": 0.1, "created_at": ago(5)},
                      {"stage": "replies", "provider": "openrouter", "model": f"m{step + 10}", "prompt_tokens": 1,
                       "completion_tokens": 1, "cost_usd": 0.3, "created_at": ago(5)}],
        "http_errors": [{"source": "scraper", "stage": "fetch", "status_code": 403, "url": "u",
                         "created_at": ago(3)},
                        {"source": "zenrows", "stage": "fetch", "status_code": 500 + step, "url": "u",
                         "created_at": ago(2, iso=True)}],
        "opt_outs": [{"channel": "sms", "contact": f"+1555{step}", "created_at": ago(4)}],
        "sales": [{"site_id": 6, "channel": "form", "amount_usd": 0.1 * step + 0.2, "sold_at": ago(4)}],
    }


def test_growing_database_matches_a_full_recount_every_cycle(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    clock = Clock()
    exporter = exporter_on(db, clock)
    previous = samples(exporter)
    assert_same(previous, full_recount(db, clock.now))
    for step in range(1, 6):
        for table, rows in new_rows(step).items():
            insert(db, table, rows)
        # Cron: a run starts (running), an older running run finishes after a newer one started and ended.
        insert(db, "cron_job_logs", [{"job_name": "sendOutreach", "started_at": ago(60), "status": "running"},
                                     {"job_name": "backupDatabase", "started_at": ago(50), "finished_at": ago(40),
                                      "status": "success", "duration_ms": 10_000}])
        execute(db, "UPDATE cron_job_logs SET status = 'success', finished_at = ?, duration_ms = 1 "
                    "WHERE id = (SELECT MIN(id) FROM cron_job_logs WHERE status = 'running')", ago(1))
        clock.now += 60
        current = samples(exporter)
        assert_same(current, full_recount(db, clock.now))
        assert_not_lower(previous, current)
        previous = current


def test_pruned_rows_never_lower_a_counter_and_new_events_still_count_exactly(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    clock = Clock()
    exporter = exporter_on(db, clock)
    before = samples(exporter)
    for table in ("site_status_history", "llm_usage", "http_errors", "opt_outs", "sales", "cron_job_logs"):
        execute(db, f"DELETE FROM {table} WHERE id = (SELECT MIN(id) FROM {table})")
    clock.now += 60
    assert samples(exporter) == before  # deltas only: the deleted rows still count
    clock.now += HOUR
    recounted = samples(exporter)  # the recount finds fewer rows: the totals keep their values
    assert recounted == before
    assert any(recounted[key] > value for key, value in full_recount(db, clock.now).items())
    # One new event per table after the prune rises each counter by exactly that event.
    insert(db, "opt_outs", [{"channel": "sms", "contact": "+1555", "created_at": ago(1)}])
    insert(db, "http_errors", [{"source": "scraper", "stage": "fetch", "status_code": 403, "url": "u",
                                "created_at": ago(1)}])
    clock.now += 60
    after = samples(exporter)
    assert_not_lower(recounted, after)
    grown = {key: after[key] - recounted.get(key, 0) for key in after
             if key[0].endswith("_total") and after[key] != recounted.get(key)}
    assert grown == {("pipeline_opt_outs_total", (("channel", "sms"),)): 1,
                     ("pipeline_http_errors_total", (("code", "403"), ("source", "scraper"), ("stage", "fetch"))): 1}


def test_rows_committed_out_of_key_order_are_counted_at_the_next_run_once(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    clock = Clock()
    exporter = exporter_on(db, clock)
    before = samples(exporter, ["pipeline_opt_outs"])
    base = before[("pipeline_opt_outs_total", (("channel", "sms"),))]
    # Two writers: id 200 commits first, id 150 (allocated earlier) commits a run later.
    insert(db, "opt_outs", [{"id": 200, "channel": "sms", "contact": "a", "created_at": ago(1)}])
    clock.now += 15
    assert samples(exporter, ["pipeline_opt_outs"])[("pipeline_opt_outs_total", (("channel", "sms"),))] == base + 1
    insert(db, "opt_outs", [{"id": 150, "channel": "sms", "contact": "b", "created_at": ago(1)}])
    for _ in range(3):  # counted at the next run, and never again
        clock.now += 15
        assert samples(exporter, ["pipeline_opt_outs"])[("pipeline_opt_outs_total", (("channel", "sms"),))] == base + 2
    clock.now += HOUR  # settled, then recounted: still counted once
    for _ in range(2):
        clock.now += 60
        assert samples(exporter, ["pipeline_opt_outs"])[("pipeline_opt_outs_total", (("channel", "sms"),))] == base + 2


def test_back_dated_ids_are_caught_by_the_full_recount_and_counters_only_rise(tmp_path):
    rows = {table: [{"id": 100 + i, **row} for i, row in enumerate(table_rows)]
            for table, table_rows in ROWS.items() if table in ("site_status_history", "llm_usage", "http_errors",
                                                               "opt_outs", "sales")}
    db = build_db(tmp_path / "sites.db", {**ROWS, **rows})
    clock = Clock()
    exporter = exporter_on(db, clock)
    before = samples(exporter)
    # Committed late with a lower id (PostgreSQL sequences do this), and one in order.
    for table, table_rows in new_rows(1).items():
        insert(db, table, [{"id": 5, **table_rows[0]}] + table_rows[1:])
    clock.now += 60
    between = samples(exporter)
    assert_not_lower(before, between)
    clock.now += HOUR
    after = samples(exporter)
    assert_not_lower(between, after)
    assert_same(after, full_recount(db, clock.now))


def test_a_restart_starts_with_a_full_recount(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    first = exporter_on(db, Clock())
    samples(first)
    insert(db, "site_status_history",
           [{"site_id": 2, "from_status": "scraped", "to_status": "scored", "changed_at": ago(1)}])
    assert_same(samples(exporter_on(db, Clock(NOW_TS + 10))), full_recount(db, NOW_TS + 10))


PACK = """
packs: []
queries:
  events:
    incremental: {key: id, full_every: 1h}
    sql: |
      SELECT channel, COUNT(*) AS n, SUM(amount_usd) AS usd, MAX(id) AS max_key
      FROM sales WHERE id > :last_key GROUP BY channel
    metrics:
      - {name: demo_sales_total, type: counter, help: Sales., labels: [{name: channel, cap: 2}], value: n}
      - {name: demo_usd_total, type: counter, help: Revenue., labels: [{name: channel, cap: 0}], value: usd}
"""


def test_caps_apply_to_the_totals_and_a_value_first_seen_in_a_delta(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(PACK)
    db = build_db(tmp_path / "sites.db", {"sales": [
        {"site_id": 1, "channel": c, "amount_usd": 1.0, "sold_at": ago(1)} for c in ("email", "email", "sms")]})
    clock = Clock()
    exporter = exporter_on(db, clock, config)
    names = ["demo_sales", "demo_usd"]
    types = {"demo_sales": "counter", "demo_usd": "counter"}
    before = samples(exporter, names)
    assert before[("demo_sales_total", (("channel", "email"),))] == 2
    insert(db, "sales", [{"site_id": 1, "channel": c, "amount_usd": 0.1, "sold_at": ago(1)}
                         for c in ("form", "form", "form", "x", "sms")])
    clock.now += 60
    after = samples(exporter, names)
    # The cap admitted email and sms first: form and x, new in the delta, fold into other.
    assert {labels[0][1] for name, labels in after if name == "demo_sales_total"} == {"email", "sms", "other"}
    assert after[("demo_sales_total", (("channel", "other"),))] == 4
    assert after[("demo_usd_total", (("channel", "form"),))] == pytest.approx(0.3)
    assert_not_lower(before, after, types)
    clock.now += HOUR
    # A fresh exporter's cap admits the largest values (email, form); this one keeps what it admitted,
    # as a full-pass exporter running this long would: the totals agree, and so does the uncapped metric.
    recounted, full = samples(exporter, names), full_recount(db, clock.now, config, names)
    assert_same({k: v for k, v in recounted.items() if k[0] == "demo_usd_total"},
                {k: v for k, v in full.items() if k[0] == "demo_usd_total"})
    assert sum(v for k, v in recounted.items() if k[0] == "demo_sales_total") == 8
    assert sum(v for k, v in full.items() if k[0] == "demo_sales_total") == 8


def test_float_rounding_in_a_recount_never_lowers_a_counter(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(PACK)
    db = build_db(tmp_path / "sites.db", {})
    clock = Clock()
    exporter = exporter_on(db, clock, config)
    names, types = ["demo_usd"], {"demo_usd": "counter"}
    previous = samples(exporter, names)
    for _ in range(30):
        # Sums of several rows per delta add up in another order than one SUM over the table.
        insert(db, "sales", [{"site_id": 1, "channel": "email", "amount_usd": usd, "sold_at": ago(1)}
                             for usd in (0.1, 0.7, 1 / 3, 123.45)])
        clock.now += 60
        current = samples(exporter, names)
        assert_not_lower(previous, current, types)
        previous = current
    clock.now += HOUR
    assert_not_lower(previous, samples(exporter, names), types)


@pytest.mark.parametrize("query,problem", [
    ("incremental: {key: id}\n    sql: SELECT COUNT(*) AS n, MAX(id) AS max_key FROM sales",
     "queries.q.sql: an incremental query filters on the bound parameter :last_key"),
    ("sql: SELECT COUNT(*) AS n FROM sales WHERE id > :last_key",
     "queries.q.sql: :last_key is only bound for queries that declare incremental"),
    ("incremental: {key: id, every: 1h}\n    sql: SELECT 1 AS n WHERE 1 > :last_key",
     "queries.q.incremental.every: unknown key"),
])
def test_incremental_config_errors_name_the_key(tmp_path, query, problem):
    config = tmp_path / "config.yaml"
    config.write_text(f"packs: []\nqueries:\n  q:\n    {query}\n    metrics: "
                      "[{name: demo_total, type: counter, help: N., value: n}]\n")
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(")):
        load_config(config)


def test_gauges_that_sum_and_histograms_cannot_be_incremental(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent("""\
        packs: []
        queries:
          q:
            incremental: {key: id}
            sql: SELECT COUNT(*) AS n, MAX(id) AS max_key FROM sales WHERE id > :last_key
            metrics: [{name: demo_n, type: gauge, help: N., value: n}]
        """))
    with pytest.raises(ConfigError, match="cannot be collected incrementally"):
        load_config(config)


def cached_exporter(tmp_path):
    """An exporter on the known rows after one run of every query, and its page cache on a clock
    the test moves (``ticks[0]``): ``(db, clock, exporter, ticks, cache)``."""
    from pipeline_exporter.exposition import ExpositionCache

    db = build_db(tmp_path / "sites.db", ROWS)
    clock = Clock()
    exporter = exporter_on(db, clock)
    exporter.pipeline.scheduler.run_once()
    ticks = [0.0]
    cache = ExpositionCache(exporter.registry, lambda: exporter.snapshot, max_age=1.0, clock=lambda: ticks[0])
    return db, clock, exporter, ticks, cache


def test_the_cached_exposition_is_rebuilt_when_the_snapshot_records(tmp_path):
    from prometheus_client import generate_latest

    db, clock, exporter, ticks, cache = cached_exporter(tmp_path)
    first, content_type = cache.render()
    assert first == generate_latest(exporter.registry) and content_type.startswith("text/plain")
    assert cache.render()[0] is first  # nothing recorded: the same bytes
    # No family name clashes in the default pack (metrics.md, Version 3): OpenMetrics when asked for.
    body, openmetrics = cache.render("application/openmetrics-text;version=1.0.0")
    assert openmetrics.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    import gzip
    assert gzip.decompress(cache.render("", gzipped=True)[0]) == first
    insert(db, "opt_outs", [{"channel": "sms", "contact": "+1555", "created_at": ago(1)}])
    clock.now += 60
    exporter.pipeline.scheduler.run_job("opt_outs")
    second = cache.render()[0]
    assert b'pipeline_opt_outs_total{channel="sms"} 2.0' in second
    ticks[0] += 2.0  # older than max_age: rebuilt even without a record (staleness, host metrics)
    assert cache.render()[0] is not second


def test_openmetrics_is_served_when_no_family_names_clash(tmp_path):
    from pipeline_exporter.exposition import ExpositionCache

    config = tmp_path / "config.yml"
    config.write_text(textwrap.dedent("""
        packs: []
        queries:
          opt_outs:
            incremental: {key: id}
            sql: SELECT channel, COUNT(*) AS n, MAX(id) AS max_key FROM opt_outs WHERE id > :last_key GROUP BY channel
            metrics:
              - {name: pipeline_opt_outs_total, type: counter, help: Opt-outs., value: n, labels: [channel]}
        """))
    exporter = exporter_on(build_db(tmp_path / "sites.db", ROWS), Clock(), config)
    exporter.pipeline.scheduler.run_once()
    cache = ExpositionCache(exporter.registry, lambda: exporter.snapshot)
    body, content_type = cache.render("application/openmetrics-text;version=1.0.0")
    assert content_type.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    assert b'pipeline_opt_outs_total{channel="sms"} 1.0' in body


def test_a_reload_that_changes_only_the_schedule_keeps_counting_exactly(tmp_path):
    """Interval, timeout and help do not change what a query counts: its totals survive the reload,
    so a prune before it loses no event after it."""
    from tests.support.sqlite import make_exporter

    pack = tmp_path / "pack.yaml"
    template = textwrap.dedent("""\
        name: demo
        queries:
          opt_outs:
            interval: {interval}
            incremental: {{key: id}}
            sql: SELECT channel, COUNT(*) AS n, MAX(id) AS max_key FROM opt_outs WHERE id > :last_key GROUP BY channel
            metrics: [{{name: demo_opt_outs_total, type: counter, help: {help}, value: n, labels: [channel]}}]
        """)
    pack.write_text(template.format(interval="15s", help="Opt-outs."))
    config = tmp_path / "config.yml"
    config.write_text(f"packs: [{pack}]\n")
    db = build_db(tmp_path / "sites.db", {"opt_outs": [{"channel": "sms", "contact": "x"}] * 300})
    exporter = make_exporter(db, config)
    names = ["demo_opt_outs"]
    assert samples(exporter, names)[("demo_opt_outs_total", (("channel", "sms"),))] == 300
    execute(db, "DELETE FROM opt_outs WHERE id <= 240")
    insert(db, "opt_outs", [{"channel": "sms", "contact": "y"}] * 10)
    pack.write_text(template.format(interval="30s", help="Opt-outs by channel."))
    assert exporter.reload()
    assert samples(exporter, names)[("demo_opt_outs_total", (("channel", "sms"),))] == 310


def test_a_failed_reload_leaves_the_running_queries_their_states(tmp_path):
    from tests.support.sqlite import make_exporter

    config = tmp_path / "config.yml"
    config.write_text("defaults: {interval: 60s}\n")
    db = build_db(tmp_path / "sites.db", ROWS)
    exporter = make_exporter(db, config)
    samples(exporter)
    before = dict(exporter.pipeline.memory.counters)
    config.write_text("defaults: {interval: 30s}\nqueries_typo: {}\n")
    assert not exporter.reload()
    assert {name: state for name, (_, state) in exporter.pipeline.memory.counters.items()} == {
        name: state for name, (_, state) in before.items()}
