"""Start-up on the real process: a locked table (a migration) delays neither /-/healthy nor SIGTERM;
the logs (one line when the database is down, Go's level names, millisecond timestamps, the banner
in the chosen format); a web config that fails to reload; OpenMetrics on request."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.faults import exporter, fast_config, web_config
from tests.support.paths import REPO
from tests.support.procs import free_port, running, wait_for
from tests.support.sqlite import small_db

# Twenty more queries: before the fix, each waited out SQLite's 5 s busy timeout at start, one
# after the other, before the server listened (over 100 s, past every deadline below).
MORE_QUERIES = "".join(f"""
  more_{i}:
    interval: 500ms
    sql: SELECT COUNT(*) AS n FROM sites
    metrics: [{{name: fault_more_{i}, type: gauge, help: Sites again., value: n}}]
""" for i in range(20))

HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO opt_outs (channel, contact) VALUES ('sms', 'migration')")
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
    conn.execute("ROLLBACK")
""")


@contextmanager
def migration(db: Path) -> Iterator[subprocess.Popen]:
    """A real writer holding an exclusive transaction on a rollback-journal database."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=30)


def rollback_journal_db(path: Path) -> Path:
    db = small_db(path, 3)
    with sqlite3.connect(db) as conn:  # WAL lets readers through a writer; a rollback journal does not
        conn.execute("PRAGMA journal_mode=DELETE")
    return db


def test_a_locked_table_at_start_delays_neither_healthy_nor_sigterm(tmp_path):
    db = rollback_journal_db(tmp_path / "sites.db")
    config = fast_config(tmp_path, MORE_QUERIES)
    port = free_port()
    args = [sys.executable, "-m", "pipeline_exporter", "--web.listen-address", f"127.0.0.1:{port}",
            "--database-url", f"sqlite:///{db}", "--config.file", str(config)]
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    url = f"http://127.0.0.1:{port}"
    with migration(db) as holder, running(args, tmp_path / "exporter.log", env=environ, cwd=tmp_path) as proc:
        started = time.monotonic()
        wait_for(lambda: requests.get(url + "/-/healthy", timeout=5).status_code == 200, timeout=30,
                 what="/-/healthy while the migration holds its lock")
        healthy = time.monotonic() - started
        assert holder.poll() is None, "the lock was still held when /-/healthy answered"
        assert requests.get(url + "/-/ready", timeout=5).status_code == 503
        signalled = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        stopped = time.monotonic() - signalled
        assert holder.poll() is None, "the lock was still held when SIGTERM ended the process"
    print(f"locked start: /-/healthy after {healthy:.2f} s, SIGTERM honoured in {stopped:.2f} s")


def test_the_database_down_at_start_is_one_log_line_in_the_chosen_format(tmp_path):
    missing = tmp_path / "not-yet" / "sites.db"
    with exporter(tmp_path, missing, fast_config(tmp_path, MORE_QUERIES), ready=False,
                  extra=["--log.format", "json"]) as svc:
        wait_for(lambda: (svc.value("pipeline_exporter_query_errors_total", query="more_19") or 0) >= 3,
                 timeout=30, what="every query failing a few times")
    lines = [json.loads(line) for line in svc.log_text().splitlines() if line.startswith("{")]
    assert len(lines) == len(svc.log_text().splitlines()), "every line is JSON, the banner included"
    banner = [line for line in lines if line["msg"].startswith("serving http://127.0.0.1:")]
    assert len(banner) == 1 and banner[0]["level"] == "info"
    down = [line for line in lines if "database" in line["msg"] and line["level"] == "warn"]
    assert len(down) == 1, down
    assert "does not exist" in down[0]["error"]
    assert not [line for line in lines if line["msg"] == "job failing"], "one line, not one per query"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"]) for line in lines)
    assert {line["level"] for line in lines} <= {"debug", "info", "warn", "error"}


def test_a_web_config_that_fails_to_reload_sets_last_reload_successful_to_0(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    web = web_config(tmp_path, "http_server_config:\n  headers: {X-Frame-Options: deny}\n")
    with exporter(tmp_path, db, fast_config(tmp_path),
                  extra=["--web.config.file", str(web), "--web.enable-lifecycle"]) as svc:
        assert svc.value("pipeline_exporter_config_last_reload_successful") == 1
        web.write_text("http_server_config:\n  headers: {X-Frame-Options: deny}\n  hedaers: {}\n")
        answer = requests.post(svc.url + "/-/reload", timeout=30)
        assert answer.status_code == 500
        assert svc.value("pipeline_exporter_config_last_reload_successful") == 0
        assert svc.get("/metrics").headers["X-Frame-Options"] == "deny", "the running web config stays"
        web.write_text("http_server_config:\n  headers: {X-Frame-Options: sameorigin}\n")
        assert requests.post(svc.url + "/-/reload", timeout=30).status_code == 200
        assert svc.value("pipeline_exporter_config_last_reload_successful") == 1
        assert svc.get("/metrics").headers["X-Frame-Options"] == "sameorigin"


OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"  # then prometheus_client's escaping


def test_openmetrics_is_served_when_asked_for_and_text_otherwise(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    with exporter(tmp_path, db, fast_config(tmp_path)) as svc:
        asked = svc.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0,"
                                                       "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
        assert asked.headers["Content-Type"].startswith(OPENMETRICS)
        assert asked.text.endswith("# EOF\n")
        assert "fault_sites 3.0" in asked.text
        assert "# TYPE process_cpu_seconds counter" in asked.text
        plain = svc.get("/metrics")
        assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "# EOF" not in plain.text
