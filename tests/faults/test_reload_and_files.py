"""SIGHUP reloads on the real process, and report files that go bad while it runs."""

from __future__ import annotations

import json
import os
import signal

from tests.support.faults import exporter, fast_config
from tests.support.paths import REPO
from tests.support.procs import wait_for
from tests.support.sqlite import small_db

EXTRA = """
  extra:
    interval: 500ms
    sql: SELECT COUNT(*) * 10 AS n FROM sites
    metrics: [{name: fault_extra, type: gauge, help: Added by a reload., value: n}]
"""


def test_sighup_applies_a_valid_config_and_keeps_the_old_one_on_error(tmp_path):
    db = small_db(tmp_path / "sites.db", 3)
    config = fast_config(tmp_path)
    with exporter(tmp_path, db, config) as svc:
        assert svc.value("fault_extra") is None
        assert svc.value("pipeline_exporter_config_last_reload_successful") == 1
        fast_config(tmp_path, extra_queries=EXTRA)
        os.kill(svc.proc.pid, signal.SIGHUP)
        wait_for(lambda: svc.value("fault_extra") == 30, timeout=15, what="the reloaded query")
        assert svc.value("pipeline_exporter_config_last_reload_successful") == 1
        # Its configured interval, what the Overview's "Data as of" divides its age by.
        assert svc.value("pipeline_exporter_query_interval_seconds", query="extra") == 0.5

        config.write_text(config.read_text() + "\nqueries_typo: {}\n")
        os.kill(svc.proc.pid, signal.SIGHUP)
        wait_for(lambda: svc.value("pipeline_exporter_config_last_reload_successful") == 0, timeout=15,
                 what="reload_successful 0")
        assert 'msg="reload failed, keeping the running configuration"' in svc.log_text()
        assert "queries_typo: unknown key" in svc.log_text()
        import sqlite3
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO sites (domain, status) VALUES ('n', 'found')")
        wait_for(lambda: svc.value("fault_extra") == 40 and svc.value("fault_sites") == 4, timeout=10,
                 what="the running config keeps collecting")
        # The reloaded pipeline starts with an empty snapshot: ready again once each job ran once.
        wait_for(lambda: svc.get("/-/ready").status_code == 200, timeout=10, what="ready")

        fast_config(tmp_path)  # fixed again, without the extra query
        os.kill(svc.proc.pid, signal.SIGHUP)
        wait_for(lambda: svc.value("pipeline_exporter_config_last_reload_successful") == 1
                 and svc.value("fault_extra") is None, timeout=15, what="the second reload")
        assert svc.value("pipeline_exporter_query_interval_seconds", query="extra") is None
        assert svc.proc.poll() is None
    assert svc.log_text().count('msg="configuration reloaded"') == 2


COVERAGE = {"total": {k: {"pct": p} for k, p in
                      {"lines": 81, "statements": 80, "functions": 70, "branches": 60}.items()}}


def test_a_huge_report_file_is_refused_and_a_rewritten_one_keeps_last_values_until_stale(tmp_path):
    db = small_db(tmp_path / "sites.db", 2)
    coverage, junit = tmp_path / "coverage-summary.json", tmp_path / "e2e-junit.xml"
    coverage.write_text(json.dumps(COVERAGE))
    with open(junit, "wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # 100 MB, sparse: nothing is read, the size is refused
    with exporter(tmp_path, db, fast_config(tmp_path), coverage=coverage, e2e_report=junit) as svc:
        wait_for(lambda: svc.value("pipeline_code_coverage_ratio", metric="lines") == 0.81, what="coverage")
        assert svc.value("pipeline_exporter_query_errors_total", query="e2e_report") >= 1
        rss = int(next(line for line in open(f"/proc/{svc.proc.pid}/status") if line.startswith("VmRSS")).split()[1])
        assert rss < 200 * 1024, f"RSS {rss} kB: the 100 MB file was not read"
        assert "over the 16777216-byte limit" in svc.log_text()
        assert svc.value("fault_sites") == 2

        # The pipeline rewrites the coverage file in place; a scrape meets it half-written.
        coverage.write_text('{"total": {"lines": {"pct": 9')
        errors = svc.value("pipeline_exporter_query_errors_total", query="coverage_report")
        wait_for(lambda: svc.value("pipeline_exporter_query_errors_total", query="coverage_report") > errors,
                 timeout=5, what="the half-written file read")
        assert svc.value("pipeline_code_coverage_ratio", metric="lines") in (0.81, None)
        # Stale after 3 file intervals (1.5 s): the last good values go, never the half-written ones.
        wait_for(lambda: svc.value("pipeline_code_coverage_ratio", metric="lines") is None, timeout=10,
                 what="stale coverage dropped")
        coverage.write_text(json.dumps({"total": {"lines": {"pct": 90}}}))
        wait_for(lambda: svc.value("pipeline_code_coverage_ratio", metric="lines") == 0.9, timeout=10,
                 what="the complete new report")
        assert svc.value("fault_sites") == 2


def test_a_fifo_nobody_writes_and_a_file_that_never_ends_neither_hang_the_exporter_nor_its_shutdown(tmp_path):
    import signal
    import subprocess

    db = small_db(tmp_path / "sites.db", 2)
    fifo, endless = tmp_path / "coverage-summary.json", tmp_path / "e2e-junit.xml"
    os.mkfifo(fifo)  # opened for reading, it would block until a writer came: none ever does
    endless.symlink_to("/dev/zero")  # a read would never end
    with exporter(tmp_path, db, fast_config(tmp_path), coverage=fifo, e2e_report=endless) as svc:
        for source in ("coverage_report", "e2e_report"):
            wait_for(lambda: svc.value("pipeline_exporter_query_up", query=source) == 0, timeout=10,
                     what=f"{source} refused")
        assert f"{fifo} is not a regular file" in svc.log_text()
        assert f"{endless} is not a regular file" in svc.log_text()
        wait_for(lambda: svc.value("fault_sites") == 2, timeout=10, what="the rest keeps collecting")
        assert svc.get("/metrics").status_code == 200
        svc.proc.send_signal(signal.SIGTERM)
        try:
            assert svc.proc.wait(timeout=10) == 0
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGTERM did not end the exporter within 10 s") from None


def test_a_deeply_nested_coverage_file_is_an_error_not_a_crash(tmp_path):
    from pipeline_exporter.config import FilesConfig
    from pipeline_exporter.errors import CollectionError
    from pipeline_exporter.sources.reports import coverage_job

    nested = tmp_path / "coverage-summary.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    job = coverage_job(FilesConfig(coverage=nested, coverage_explicit=True))
    try:
        job.run(0.0)
    except CollectionError as exc:
        assert "nests too deeply" in str(exc)
    else:
        raise AssertionError("a 100,000-deep document was accepted")


def test_sighup_during_start_up_is_a_reload_afterwards_never_the_end(tmp_path):
    import sys
    import time

    import requests

    from tests.support.procs import free_port, running

    db = small_db(tmp_path / "sites.db", 2)
    port = free_port()
    args = [sys.executable, "-m", "pipeline_exporter", "--web.listen-address", f"127.0.0.1:{port}",
            "--database-url", f"sqlite:///{db}", "--config.file", str(fast_config(tmp_path))]
    log = tmp_path / "exporter.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def catches_sighup(pid: int) -> bool:
        status = open(f"/proc/{pid}/status").read()
        caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
        return bool(caught & (1 << (signal.SIGHUP - 1)))

    def healthy() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    with running(args, log, env=env, cwd=tmp_path) as proc:
        wait_for(lambda: proc.poll() is not None or catches_sighup(proc.pid), timeout=20, what="the handlers")
        sent = 0
        while proc.poll() is None and not healthy() and sent < 400:
            os.kill(proc.pid, signal.SIGHUP)  # all through start-up: probing, listening, first runs
            sent += 1
            time.sleep(0.005)
        assert proc.poll() is None, f"SIGHUP during start-up ended the process:\n{log.read_text()[-2000:]}"
        assert sent > 0
        wait_for(lambda: 'msg="configuration reloaded"' in log.read_text(), timeout=20, what="the pending reload")
        wait_for(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200,
                 timeout=20, what="ready")
