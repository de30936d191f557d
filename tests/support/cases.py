"""The cases of issue 19, each a function of a fresh pipeline database (``Store``): run on SQLite by
tests/unit/test_numbers_sqlite.py and on PostgreSQL and MariaDB by tests/databases/test_numbers_servers.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline_exporter.web import status_page
from tests.support.numbers import Clock, Store, exporter, scrape, window_samples

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
                                  "created_at": store.stamp(t)} for t in sorted(moments)])
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


WINDOW_CASES = [history_out_of_time_order, future_rows, window_keys_go_back]
CASES = pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda case: case.__name__)
