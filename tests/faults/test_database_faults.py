"""The database misbehaves under a running exporter: each fault degrades only what it touches."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.faults import exporter, fast_config
from tests.support.procs import wait_for
from tests.support.sqlite import small_db


def open_fds(pid: int) -> list[str]:
    """Targets of a process's open file descriptors (Linux /proc)."""
    fds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass  # closed meanwhile
    return fds


def test_database_replaced_then_deleted_then_restored(tmp_path):
    db = small_db(tmp_path / "sites.db", 5, opt_outs={"email": 2})
    with exporter(tmp_path, db, fast_config(tmp_path)) as svc:
        assert wait_for(lambda: svc.value("fault_sites") == 5, what="5 sites")
        # A backup restore: the new file is written beside the old one and renamed over it.
        small_db(tmp_path / "restore.tmp", 42, opt_outs={"sms": 7})
        os.replace(tmp_path / "restore.tmp", db)
        samples = wait_for(lambda: (s := svc.samples()).get(("fault_sites", ())) == 42
                           and s.get(("fault_opt_outs", (("channel", "sms"),))) == 7 and s,
                           timeout=10, what="values of the new file")
        assert ("fault_opt_outs", (("channel", "email"),)) not in samples, "no value of the replaced file"
        # No handle on the replaced inode: connections are opened per query.
        assert not [fd for fd in open_fds(svc.proc.pid) if "(deleted)" in fd], open_fds(svc.proc.pid)

        errors_before = svc.value("pipeline_exporter_query_errors_total", query="site_count")
        db.unlink()
        wait_for(lambda: svc.value("pipeline_exporter_database_up") == 0, timeout=10, what="database_up 0")
        wait_for(lambda: svc.value("pipeline_exporter_query_errors_total", query="site_count") > errors_before,
                 timeout=10, what="errors counted while the file is missing")
        assert svc.value("fault_sites") == 42, "last good value kept until stale"
        assert svc.value("pipeline_host_memory_total_bytes") > 0, "host metrics unaffected"
        assert not [fd for fd in open_fds(svc.proc.pid) if "sites.db" in fd]

        small_db(tmp_path / "restore.tmp", 9)
        os.replace(tmp_path / "restore.tmp", db)
        wait_for(lambda: svc.value("fault_sites") == 9 and svc.value("pipeline_exporter_database_up") == 1,
                 timeout=10, what="values of the restored file")
        assert svc.proc.poll() is None
    log = svc.log_text()
    # One line for the outage and one for the end of it, not one per query.
    assert log.count('msg="database not answering') == 1, log
    assert log.count('msg="database answering again"') == 1, log
    assert 'msg="job failing"' not in log, log


def test_half_applied_migration_fails_only_the_queries_it_touches(tmp_path):
    db = small_db(tmp_path / "sites.db", 3, opt_outs={"email": 4}, errors={"timeout": 2})
    with exporter(tmp_path, db, fast_config(tmp_path)) as svc:
        wait_for(lambda: svc.value("fault_site_errors", error_type="timeout") == 2, what="errors before")
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE sites RENAME COLUMN error_type TO error_code")
            conn.execute("DROP TABLE opt_outs")
        start = svc.value("pipeline_exporter_query_errors_total", query="site_errors")
        # Several failing cycles, one log line.
        wait_for(lambda: svc.value("pipeline_exporter_query_errors_total", query="site_errors") >= start + 4,
                 timeout=15, what="several failing cycles")
        wait_for(lambda: svc.value("pipeline_exporter_query_errors_total", query="opt_out_count") >= 4,
                 timeout=15, what="several failing cycles of opt_out_count")
        with sqlite3.connect(db) as conn:
            conn.executemany("INSERT INTO sites (domain, status) VALUES (?, 'found')", [("n1",), ("n2",)])
        wait_for(lambda: svc.value("fault_sites") == 7, what="untouched query follows new rows")
        assert svc.value("pipeline_exporter_query_errors_total", query="site_count") == 0
        # Four failed 500 ms cycles are past the 1.5 s staleness limit: the old values are gone.
        assert svc.value("fault_site_errors", error_type="timeout") is None
        with sqlite3.connect(db) as conn:  # the migration is rolled back by hand
            conn.execute("ALTER TABLE sites RENAME COLUMN error_code TO error_type")
        wait_for(lambda: 'msg="job recovered" job=site_errors' in svc.log_text(), timeout=10, what="recovery")
    log = svc.log_text()
    failing = [line for line in log.splitlines() if 'msg="job failing"' in line]
    assert sum("job=site_errors" in line for line in failing) == 1, failing
    assert sum("job=opt_out_count" in line for line in failing) == 1, failing
    assert not any("job=site_count" in line for line in failing)
    assert any("no such column: error_type" in line for line in failing)
    assert any("no such table: opt_outs" in line for line in failing)


WRITER = r"""
import sqlite3, sys, time
db, mode, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = sqlite3.connect(db, timeout=0, isolation_level=None)  # timeout 0: any lock conflict fails at once
conn.execute(f"BEGIN {mode}")
conn.executemany("INSERT INTO sites (domain, status) VALUES (?, 'found')", [(f"w{i}",) for i in range(rows)])
print("HOLDING", flush=True)
sys.stdin.readline()  # a long transaction of the pipeline, e.g. a batch import, held until the test says
conn.execute("COMMIT")
for i in range(50):  # then many short transactions while the exporter keeps reading
    conn.execute(f"BEGIN {mode}")
    conn.execute("INSERT INTO sites (domain, status) VALUES (?, 'found')", (f"x{i}",))
    conn.execute("COMMIT")
    time.sleep(0.02)
print("DONE", flush=True)
"""


def test_a_long_write_transaction_never_blocks_scrapes_or_the_writer(tmp_path):
    db = small_db(tmp_path / "sites.db", 10, opt_outs={"email": 1})
    for mode, rows in (("IMMEDIATE", 1000), ("EXCLUSIVE", 500)):
        with exporter(tmp_path, db, fast_config(tmp_path)) as svc:
            before = svc.value("fault_sites")
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), mode, str(rows)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert writer.stdout.readline().strip() == "HOLDING"
                runs = svc.value("pipeline_exporter_query_duration_seconds_count", query="site_count")
                seen = []

                def exporter_read_through_the_lock() -> bool:
                    samples = svc.samples()  # each scrape answers (10 s request timeout) while the lock is held
                    seen.append((samples[("fault_sites", ())], samples[("fault_opt_outs", (("channel", "email"),))]))
                    done = samples[("pipeline_exporter_query_duration_seconds_count", (("query", "site_count"),))]
                    return done >= runs + 3

                # The exporter's own queries keep completing against the locked database, without errors.
                wait_for(exporter_read_through_the_lock, timeout=30, what="3 runs of site_count during the write")
                assert set(seen) == {(before, 1)}, "uncommitted rows are never seen"
                assert svc.value("pipeline_exporter_query_errors_total", query="site_count") == 0
                out, _ = writer.communicate("commit\n", timeout=60)
            finally:
                if writer.poll() is None:
                    writer.kill()
                    writer.wait(10)
            assert writer.returncode == 0 and out.strip() == "DONE", \
                "the writer never met a lock held by the exporter (busy timeout 0)"
            wait_for(lambda: svc.value("fault_sites") == before + rows + 50, timeout=10, what="values after commit")
            assert svc.value("pipeline_exporter_query_errors_total", query="site_count") == 0
            assert svc.value("pipeline_exporter_database_up") == 1


def corrupt_copy(source: Path, target: Path) -> Path:
    """A copy whose middle pages are overwritten with garbage (header and schema intact)."""
    shutil.copy(source, target)
    size = target.stat().st_size
    with open(target, "r+b") as handle:
        page = 4096
        for offset in range(size * 2 // 5 // page * page, size * 3 // 5, page * 3):
            handle.seek(offset)
            handle.write(os.urandom(page))
    return target


def test_a_corrupt_database_reports_integrity_0_and_stays_up(tmp_path, demo_db):
    config = fast_config(tmp_path, extra_queries="""
        keywords:
          interval: 500ms
          sql: SELECT COUNT(*) AS n FROM keywords
          metrics: [{name: fault_keywords, type: gauge, help: Keywords., value: n}]
        """)
    good = shutil.copy(demo_db, tmp_path / "good.db")
    with sqlite3.connect(good) as conn:
        keywords = conn.execute("SELECT COUNT(*) FROM keywords").fetchone()[0]
    bad = corrupt_copy(demo_db, tmp_path / "bad.db")
    with exporter(tmp_path, bad, config, ready=False) as svc:
        wait_for(lambda: svc.value("pipeline_database_integrity_ok") == 0, timeout=15, what="integrity 0")
        # Pages the damage did not touch still answer (the small keywords table sits near the start).
        wait_for(lambda: svc.value("fault_keywords") == keywords, timeout=10, what="undamaged table")
        wait_for(lambda: svc.value("pipeline_host_memory_total_bytes"), timeout=10, what="host metrics")
        assert svc.get("/-/healthy").status_code == 200
        assert svc.proc.poll() is None
        os.replace(good, bad)  # the operator restores a backup
        wait_for(lambda: svc.value("pipeline_database_integrity_ok") == 1, timeout=15, what="integrity 1 after restore")

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(64 * 1024))
    with exporter(tmp_path, garbage, config, ready=False) as svc:
        wait_for(lambda: svc.value("pipeline_database_integrity_ok") == 0, timeout=15, what="integrity 0")
        wait_for(lambda: svc.value("pipeline_exporter_query_errors_total", query="site_count") >= 2,
                 timeout=10, what="queries fail")
        wait_for(lambda: svc.value("pipeline_host_memory_total_bytes"), timeout=10, what="host metrics")
        assert svc.value("pipeline_database_size_bytes") == 64 * 1024
        assert svc.proc.poll() is None
    assert "file is not a database" in svc.log_text()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_slow_query_is_cancelled_in_the_database(tmp_path):
    db = small_db(tmp_path / "sites.db", 6, opt_outs={"sms": 3})
    # One worker: if the runaway statement kept its thread, no other query could run again.
    config = fast_config(tmp_path, extra_queries="""
        runaway:
          interval: 1h
          timeout: 1s
          sql: |
            WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000000)
            SELECT COUNT(*) AS n FROM c
          metrics: [{name: fault_runaway, type: gauge, help: Never finishes., value: n}]
        """, extra="max_concurrent_queries: 1\n")
    with exporter(tmp_path, db, config) as svc:
        # Ready: every job ran once, so the runaway statement has already been stopped.
        assert svc.value("pipeline_exporter_query_errors_total", query="runaway") == 1
        wait_for(lambda: 'msg="job failing" job=runaway kind=timeout' in svc.log_text(), timeout=10,
                 what="the runaway statement failing as a timeout, not as a database error")
        # The statement really stopped: the process is almost idle afterwards, not spinning in SQLite.
        cpu, t = cpu_seconds(svc.proc.pid), time.monotonic()
        last = svc.value("pipeline_exporter_query_last_success_timestamp_seconds", query="site_count")
        wait_for(lambda: svc.value("pipeline_exporter_query_last_success_timestamp_seconds",
                                   query="site_count") > last + 1, timeout=10, what="the worker runs other queries")
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO sites (domain, status) VALUES ('new', 'found')")
        wait_for(lambda: svc.value("fault_sites") == 7, timeout=5, what="other values follow the database")
        used = (cpu_seconds(svc.proc.pid) - cpu) / (time.monotonic() - t)
        assert used < 0.5, f"exporter used {used:.0%} of a CPU after the timeout"
        assert svc.value("fault_opt_outs", channel="sms") == 3
        assert svc.value("pipeline_exporter_query_errors_total", query="site_count") == 0
        assert svc.value("fault_runaway") is None
        page = svc.get("/").text
        assert "interrupted" in page
    assert 'msg="job failing" job=runaway kind=timeout' in svc.log_text()
