"""`$scan` per database (pipeline_exporter/plans.py): on SQLite the hint is dropped only where the
planner reads a covering index instead of the whole table, a key range keeps it, the choice follows
a schema change, and the numbers are the same either way."""

from __future__ import annotations

import sqlite3
import textwrap

from pipeline_exporter.app import families
from pipeline_exporter.config import load_config
from pipeline_exporter.db import Database
from pipeline_exporter.plans import ScanChoice
from pipeline_exporter.sql import render, statements
from tests.support.known_rows import ROWS
from tests.support.sqlite import NOW_TS, build_db
from tests.unit.test_incremental import Clock, exporter_on

CONFIG = textwrap.dedent("""\
    packs: []
    queries:
      by_channel:
        sql: SELECT channel, COUNT(*) AS n FROM $scan(opt_outs) GROUP BY channel
        metrics: [{name: demo_opt_outs, type: gauge, help: O., labels: [channel], value: n}]
      added:
        incremental: {key: id}
        sql: |
          SELECT channel, COUNT(*) AS n, MAX(id) AS max_key FROM $scan(opt_outs)
          WHERE id > :last_key GROUP BY channel
        metrics: [{name: demo_opt_outs_added_total, type: counter, help: O., labels: [channel], value: n}]
    """)


def choices(tmp_path, db):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(CONFIG)
    config = load_config(config_path, {"database_url": f"sqlite:///{db}"})
    queries = {q.name: q for q in config.queries}
    return (ScanChoice(queries["by_channel"], "sqlite", lambda scan: statements(queries["by_channel"], "sqlite", scan)),
            ScanChoice(queries["added"], "sqlite", lambda scan: [render(queries["added"], "sqlite", scan)]))


def chosen(database: Database, choice: ScanChoice, last_key: int = -1) -> str:
    return database.read(lambda run: choice.statements(run, {"now": NOW_TS, "last_key": last_key})[0], 10)


def test_the_hint_goes_where_a_covering_index_answers_and_stays_on_a_key_range(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    database = Database(f"sqlite:///{db}")
    try:
        by_channel, added = choices(tmp_path, db)
        # The shipped DDL: opt_outs(channel, contact) holds every column the GROUP BY reads.
        assert "NOT INDEXED" not in chosen(database, by_channel)
        # A key range: the hint keeps the primary key (the planner would walk the covering index whole).
        assert "NOT INDEXED" in chosen(database, added, 1)
        conn = sqlite3.connect(db)
        conn.execute("DROP INDEX idx_opt_outs_contact")
        conn.close()
        # The schema changed: asked again; no covering index now, the hint stays.
        assert "NOT INDEXED" in chosen(database, by_channel)
    finally:
        database.close()


def test_a_non_sqlite_database_runs_the_table_as_written(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    by_channel, _ = choices(tmp_path, db)
    mysql = ScanChoice(by_channel.query, "mysql", lambda scan: statements(by_channel.query, "mysql", scan))
    assert not mysql.active and mysql.hinted == mysql.free


def test_the_numbers_are_the_same_with_the_hint_or_the_planner(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    clock = Clock()
    with_index = exporter_on(db, clock, config)
    with_index.pipeline.scheduler.run_once()
    before = {(s.name, tuple(sorted(s.labels.items())), s.value) for f in families(with_index.registry).values()
              for s in f.samples if s.name.startswith("demo_")}
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX idx_opt_outs_contact")
    conn.close()
    clock.now += 60
    with_index.pipeline.scheduler.run_once()
    after = {(s.name, tuple(sorted(s.labels.items())), s.value) for f in families(with_index.registry).values()
             for s in f.samples if s.name.startswith("demo_")}
    assert before and before == after
