"""The cases of issue 19, each a function of a fresh pipeline database (``Store``): run on SQLite by
tests/unit/test_numbers_sqlite.py and on PostgreSQL and MariaDB by tests/databases/test_numbers_servers.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline_exporter.web import status_page
from tests.support.numbers import Clock, Store, counter, exporter, scrape, window_samples

FAST = "pipeline_exporter_query_fast_path"


def fast_path(samples: dict[tuple, float], query: str) -> float | None:
    return samples.get((FAST, (("query", query),)))


def assert_windows(samples: dict[tuple, float], store: Store, metric: str, label: str, table: str,
                   time: str, column: str, now: float) -> None:
    got = window_samples(samples, metric, label)
    want = store.windows(table, time, column, now)
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in want.items() if v}, metric


def history_out_of_time_order(store: Store, tmp: Path) -> None:
    """Imported history: ids do not follow time. The windows equal plain SQL, the query says it left
    its fast path (metric 0, the reason on the status page), a table in order keeps it."""
    clock = Clock()
    rng = random.Random(19)
    store.insert("sites", [{"id": 1, "domain": "a.example", "status": "found"}])
    moments = [clock.now - rng.uniform(0, 30 * 86400) for _ in range(300)]  # shuffled: ids follow no time
    store.insert("opt_outs", [{"channel": rng.choice(["sms", "email"]), "contact": "c", "created_at": store.stamp(t)}
                              for t in moments])
    store.insert("site_status_history", [{"site_id": 1, "to_status": rng.choice(["found", "scored"]),
                                          "changed_at": store.stamp(t)} for t in reversed(moments)])
    store.insert("http_errors", [{"source": "s", "stage": "fetch", "status_code": 429, "url": "u",
                                  "created_at": store.stamp(t)}  # dense around the 7d edge the key search cuts at
                                 for t in sorted(moments + [clock.now - 604800 + d for d in range(-1500, 3000, 30)])])
    exp = exporter(store, tmp, clock)
    try:
        for _ in range(3):
            samples = scrape(exp, "opt_outs_recent", "site_transitions_recent", "http_errors_recent")
            assert_windows(samples, store, "pipeline_opt_outs_recent", "channel", "opt_outs", "created_at",
                           "channel", clock.now)
            assert_windows(samples, store, "pipeline_site_transitions_recent", "to_status", "site_status_history",
                           "changed_at", "to_status", clock.now)
            assert_windows(samples, store, "pipeline_http_errors_recent", "source", "http_errors", "created_at",
                           "source", clock.now)
            assert fast_path(samples, "opt_outs_recent") == 0
            assert fast_path(samples, "site_transitions_recent") == 0
            assert fast_path(samples, "http_errors_recent") == 1
            clock.now += 61
            store.insert("opt_outs", [{"channel": "sms", "contact": "c", "created_at": store.stamp(clock.now - 5)}])
        page = status_page(exp)
        assert "no: " in page and "id does not follow created_at" in page
        for _ in range(3):  # the window moves past the first settle point: the table in order stays fast
            clock.now += 700
            samples = scrape(exp, "http_errors_recent")
            assert_windows(samples, store, "pipeline_http_errors_recent", "source", "http_errors", "created_at",
                           "source", clock.now)
            assert fast_path(samples, "http_errors_recent") == 1
    finally:
        exp.stop()


def future_rows(store: Store, tmp: Path) -> None:
    """A window is (now - w, now]: a row dated in the future counts in no window until its time comes."""
    clock = Clock()
    base = clock.now
    rows = [(base - 3000 + 10 * i, "past") for i in range(100)] + [(base + 30, "soon"), (base + 2 * 86400, "later")]
    store.insert("http_errors", [{"source": source, "stage": "fetch", "status_code": 429, "url": "u",
                                  "created_at": store.stamp(t)} for t, source in rows])
    exp = exporter(store, tmp, clock)
    try:
        for step in (0, 31, 600, 2 * 86400 - 1, 2 * 86400 + 1):
            clock.now = base + step
            samples = scrape(exp, "http_errors_recent")
            assert_windows(samples, store, "pipeline_http_errors_recent", "source", "http_errors", "created_at",
                           "source", clock.now)
            got = window_samples(samples, "pipeline_http_errors_recent", "source")
            assert got.get(("later", "15m"), 0) == (1 if step > 2 * 86400 else 0), step
            assert got.get(("soon", "7d"), 0) == (1 if step >= 31 else 0), step
            assert fast_path(samples, "http_errors_recent") == 1  # the key path counts them right, by itself
    finally:
        exp.stop()


def window_keys_go_back(store: Store, tmp: Path) -> None:
    """A table emptied and refilled (a backup restored): the windows equal plain SQL at the next run."""
    clock = Clock()

    def errors(first: int, n: int, newest: float) -> list[dict]:
        return [{"id": first + i, "source": "s", "stage": "fetch", "status_code": 403, "url": "u",
                 "created_at": store.stamp(newest - 20 * (n - i))} for i in range(n)]

    store.insert("http_errors", errors(1, 300, clock.now))
    store.rekey("http_errors")
    exp = exporter(store, tmp, clock)
    try:
        for _ in range(3):
            scrape(exp, "http_errors_recent")
            clock.now += 60
        store.execute("DELETE FROM http_errors")
        store.insert("http_errors", errors(1, 50, clock.now - 7200))  # the backup of two hours ago
        store.rekey("http_errors")
        for _ in range(3):
            samples = scrape(exp, "http_errors_recent")
            assert_windows(samples, store, "pipeline_http_errors_recent", "source", "http_errors", "created_at",
                           "source", clock.now)
            clock.now += 60
            store.insert("http_errors", [{"source": "s", "stage": "fetch", "status_code": 403, "url": "u",
                                          "created_at": store.stamp(clock.now - 1)}])
    finally:
        exp.stop()


def counter_keys_go_back(store: Store, tmp: Path) -> None:
    """A table emptied and refilled, a backup restored: the counters keep their value, then rise by
    exactly the events that appear after the re-anchoring run, through the settle and the recount."""
    clock = Clock()

    def opt_outs(first: int, n: int) -> list[dict]:
        return [{"id": first + i, "channel": "sms", "contact": "c", "created_at": store.stamp(clock.now - 1)}
                for i in range(n)]

    def errors(first: int, n: int) -> list[dict]:
        return [{"id": first + i, "source": "s", "stage": "fetch", "status_code": 429, "url": "u",
                 "created_at": store.stamp(clock.now - 1)} for i in range(n)]

    store.insert("opt_outs", opt_outs(1, 300))
    store.insert("http_errors", errors(1, 80))
    exp = exporter(store, tmp, clock)
    try:
        def run() -> tuple[float, float]:
            clock.now += 60
            samples = scrape(exp, "opt_outs", "http_errors")
            return counter(samples, "pipeline_opt_outs"), counter(samples, "pipeline_http_errors")

        assert run() == (300, 80)
        clock.now += 900  # the 300 settle
        assert run() == (300, 80)
        store.execute("DELETE FROM opt_outs")
        store.execute("DELETE FROM http_errors")
        store.insert("opt_outs", opt_outs(1, 100))  # the backup: counted before, not again
        store.insert("http_errors", errors(1, 30))
        assert run() == (300, 80)
        store.rekey("opt_outs")
        store.rekey("http_errors")
        added = 0
        for step in range(14):  # 140 new opt-outs and 40 new errors, across a settle and the hourly recount
            store.insert("opt_outs", [{k: v for k, v in row.items() if k != "id"} for row in opt_outs(0, 10)])
            if step < 4:
                store.insert("http_errors", [{k: v for k, v in row.items() if k != "id"} for row in errors(0, 10)])
            added += 10
            clock.now += 300
            assert run() == (300 + added, 80 + 10 * min(step + 1, 4)), step
    finally:
        exp.stop()


def deleted_before_settling(store: Store, tmp: Path) -> None:
    """A cron log that keeps only the newest 3 rows per job: every run that finished and was seen by
    an exporter run is counted once, though its row is gone before it settles."""
    clock = Clock()
    store.insert("cron_jobs", [{"name": "a", "description": "d", "interval_seconds": 15, "enabled": 1}])
    exp = exporter(store, tmp, clock)
    finished = 0
    try:
        for step in range(90):  # 67 min: past settle_after and the hourly recount
            clock.now += 45
            ends = 2 if step % 7 == 3 else 1  # now and then two runs end between exporter runs
            store.insert("cron_job_logs", [{"job_name": "a", "status": "success",
                                            "started_at": store.stamp(clock.now - 10 - i),
                                            "finished_at": store.stamp(clock.now - 1 - i)} for i in range(ends)])
            finished += ends
            keep = store.execute("SELECT id FROM cron_job_logs ORDER BY id DESC")[:3]
            store.execute(f"DELETE FROM cron_job_logs WHERE id < {min(row[0] for row in keep)}")
            got = counter(scrape(exp, "cron_job_runs"), "pipeline_cron_job_runs", cron_job="a", status="success")
            assert got == finished, step
        store.execute("DELETE FROM cron_job_logs WHERE id IN (SELECT id FROM (SELECT id FROM cron_job_logs "
                      "ORDER BY id DESC LIMIT 2) x)")  # two recent rows go, one comes: +1
        store.insert("cron_job_logs", [{"job_name": "a", "status": "success", "started_at": store.stamp(clock.now),
                                        "finished_at": store.stamp(clock.now + 1)}])
        clock.now += 15
        got = counter(scrape(exp, "cron_job_runs"), "pipeline_cron_job_runs", cron_job="a", status="success")
        assert got == finished + 1
    finally:
        exp.stop()


def timestamp_moves_back(store: Store, tmp: Path) -> None:
    """delivered_at first the webhook's receipt time, then the provider's time 2 h earlier (below the
    settled bound): counted once, also after the hourly recount."""
    clock = Clock()
    store.insert("sites", [{"id": 1, "domain": "a.example", "status": "found"}])
    start = clock.now
    store.insert("outreaches", [{"id": 1, "site_id": 1, "channel": "email", "contact": "c", "status": "delivered",
                                 "created_at": store.stamp(start - 86400), "sent_at": store.stamp(start - 86400),
                                 "delivered_at": store.stamp(start - 30)}])
    exp = exporter(store, tmp, clock)
    try:
        for step in range(12):
            if step == 2:
                store.execute("UPDATE outreaches SET delivered_at = :t WHERE id = 1", {"t": store.stamp(start - 7230)})
            samples = scrape(exp, "outreach_events")
            assert counter(samples, "pipeline_outreach_events", channel="email", event="delivered") == 1, step
            clock.now += 900  # across settle_after (1 h) and the hourly recount, twice
    finally:
        exp.stop()


def late_commit_before_first_settle(store: Store, tmp: Path) -> None:
    """A row committed late, below the largest id, before the first settle point (the first
    settle_after after start, or the first rows of an empty table): in the windows at the next run,
    and still 12 minutes later."""
    clock = Clock()

    def error(key: int, moment: float) -> dict:
        return {"id": key, "source": "late", "stage": "fetch", "status_code": 429, "url": "u",
                "created_at": store.stamp(moment)}

    exp = exporter(store, tmp, clock)
    try:
        scrape(exp, "http_errors_recent")  # an empty table
        clock.now += 15
        # ids 1-10 and 12 commit; 11 was taken by a transaction still open
        store.insert("http_errors", [error(key, clock.now - 20) for key in (*range(1, 11), 12)])
        store.rekey("http_errors")
        scrape(exp, "http_errors_recent")
        clock.now += 15
        store.insert("http_errors", [error(11, clock.now - 25)])  # it commits
        for step in range(25):
            samples = scrape(exp, "http_errors_recent")
            assert_windows(samples, store, "pipeline_http_errors_recent", "source", "http_errors", "created_at",
                           "source", clock.now)
            assert window_samples(samples, "pipeline_http_errors_recent", "source")[("late", "1h")] == 12, step
            clock.now += 31
    finally:
        exp.stop()


WINDOW_CASES = [history_out_of_time_order, future_rows, window_keys_go_back, late_commit_before_first_settle]
COUNTER_CASES = [counter_keys_go_back, deleted_before_settling, timestamp_moves_back]
CASES = pytest.mark.parametrize("case", WINDOW_CASES + COUNTER_CASES, ids=lambda case: case.__name__)
