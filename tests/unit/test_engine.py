"""The generic engine: caps, NULL words, failures that stay local, staleness, privacy."""

from __future__ import annotations

import logging
import textwrap

import pytest

from pipeline_exporter.app import families
from tests.support.exposition import series, value
from tests.support.sqlite import NOW_TS, ago, make_exporter, scrape


def write_config(tmp_path, body: str):
    path = tmp_path / "config.yml"
    path.write_text(textwrap.dedent(body))
    return path


def test_cap_folds_the_smallest_values_into_other_and_counts_them(make_db, tmp_path):
    errors = [{"domain": f"s{i}.example", "status": "scraped", "error_type": f"err_{i % 30:02d}"} for i in range(300)]
    # err_00 .. err_09 get 11 sites each, the rest 10, so the kept twenty are the largest ones.
    errors += [{"domain": f"x{i}.example", "status": "scraped", "error_type": f"err_{i:02d}"} for i in range(10)]
    fams = scrape(make_db({"sites": errors}))
    got = series(fams, "pipeline_site_errors")
    assert len(got) == 21
    assert got[(("error_type", "other"),)] == 10 * 10
    assert got[(("error_type", "err_00"),)] == 11
    assert sum(got.values()) == 310
    assert value(fams, "pipeline_exporter_series_dropped_total", metric="pipeline_site_errors") == 10


def capped_opt_outs(make_db, tmp_path):
    """An exporter whose opt-out counter keeps 2 channels (a: 3, b: 2, c: 1), after one run,
    and a function that adds ``n`` opt-outs of channel c, which then grows past b."""
    config = write_config(tmp_path, """
        queries:
          opt_outs:
            incremental: {key: id}
            sql: SELECT channel, COUNT(*) AS n, MAX(id) AS max_key FROM opt_outs WHERE id > :last_key GROUP BY channel
            metrics:
              - {name: pipeline_opt_outs_total, type: counter, help: Opt-outs., value: n,
                 labels: [{name: channel, cap: 2}]}
        """)
    db = make_db({"opt_outs": [{"channel": c, "contact": "x"} for c in ["a"] * 3 + ["b"] * 2 + ["c"]]})
    exporter = make_exporter(db, config)
    exporter.pipeline.scheduler.run_once()

    def grow_c(n: int) -> None:
        import sqlite3
        with sqlite3.connect(db) as conn:
            conn.executemany("INSERT INTO opt_outs (channel, contact) VALUES (?, 'x')", [("c",)] * n)

    return exporter, grow_c


def test_counter_cap_keeps_admitted_values_so_other_never_goes_down(make_db, tmp_path):
    exporter, grow_c = capped_opt_outs(make_db, tmp_path)
    first = series(families(exporter.registry), "pipeline_opt_outs_total")
    assert first == {(("channel", "a"),): 3, (("channel", "b"),): 2, (("channel", "other"),): 1}
    grow_c(5)  # "c" grows past "b": a gauge would re-rank, a counter must not
    exporter.pipeline.scheduler.run_once()
    second = series(families(exporter.registry), "pipeline_opt_outs_total")
    assert second == {(("channel", "a"),): 3, (("channel", "b"),): 2, (("channel", "other"),): 6}


def test_null_words_and_awkward_label_values(make_db, tmp_path):
    weird = 'quote" back\\slash\nnewline 🙂'
    config = write_config(tmp_path, """
        packs: [method333]
        queries:
          nulls:
            sql: SELECT NULL AS source, '' AS stage, 2.0 AS code, 1 AS n
            metrics:
              - {name: demo_nulls, type: gauge, help: NULL words., value: n,
                 labels: [{name: source, if_null: unknown}, {name: stage, if_null: blank}, code]}
        """)
    fams = scrape(make_db({
        "outreaches": [{"site_id": 1, "channel": weird, "contact": "c", "status": "sent", "sent_at": ago(5)}],
    }), config)
    assert value(fams, "pipeline_outreach_events_total", channel=weird, event="sent") == 1
    assert value(fams, "demo_nulls", source="unknown", stage="blank", code="2") == 1


def test_invalid_utf8_in_a_label_column_is_replaced_not_fatal(make_db):
    db = make_db({})
    import sqlite3
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO sites (domain, status, error_type) VALUES ('a', 'found', CAST(X'626164ff' AS TEXT))")
    fams = scrape(db)
    assert series(fams, "pipeline_site_errors") == {(("error_type", "bad\ufffd"),): 1}


def test_a_failing_query_leaves_the_others_intact(make_db, tmp_path):
    config = write_config(tmp_path, """
        packs: [method333]
        queries:
          broken_sql:
            sql: SELEKT nothing
            metrics: [{name: demo_broken, type: gauge, help: Never., value: n}]
          missing_table:
            sql: SELECT COUNT(*) AS n FROM no_such_table
            metrics: [{name: demo_missing, type: gauge, help: Never., value: n}]
        """)
    fams = scrape(make_db({"sites": [{"domain": "a", "status": "found"}]}), config)
    assert value(fams, "pipeline_exporter_query_errors_total", query="broken_sql") == 1
    assert value(fams, "pipeline_exporter_query_errors_total", query="missing_table") == 1
    assert value(fams, "pipeline_sites", status="found") == 1
    assert value(fams, "pipeline_exporter_query_errors_total", query="sites") == 0
    assert "demo_missing" not in fams or not fams["demo_missing"].samples


def test_a_dropped_table_keeps_last_values_until_stale_then_they_disappear(make_db):
    db = make_db({"opt_outs": [{"channel": "email", "contact": "x"}]})
    clock = {"now": NOW_TS}
    exporter = make_exporter(db)
    exporter.pipeline.snapshot.clock = lambda: clock["now"]
    exporter.pipeline.scheduler.clock = lambda: clock["now"]
    exporter.pipeline.scheduler.run_once()
    import sqlite3
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE opt_outs")
    clock["now"] += 60
    exporter.pipeline.scheduler.run_once()
    fams = families(exporter.registry)
    assert value(fams, "pipeline_opt_outs_total", channel="email") == 1, "last good value kept"
    assert value(fams, "pipeline_exporter_query_errors_total", query="opt_outs") == 1
    clock["now"] += 3 * 60  # 240 s after the last success: past the 180 s limit of a 60 s query
    exporter.pipeline.scheduler.run_once()
    fams = families(exporter.registry)
    assert value(fams, "pipeline_opt_outs_total", channel="email") is None
    assert value(fams, "pipeline_sites_created_total") == 0, "other queries unaffected"


def test_failures_are_logged_once_per_state_change(make_db, caplog):
    db = make_db({})
    import sqlite3
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE opt_outs")
    exporter = make_exporter(db)
    with caplog.at_level(logging.INFO, logger="pipeline_exporter"):
        for _ in range(3):
            exporter.pipeline.scheduler.run_job("opt_outs")
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE opt_outs (id INTEGER PRIMARY KEY, channel TEXT, contact TEXT, created_at TEXT)")
        exporter.pipeline.scheduler.run_job("opt_outs")
    messages = [(r.getMessage(), getattr(r, "job", None)) for r in caplog.records]
    assert messages.count(("job failing", "opt_outs")) == 1
    assert messages.count(("job recovered", "opt_outs")) == 1


def test_personal_data_never_reaches_metrics_or_logs(make_db, caplog):
    secrets = ["jane.doe@example.com", "+15551234567", "I would love a quote, call me", "https://secret.example/x",
               "Stack trace at https://proxy.example"]
    db = make_db({
        "sites": [{"domain": "a.example", "status": "found", "error_type": "timeout", "error_message": secrets[4]}],
        "outreaches": [{"site_id": 1, "channel": "email", "contact": secrets[0], "status": "sent", "sent_at": ago(9)}],
        "conversations": [{"site_id": 1, "channel": "sms", "direction": "inbound", "sender": secrets[1],
                           "body": secrets[2], "is_read": 0, "sentiment": "positive"}],
        "opt_outs": [{"channel": "sms", "contact": secrets[1]}],
        "http_errors": [{"source": "scraper", "stage": "fetch", "status_code": 403, "url": secrets[3]}],
        "cron_jobs": [{"name": "job", "description": "d", "interval_seconds": 60, "enabled": 1}],
        "cron_job_logs": [{"job_name": "job", "started_at": ago(5), "finished_at": ago(4), "status": "failed",
                           "error_message": secrets[4]}],
    })
    from prometheus_client import generate_latest
    with caplog.at_level(logging.DEBUG):
        exporter = make_exporter(db)
        exporter.pipeline.scheduler.run_once()
        text = generate_latest(exporter.registry).decode()
    assert "pipeline_outreach_events_total" in text
    for secret in secrets:
        assert secret not in text
        assert secret not in caplog.text


def test_histogram_query_may_not_feed_other_metric_types(tmp_path):
    from pipeline_exporter.config import load_config
    from pipeline_exporter.errors import ConfigError
    config = write_config(tmp_path, """
        queries:
          mixed:
            sql: SELECT 1 AS v
            metrics:
              - {name: a_seconds, type: histogram, help: A., value: v, buckets: [1]}
              - {name: b, type: gauge, help: B., value: v}
        """)
    with pytest.raises(ConfigError, match="feeds only histograms"):
        load_config(config)


def test_a_histogram_beside_other_metrics_reads_pre_bucketed_rows(make_db, tmp_path):
    """One read feeds a gauge and a histogram: rows carry the bucket's upper bound (NULL: +Inf), the
    observations in it and their sum; a row without observations makes no series."""
    config = write_config(tmp_path, """
        queries:
          one_read:
            sql: |
              SELECT 'a' AS k, 10 AS le, 2 AS n, 7.5 AS total, 5 AS rows_
              UNION ALL SELECT 'a', NULL, 1, 100, 1
              UNION ALL SELECT 'b', 1, 0, NULL, 3
            metrics:
              - {name: demo_rows, type: gauge, help: R., labels: [k], value: rows_}
              - {name: demo_seconds, type: histogram, help: H., labels: [k], buckets: [1, 10],
                 le: le, count: n, value: total}
        """)
    fams = scrape(make_db({}), config)
    assert series(fams, "demo_rows") == {(("k", "a"),): 6, (("k", "b"),): 3}
    assert series(fams, "demo_seconds_bucket") == {(("k", "a"), ("le", "1.0")): 0, (("k", "a"), ("le", "10.0")): 2,
                                                   (("k", "a"), ("le", "+Inf")): 3}
    assert value(fams, "demo_seconds_count", k="a") == 3
    assert value(fams, "demo_seconds_sum", k="a") == 107.5


@pytest.mark.parametrize("metric, problem", [
    ("{name: h_seconds, type: histogram, help: H., value: v, buckets: [1], le: v}", "names both its le column"),
    ("{name: g, type: gauge, help: G., value: v, le: v, count: v}", "only a histogram reads pre-bucketed rows"),
])
def test_pre_bucketed_histograms_are_declared_whole(tmp_path, metric, problem):
    from pipeline_exporter.config import load_config
    from pipeline_exporter.errors import ConfigError
    config = write_config(tmp_path, f"""
        queries:
          q:
            sql: SELECT 1 AS v
            metrics: [{metric}]
        """)
    with pytest.raises(ConfigError, match=problem):
        load_config(config)


def test_a_bucket_bound_that_is_no_bound_of_the_histogram_fails_the_query(make_db, tmp_path):
    config = write_config(tmp_path, """
        queries:
          q:
            sql: SELECT 5 AS le, 1 AS n, 5 AS total
            metrics:
              - {name: demo_seconds, type: histogram, help: H., buckets: [1, 10], le: le, count: n, value: total}
        """)
    fams = scrape(make_db({}), config)
    assert value(fams, "pipeline_exporter_query_up", query="q") == 0
    assert series(fams, "demo_seconds_bucket") == {}


def test_stop_interrupts_a_long_sqlite_statement(make_db, tmp_path):
    import threading
    config = write_config(tmp_path, """
        queries:
          endless:
            timeout: 10m
            sql: |
              WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) AS n FROM n
            metrics: [{name: demo_endless, type: gauge, help: Never ends., value: n}]
        """)
    exporter = make_exporter(make_db({}), config)
    worker = threading.Thread(target=exporter.pipeline.scheduler.run_job, args=("endless",))
    worker.start()
    from tests.support.procs import wait_for
    wait_for(lambda: exporter.pipeline.db._running, timeout=10, what="the statement to start")
    exporter.stop()
    worker.join(30)  # without the interrupt the statement would run for its whole 10 m timeout
    assert not worker.is_alive()
    state = next(s for s in exporter.snapshot.states() if s.info.name == "endless")
    # Cut short by the stop (a shutdown or a reload), not failing: no error is counted, nothing recorded.
    assert (state.errors_total, state.runs_total, state.error) == (0, 0, None)


def test_reload_keeps_values_readiness_and_error_counts(make_db, tmp_path):
    config = write_config(tmp_path, """
        queries:
          broken:
            sql: SELECT COUNT(*) AS n FROM no_such_table
            metrics: [{name: demo_broken, type: gauge, help: Never., value: n}]
        """)
    exporter = make_exporter(make_db({"opt_outs": [{"channel": "sms", "contact": "x"}]}), config)
    exporter.pipeline.scheduler.run_once()
    assert exporter.ready()
    assert exporter.reload()
    # Nothing has run under the new config yet: the last values, readiness and counters carry over.
    fams = families(exporter.registry)
    assert exporter.ready()
    assert value(fams, "pipeline_opt_outs_total", channel="sms") == 1
    assert value(fams, "pipeline_exporter_query_errors_total", query="broken") == 1
    assert value(fams, "pipeline_exporter_config_last_reload_successful") == 1
    exporter.stop()


def test_each_query_exports_its_configured_interval_across_a_reload(make_db, tmp_path):
    """pipeline_exporter_query_interval_seconds{query}: what "Data as of" divides a query's age by.
    It is the configuration in force, from the first scrape and right after a reload (no run needed)."""
    body = """
        checks: {integrity_interval: %s}
        queries:
          opt_outs:
            interval: %s
            sql: SELECT COUNT(*) AS n FROM opt_outs
            metrics: [{name: demo_opt_outs, type: gauge, help: Opt-outs., value: n}]
        """
    config = write_config(tmp_path, body % ("2h", "45s"))
    exporter = make_exporter(make_db({}), config)
    fams = families(exporter.registry)  # before any run
    assert value(fams, "pipeline_exporter_query_interval_seconds", query="opt_outs") == 45
    assert value(fams, "pipeline_exporter_query_interval_seconds", query="database_integrity") == 7200
    exporter.pipeline.scheduler.run_once()
    config.write_text(textwrap.dedent(body % ("30m", "90s")))
    assert exporter.reload()
    fams = families(exporter.registry)
    assert value(fams, "pipeline_exporter_query_interval_seconds", query="opt_outs") == 90
    assert value(fams, "pipeline_exporter_query_interval_seconds", query="database_integrity") == 1800
    # Every job that has a last-success series has an interval to divide it by.
    assert set(series(fams, "pipeline_exporter_query_last_success_timestamp_seconds")) <= set(
        series(fams, "pipeline_exporter_query_interval_seconds"))
    exporter.stop()


def test_the_cap_folds_timestamps_with_max_not_a_sum(make_db):
    errors = [{"source": f"api{i:02d}", "stage": "fetch", "status_code": 429, "url": "u", "created_at": ago(100 + i)}
              for i in range(25)]
    fams = scrape(make_db({"http_errors": errors}))
    last = series(fams, "pipeline_http_error_last_timestamp_seconds")
    assert len(last) == 21
    # The 20 most recent sources keep their own series; "other" is the latest of the rest.
    assert last[(("code", "429"), ("source", "other"))] == NOW_TS - 120
    assert last[(("code", "429"), ("source", "api00"))] == NOW_TS - 100
    assert all(v <= NOW_TS for v in last.values())
    assert series(fams, "pipeline_http_errors_total")[(("code", "429"), ("source", "other"), ("stage", "fetch"))] == 5


def test_a_reload_keeps_the_values_a_counter_cap_admitted(make_db, tmp_path):
    exporter, grow_c = capped_opt_outs(make_db, tmp_path)
    grow_c(5)
    assert exporter.reload()
    exporter.pipeline.scheduler.run_once()
    assert series(families(exporter.registry), "pipeline_opt_outs_total") == {
        (("channel", "a"),): 3, (("channel", "b"),): 2, (("channel", "other"),): 6}
    exporter.stop()


def test_error_messages_carry_class_and_code_never_the_drivers_text():
    import sqlite3

    from pipeline_exporter.redact import safe_message

    class InvalidTextRepresentation(Exception):
        pgcode = "22P02"

    quoted = InvalidTextRepresentation('invalid input syntax for type integer: "Call me at "jane.doe@x.example" ,\n'
                                       ' thanks +1 555 0100"\nLINE 1: SELECT ...')
    assert safe_message(quoted) == "InvalidTextRepresentation (SQLSTATE 22P02)"
    assert safe_message(Exception(1105, "XPATH syntax error: 'jane.doe@x.example'")) == "Exception (MySQL error 1105)"
    missing = sqlite3.OperationalError("no such table: opt_outs")
    missing.sqlite_errorname = "SQLITE_ERROR"
    assert safe_message(missing) == "OperationalError (SQLITE_ERROR, no such table: opt_outs)"
    worded = sqlite3.OperationalError("no such column: jane.doe@x.example and more")
    assert safe_message(worded) == "OperationalError"  # anything but the known shapes says no words
    assert safe_message(OSError("could not connect: Connection refused")) == "OSError (connection refused)"


def test_report_files_at_default_paths_that_do_not_exist_are_unused_not_failing(make_db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default paths are relative: coverage/..., test-results/...
    from pipeline_exporter.app import Exporter
    exporter = Exporter(None, {"database_url": f"sqlite:///{make_db({})}"}, clock=lambda: NOW_TS)
    exporter.pipeline.scheduler.run_once()
    fams = families(exporter.registry)
    for source in ("coverage_report", "e2e_report"):
        assert value(fams, "pipeline_exporter_query_up", query=source) == 1
        assert value(fams, "pipeline_exporter_query_errors_total", query=source) == 0
    assert value(fams, "pipeline_code_coverage_ratio", metric="lines") is None
    # Set explicitly and missing: an error, and query_up 0 for that source only.
    explicit = make_exporter(make_db({}, name="b.db"), coverage=tmp_path / "nope.json")
    explicit.pipeline.scheduler.run_once()
    fams = families(explicit.registry)
    assert value(fams, "pipeline_exporter_query_up", query="coverage_report") == 0
    assert value(fams, "pipeline_exporter_query_errors_total", query="coverage_report") == 1
    assert value(fams, "pipeline_exporter_query_up", query="sites") == 1


def test_query_up_follows_the_latest_run(make_db):
    import sqlite3
    db = make_db({"opt_outs": [{"channel": "sms", "contact": "x"}]})
    exporter = make_exporter(db)
    exporter.pipeline.scheduler.run_job("opt_outs")
    assert value(families(exporter.registry), "pipeline_exporter_query_up", query="opt_outs") == 1
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE opt_outs RENAME TO gone")
    exporter.pipeline.scheduler.run_job("opt_outs")
    assert value(families(exporter.registry), "pipeline_exporter_query_up", query="opt_outs") == 0
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE gone RENAME TO opt_outs")
    exporter.pipeline.scheduler.run_job("opt_outs")
    assert value(families(exporter.registry), "pipeline_exporter_query_up", query="opt_outs") == 1


@pytest.mark.parametrize("budget, expected", [
    ("500", {(("provider", "total"),): 500}),
    ("{openrouter: 400, anthropic: 99.5}", {(("provider", "openrouter"),): 400, (("provider", "anthropic"),): 99.5}),
])
def test_the_llm_budget_from_the_config(make_db, tmp_path, budget, expected):
    config = write_config(tmp_path, f"llm_monthly_budget_usd: {budget}\n")
    fams = scrape(make_db({}), config)
    assert series(fams, "pipeline_llm_budget_usd") == expected


def test_no_budget_no_budget_series_and_a_bad_one_names_the_key(make_db, tmp_path):
    from pipeline_exporter.config import load_config
    from pipeline_exporter.errors import ConfigError
    assert "pipeline_llm_budget_usd" not in scrape(make_db({}))
    with pytest.raises(ConfigError, match=r"llm_monthly_budget_usd.openrouter: must be a number"):
        load_config(write_config(tmp_path, "llm_monthly_budget_usd: {openrouter: lots}\n"))


def test_queries_ending_in_a_comment_or_semicolon_work_in_every_wrapper(make_db, tmp_path):
    config = write_config(tmp_path, """
        queries:
          amounts:
            sql: |
              SELECT channel, amount_usd FROM sales -- every sale;
            metrics: [{name: demo_amount_usd, type: histogram, help: H., value: amount_usd, labels: [channel],
                       buckets: [100]}]
          plain:
            sql: "SELECT COUNT(*) AS n FROM sales; -- a comment\\n-- and another"
            metrics: [{name: demo_sales, type: gauge, help: N., value: n}]
          recent:
            windows: {time: t}
            sql: "SELECT channel, $epoch(sold_at) AS t FROM sales WHERE $epoch(sold_at) >= :window_start -- oldest"
            metrics: [{name: demo_recent, type: gauge, help: N., labels: [channel]}]
        """)
    fams = scrape(make_db({"sales": [{"site_id": 1, "channel": "sms", "amount_usd": 50, "sold_at": ago(1)}]}), config)
    assert value(fams, "demo_amount_usd_count", channel="sms") == 1
    assert value(fams, "demo_sales") == 1
    assert value(fams, "demo_recent", channel="sms", window="7d") == 1


def test_a_number_stored_as_text_is_not_an_observation(make_db, tmp_path):
    config = write_config(tmp_path, """
        queries:
          amounts:
            # A looser pipeline schema: values without a column type keep what was written, text too.
            sql: "SELECT 'sms' AS channel, 50 AS amount_usd UNION ALL SELECT 'sms', '70' UNION ALL SELECT 'sms', 'abc'"
            metrics: [{name: demo_amount_usd, type: histogram, help: H., value: amount_usd, labels: [channel],
                       buckets: [100]}]
        """)
    fams = scrape(make_db({}), config)
    # Only the real number counts: not in +Inf, not in the sum.
    assert value(fams, "demo_amount_usd_count", channel="sms") == 1
    assert value(fams, "demo_amount_usd_sum", channel="sms") == 50
    assert value(fams, "demo_amount_usd_bucket", channel="sms", le="+Inf") == 1


def test_dropped_values_past_the_exact_memory_are_not_counted_twice(monkeypatch):
    from pipeline_exporter.shaping import CapMemory

    monkeypatch.setattr(CapMemory, "MAX_TRACKED", 5)
    memory = CapMemory()
    values = [f"value-{i}" for i in range(1000)]
    for _ in range(3):  # the same values folded on every run
        memory.add("demo_metric", "label", values)
    assert memory.totals() == {"demo_metric": 1000}


def test_every_statement_of_one_read_sees_one_snapshot(make_db):
    """A row committed between two statements of one run is in neither or both: the counters' settle
    statements depend on it."""
    import sqlite3

    from pipeline_exporter.db import Database

    db_path = make_db({"opt_outs": [{"channel": "sms", "contact": "x"}] * 3})
    db = Database(f"sqlite:///{db_path}")

    def work(run):
        before = run("SELECT COUNT(*) FROM opt_outs", {}).rows[0][0]
        with sqlite3.connect(db_path) as writer:
            writer.execute("INSERT INTO opt_outs (channel, contact) VALUES ('sms', 'late')")
        return before, run("SELECT COUNT(*) FROM opt_outs", {}).rows[0][0]

    try:
        assert db.read(work, 5.0) == (3, 3)
        assert db.fetch(["SELECT COUNT(*) FROM opt_outs"], {}, 5.0)[0].rows == [(4,)]
    finally:
        db.close()


def test_decimals_turn_integer_units_into_whole_units_in_a_plain_query_too(make_db, tmp_path):
    config = write_config(tmp_path, """
        queries:
          revenue:
            sql: "SELECT channel, SUM($fixed(amount_usd, 2)) AS cents FROM sales GROUP BY channel"
            metrics: [{name: demo_revenue_usd, type: gauge, help: R., value: cents, labels: [channel], decimals: 2}]
        """)
    db = make_db({"sales": [{"site_id": 1, "channel": "sms", "amount_usd": 0.1, "sold_at": ago(1)},
                            {"site_id": 2, "channel": "sms", "amount_usd": 0.2, "sold_at": ago(1)}]})
    assert value(scrape(db, config), "demo_revenue_usd", channel="sms") == 0.3  # exact: 30 cents / 100
