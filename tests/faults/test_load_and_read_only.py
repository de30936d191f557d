"""100 concurrent scrapers on the real process (bounded by count), and proof that the exporter never
writes the database."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from pipeline_exporter.db import Database
from pipeline_exporter.errors import CollectionError
from tests.support.faults import exporter, fast_config
from tests.support.sqlite import make_exporter

SCRAPERS = 100
SCRAPES = 3  # complete answers each scraper collects: the work is bounded by count, not by a clock
ATTEMPTS = 60  # a scraper told to come back (503 past --web.max-requests) retries at most this often


def test_100_concurrent_scrapers_each_get_complete_answers(tmp_path, demo_db):
    """100 scrapers at once, each until it has SCRAPES complete answers: every answer is complete or
    a clean refusal (503 with Retry-After), never a short or garbled page. Throughput figures are
    bench/bench_http.py's, not a test's: they depend on the machine."""
    db = shutil.copy(demo_db, tmp_path / "sites.db")
    with exporter(tmp_path, db) as svc:
        first = svc.get("/metrics").text
        names = [f.name for f in text_string_to_metric_families(first)]
        last_family = names[-1]
        complete, refused, errors, lock = [], [], [], threading.Lock()

        def scrape_until_done() -> None:
            session, done, told_to_wait = requests.Session(), 0, 0
            session.headers["Accept-Encoding"] = "identity"  # Content-Length then counts the body we check
            for _ in range(ATTEMPTS):
                if done == SCRAPES or len(errors) >= 10:  # bounded: stop early on failure
                    break
                problem = None
                try:
                    response = session.get(svc.url + "/metrics", timeout=60)
                    body = response.text
                    if response.status_code == 503 and response.headers.get("Retry-After") == "1" \
                            and "in flight" in body:
                        told_to_wait += 1
                        time.sleep(0.05 + 0.1 * (told_to_wait % 3))  # a clean refusal: come back
                        continue
                    if response.status_code != 200:
                        problem = f"status {response.status_code}"
                    elif len(response.content) != int(response.headers["Content-Length"]):
                        problem = "short body"
                    elif not body.endswith("\n") or not body.rstrip("\n").rsplit("\n", 1)[-1].startswith(last_family):
                        problem = "truncated exposition"
                    elif [f.name for f in text_string_to_metric_families(body)] != names:
                        problem = "families differ"
                except Exception as exc:
                    problem = repr(exc)
                if problem:
                    with lock:
                        errors.append(problem)
                else:
                    done += 1
            with lock:
                complete.append(done)
                refused.append(told_to_wait)

        threads = [threading.Thread(target=scrape_until_done) for _ in range(SCRAPERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(ATTEMPTS * 60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == [], errors[:5]
        print(f"{sum(complete)} complete scrapes by {SCRAPERS} scrapers; {sum(refused)} clean refusals")
        assert complete == [SCRAPES] * SCRAPERS, complete
        tail = svc.get("/metrics").text.rstrip().splitlines()[-1]
        assert tail.startswith(last_family.split("{")[0]), tail
        assert svc.proc.poll() is None


def digest(path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_full_cycles_leave_the_database_bytes_and_mtime_unchanged(tmp_path, demo_db):
    db = shutil.copy(demo_db, tmp_path / "sites.db")
    before = digest(db)
    exporter_ = make_exporter(db, now=time.time())
    for _ in range(3):
        exporter_.pipeline.scheduler.run_once()  # every query, integrity check, size, host
    states = {s.info.name: s for s in exporter_.snapshot.states()}
    assert states["database_integrity"].error is None and states["sites"].error is None
    assert digest(db) == before
    # The real process, several sub-second cycles of every job.
    with exporter(tmp_path, db, fast_config(tmp_path)) as svc:
        start = svc.value("pipeline_exporter_query_duration_seconds_count", query="database_integrity")
        from tests.support.procs import wait_for
        wait_for(lambda: svc.value("pipeline_exporter_query_duration_seconds_count",
                                   query="database_integrity") >= start + 2, timeout=15, what="integrity cycles")
    assert digest(db) == before


WRITES = ["INSERT INTO opt_outs (channel, contact) VALUES ('sms', 'x')",
          "UPDATE sites SET status = 'sold'",
          "DELETE FROM sites",
          "CREATE TABLE pe_probe (a)",
          "DROP TABLE opt_outs",
          "PRAGMA user_version = 7",
          "PRAGMA journal_mode = DELETE",
          "VACUUM"]


@pytest.mark.parametrize("sql", WRITES)
def test_a_write_through_the_exporters_own_connection_fails(tmp_path, demo_db, sql):
    db_path = shutil.copy(demo_db, tmp_path / "sites.db")
    before = digest(db_path)
    db = Database(f"sqlite:///{db_path}")
    with pytest.raises(CollectionError) as failure:
        db.fetch([sql], {}, timeout=5)
    # VACUUM (no authorizer action of its own) fails because every read runs inside a transaction.
    refusals = ("readonly", "SQLITE_READONLY", "I/O", "SQLITE_AUTH") + (("SQLITE_ERROR",) if sql == "VACUUM" else ())
    assert any(word in str(failure.value) for word in refusals), failure.value
    assert digest(db_path) == before
    assert db.fetch(["SELECT COUNT(*) FROM opt_outs"], {}, 5)[0].rows[0][0] > 0


@pytest.mark.parametrize("sql", ["ATTACH DATABASE '{other}' AS other", "VACUUM INTO '{other}'"])
def test_statements_that_would_create_another_file_are_refused(tmp_path, demo_db, sql):
    db = Database(f"sqlite:///{shutil.copy(demo_db, tmp_path / 'sites.db')}")
    # ATTACH is denied by the authorizer; VACUUM INTO fails first because reads run in a transaction.
    with pytest.raises(CollectionError, match="SQLITE_AUTH" if sql.startswith("ATTACH") else "SQLITE_ERROR"):
        db.fetch([sql.format(other=tmp_path / "other.db")], {}, timeout=5)
    assert not (tmp_path / "other.db").exists()
