"""Infinity and NaN in summed columns on a real SQLite file: the macros, a histogram, and a pack that
sums such a column bare (issue 19 case 6; the built-in pack's case runs in tests/support/cases.py)."""

from __future__ import annotations

import logging
import sqlite3
import textwrap
from pathlib import Path

from pipeline_exporter.app import Exporter, families
from pipeline_exporter.sql import expand_macros
from tests.support.exposition import registry_samples, value
from tests.support.numbers import Clock

NONFINITE = "pipeline_exporter_nonfinite_values_total"


def test_finite_and_nonfinite_macros_on_sqlite(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "v.db") as conn:
        conn.execute("CREATE TABLE v (x REAL, n INTEGER)")
        conn.executemany("INSERT INTO v VALUES (?, ?)", [(1.5, 1), (None, 2), (2.0, 3)])
        conn.execute("INSERT INTO v VALUES (9e999, 4), (-9e999, 5), ('abc', 6), (9e999 - 9e999, 7)")
        sql = expand_macros("SELECT n, $finite(x), $nonfinite(x) FROM v ORDER BY n", "sqlite")
        rows = conn.execute(sql).fetchall()
    # NaN (inf - inf) is stored as NULL by SQLite: nothing to leave out, nothing to count
    assert rows == [(1, 1.5, 0), (2, None, 0), (3, 2.0, 0), (4, None, 1), (5, None, 1), (6, None, 1), (7, None, 0)]


def config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(textwrap.dedent(body))
    return path


def exporter(tmp_path: Path, path: Path, clock: Clock) -> Exporter:
    settings = {"database_url": f"sqlite:///{tmp_path / 'v.db'}", "coverage": tmp_path / "no-coverage.json",
                "e2e_report": tmp_path / "no-junit.xml"}
    return Exporter(path, settings, clock=clock)


def test_a_histogram_leaves_infinity_out_of_its_buckets_and_sum(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "v.db") as conn:
        conn.execute("CREATE TABLE v (x REAL)")
        conn.execute("INSERT INTO v VALUES (50), (9e999), (-9e999), (70)")
    path = config(tmp_path, """
        queries:
          amounts:
            sql: "SELECT x FROM v"
            metrics: [{name: demo_amount, type: histogram, help: H., value: x, buckets: [100]}]
        """)
    exp = exporter(tmp_path, path, Clock())
    try:
        exp.pipeline.scheduler.run_once()
        fams = families(exp.registry)
        assert value(fams, "demo_amount_count") == 2
        assert value(fams, "demo_amount_sum") == 120
        assert value(fams, "demo_amount_bucket", le="+Inf") == 2
    finally:
        exp.stop()


def test_a_bare_sum_that_comes_back_infinite_is_counted_logged_once_and_never_lowers(tmp_path: Path,
                                                                                      caplog) -> None:
    """The engine cannot take a non-finite SUM apart: the series keeps its value, the self-metric counts
    the row (at least one), one log line says to use $finite; a $finite column in the same query
    counts its other events at once."""
    with sqlite3.connect(tmp_path / "v.db") as conn:
        conn.execute("CREATE TABLE v (id INTEGER PRIMARY KEY, x REAL, y REAL)")
        conn.execute("INSERT INTO v (x, y) VALUES (1, 1), (2, 2)")
    path = config(tmp_path, """
        queries:
          v:
            incremental: {key: id}
            sql: |
              SELECT SUM(x) AS x, SUM($finite(y)) AS y, SUM($nonfinite(y)) AS pe_nonfinite_y, MAX(id) AS max_key
              FROM v WHERE id > :last_key
            metrics:
              - {name: demo_x_total, type: counter, help: X., value: x}
              - {name: demo_y_total, type: counter, help: Y., value: y}
        """)
    clock = Clock()
    exp = exporter(tmp_path, path, clock)
    try:
        def run() -> dict[tuple, float]:
            clock.now += 60
            exp.pipeline.scheduler.run_job("v")
            return registry_samples(families(exp.registry))

        assert run()[("demo_x_total", ())] == 3
        with sqlite3.connect(tmp_path / "v.db") as conn:
            conn.execute("INSERT INTO v (x, y) VALUES (9e999, 9e999), (4, 4)")
        with caplog.at_level(logging.WARNING, logger="pipeline_exporter.nonfinite"):
            for step in range(4):
                samples = run()
                assert samples[("demo_x_total", ())] == 3, step  # kept, never inf, never lower
                assert samples[("demo_y_total", ())] == 7, step  # the other event at once
                assert samples[(NONFINITE, (("column", "x"), ("query", "v")))] == 1, step
                assert samples[(NONFINITE, (("column", "y"), ("query", "v")))] == 1, step
                clock.now += 900
        assert sum("not a finite number" in r.getMessage() for r in caplog.records) == 1
    finally:
        exp.stop()
