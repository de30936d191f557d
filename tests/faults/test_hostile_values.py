"""Hostile values in the database, served by the real process through the default pack."""

from __future__ import annotations

import sqlite3
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.support.exposition import parse
from tests.support.faults import exporter
from tests.support.procs import require_binary
from tests.support.sqlite import small_db

WEIRD = ['quote"d', "back\\slash", "new\nline", "emoji 🙂🚀", "tab\tand space", "{brace}=,", "x" * 500]


def test_hostile_labels_10000_error_types_nulls_negatives_and_garbage_times(tmp_path):
    db = small_db(tmp_path / "sites.db", 0)
    with sqlite3.connect(db) as conn:
        # The pipeline's own tables may be looser than the shipped DDL: no NOT NULL anywhere.
        conn.executescript("""
            DROP TABLE opt_outs; DROP TABLE sales; DROP TABLE cron_job_logs; DROP TABLE cron_jobs;
            CREATE TABLE opt_outs (id INTEGER PRIMARY KEY, channel TEXT, contact TEXT, created_at TEXT);
            CREATE TABLE sales (id INTEGER PRIMARY KEY, site_id INTEGER, outreach_id INTEGER, channel TEXT,
                                amount_usd REAL, sold_at TEXT);
            CREATE TABLE cron_jobs (name TEXT PRIMARY KEY, description TEXT, interval_seconds INTEGER, enabled INTEGER);
            CREATE TABLE cron_job_logs (id INTEGER PRIMARY KEY, job_name TEXT, started_at TEXT, finished_at TEXT,
                                        status TEXT, duration_ms INTEGER, error_message TEXT);
            """)
        conn.executemany("INSERT INTO sites (domain, status, error_type) VALUES (?, 'scraped', ?)",
                         [(f"d{i}", f"err_{i:05d}") for i in range(10_000)])
        # Twenty frequent error types, so the kept twenty are known.
        conn.executemany("INSERT INTO sites (domain, status, error_type) VALUES (?, 'scraped', ?)",
                         [(f"t{i}-{j}", f"top_{i:02d}") for i in range(20) for j in range(5)])
        conn.executemany("INSERT INTO opt_outs (channel, contact) VALUES (?, 'x')", [(w,) for w in WEIRD])
        conn.execute("INSERT INTO opt_outs (channel, contact) VALUES (CAST(X'6261642dff' AS TEXT), 'x')")
        conn.execute("INSERT INTO opt_outs (channel, contact) VALUES (NULL, 'x')")
        conn.executemany("INSERT INTO sales (site_id, channel, amount_usd, sold_at) VALUES (1, 'email', ?, ?)",
                         [(500, "2026-01-01 00:00:00"), (-200, "2026-01-01T00:00:00Z"), (None, "garbage"),
                          ("abc", None), (1e308 * 10, "2026-13-45 99:99:99")])
        conn.executemany("INSERT INTO cron_jobs (name, description, interval_seconds, enabled) VALUES (?, ?, ?, ?)",
                         [("nightly", "d", None, None), ("weird", 'say "hi"\n', -60, 1)])
        conn.executemany("INSERT INTO cron_job_logs (job_name, started_at, finished_at, status, duration_ms) "
                         "VALUES (?, ?, ?, ?, ?)",
                         [("nightly", "not a time", None, "success", -5), ("nightly", "", "", "failed", None),
                          ("weird", "2026-01-01T00:00:00Z", "2026-01-01 00:00:10", "success", 10_000)])
    with exporter(tmp_path, db) as svc:
        body = svc.get("/metrics").text
        assert svc.get("/metrics").headers["Content-Type"].startswith("text/plain")
    samples = parse(body)
    families = {f.name for f in text_string_to_metric_families(body)}
    assert "pipeline_opt_outs" in families

    errors = {labels: v for (name, labels), v in samples.items() if name == "pipeline_site_errors"}
    assert len(errors) == 21
    assert errors[(("error_type", "other"),)] == 10_000
    assert all(errors[(("error_type", f"top_{i:02d}"),)] == 5 for i in range(20))
    assert samples[("pipeline_exporter_series_dropped_total", (("metric", "pipeline_site_errors"),))] == 10_000

    opt_outs = {
        dict(labels)["channel"]: v for (name, labels), v in samples.items() if name == "pipeline_opt_outs_total"
    }
    for weird in WEIRD[:-1]:
        assert opt_outs[weird] == 1, (weird, sorted(opt_outs))
    assert opt_outs["x" * 119 + "…"] == 1, "long values are cut to 120 characters"
    assert opt_outs["bad-\ufffd"] == 1 and opt_outs["unknown"] == 1, sorted(opt_outs)

    # Rows are counted whatever their amount; an amount that is no finite number is not summed
    # (NaN and infinities never reach the exposition), the others are, exactly.
    assert samples[("pipeline_sales_total", (("channel", "email"),))] == 5
    assert samples[("pipeline_sales_revenue_usd_total", (("channel", "email"),))] == 300
    assert samples[("pipeline_cron_job_enabled", (("cron_job", "weird"),))] == 1
    assert ("pipeline_cron_job_last_run_timestamp_seconds", (("cron_job", "nightly"),)) not in samples
    assert samples[("pipeline_cron_job_last_run_timestamp_seconds", (("cron_job", "weird"),))] == 1767225600
    # Runs are counted at their finish: a run whose finished_at is no time has not finished countably.
    assert ("pipeline_cron_job_runs_total", (("cron_job", "nightly"), ("status", "failed"))) not in samples
    assert samples[("pipeline_cron_job_runs_total", (("cron_job", "weird"), ("status", "success")))] == 1
    assert all(
        v == v and abs(v) != float("inf")
        for (n, _), v in samples.items()
        if n.startswith("pipeline_") and not n.endswith("_bucket")
    ), "no NaN or inf from the database"
    assert not any(
        v
        for (n, _), v in samples.items()
        if n == "pipeline_exporter_query_errors_total"
        and _ not in ((("query", "coverage_report"),), (("query", "e2e_report"),))
    ), {k: v for k, v in samples.items() if k[0] == "pipeline_exporter_query_errors_total" and v}

    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
