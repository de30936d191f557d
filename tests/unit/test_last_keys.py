"""`$last_keys`: a counter query that counts above every bound of a run in one statement (one scan
of the table) gives exactly what the same query gives with one statement per `:last_key`, through
new, late, future-dated, moved and pruned events and the hourly recount."""

from __future__ import annotations

import random
import sqlite3
import textwrap
import time
from pathlib import Path

import pytest

from pipeline_exporter.config import load_config
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.model import Result
from pipeline_exporter.sql import last_keys_sql, split_bounds
from tests.support.known_rows import ROWS
from tests.support.sqlite import NOW_TS, build_db
from tests.unit.test_incremental import Clock, exporter_on, samples

EVENTS = ("created_at", "sent_at", "delivered_at", "replied_at")

# The same counts twice: one statement per bound (:last_key), and every bound in one ($last_keys),
# with the event times computed once per row (SQLite: LIMIT -1 keeps the subquery apart): the form
# docs/performance.md proposes for the method333 pack's outreach_events.
CONFIG = textwrap.dedent("""\
    packs: []
    queries:
      per_bound:
        incremental: {key: t, time: true, settle_after: 10m, full_every: 1h}
        sql: |
          SELECT channel,
    %(per_bound)s
          FROM outreaches GROUP BY channel
        metrics: [{name: a_events_total, type: counter, help: E., labels: [channel],
                   values: {label: event, columns: {%(columns)s}}}]
      one_scan:
        incremental: {key: t, time: true, settle_after: 10m, full_every: 1h}
        sql: |
          SELECT b.pe_bound, channel,
    %(one_scan)s
          FROM (SELECT channel, %(epochs)s FROM outreaches LIMIT -1) o CROSS JOIN $last_keys b
          WHERE %(any)s
          GROUP BY b.pe_bound, channel
        metrics: [{name: b_events_total, type: counter, help: E., labels: [channel],
                   values: {label: event, columns: {%(columns)s}}}]
      ids_per_bound:
        incremental: {key: id}
        sql: SELECT channel, COUNT(*) AS n, MAX(id) AS max_key FROM opt_outs WHERE id > :last_key GROUP BY channel
        metrics: [{name: a_opt_outs_total, type: counter, help: O., labels: [channel], value: n}]
      ids_one_scan:
        incremental: {key: id}
        sql: |
          SELECT b.pe_bound, channel, COUNT(*) AS n, MAX(id) AS max_key
          FROM opt_outs CROSS JOIN $last_keys b WHERE id > b.last_key GROUP BY b.pe_bound, channel
        metrics: [{name: b_opt_outs_total, type: counter, help: O., labels: [channel], value: n}]
    """) % {
    "per_bound": ",\n".join(f"             SUM(CASE WHEN $epoch({c}) > :last_key THEN 1 ELSE 0 END) AS {c}"
                            for c in EVENTS),
    "one_scan": ",\n".join(f"             SUM(CASE WHEN e_{c} > b.last_key THEN 1 ELSE 0 END) AS {c}" for c in EVENTS),
    "epochs": ", ".join(f"$epoch({c}) AS e_{c}" for c in EVENTS),
    # a row that counts nothing above a bound does not enter the GROUP BY's sort: a missing group is zero
    "any": " OR ".join(f"e_{c} > b.last_key" for c in EVENTS),
    "columns": ", ".join(f"{c}: {c}" for c in EVENTS),
}


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def change(db: Path, rng: random.Random, now: float) -> None:
    """One random change of the world: new events, late deliveries, future dates, corrections, prunes."""
    conn = sqlite3.connect(db)
    with conn:
        kind = rng.choice(["new", "new", "late", "future", "moved", "prune", "opt_out", "opt_out_late"])
        if kind == "new":
            for _ in range(rng.randint(1, 4)):
                t = now - rng.uniform(0, 120)
                conn.execute("INSERT INTO outreaches (site_id, channel, contact, status, created_at, sent_at) "
                             "VALUES (1, ?, 'c', 'sent', ?, ?)", (rng.choice(["email", "sms"]), stamp(t), stamp(t)))
        elif kind == "late":  # a provider reports a delivery or a reply dated well before now
            column = rng.choice(["delivered_at", "replied_at"])
            conn.execute(f"UPDATE outreaches SET {column} = ? WHERE id = (SELECT id FROM outreaches "
                         f"WHERE {column} IS NULL ORDER BY id LIMIT 1 OFFSET ?)",
                         (stamp(now - rng.uniform(0, 3000)), rng.randint(0, 3)))
        elif kind == "future":
            conn.execute("INSERT INTO outreaches (site_id, channel, contact, status, created_at) "
                         "VALUES (1, 'sms', 'c', 'queued', ?)", (stamp(now + rng.uniform(10, 400)),))
        elif kind == "moved":  # a timestamp corrected back in time
            conn.execute("UPDATE outreaches SET sent_at = ? WHERE id = (SELECT MAX(id) FROM outreaches)",
                         (stamp(now - 7200),))
        elif kind == "prune":
            conn.execute("DELETE FROM outreaches WHERE id = (SELECT MIN(id) FROM outreaches)")
            conn.execute("DELETE FROM opt_outs WHERE id = (SELECT MIN(id) FROM opt_outs)")
        elif kind == "opt_out":  # leaves a gap below it, for a late commit to fill
            conn.execute("INSERT INTO opt_outs (id, channel, contact, created_at) VALUES "
                         "((SELECT MAX(id) + 2 FROM opt_outs), ?, 'x', ?)", (rng.choice(["email", "sms"]), stamp(now)))
        else:  # a row committed late with an id below the largest seen
            conn.execute("INSERT OR IGNORE INTO opt_outs (id, channel, contact, created_at) VALUES "
                         "((SELECT MAX(id) - 1 FROM opt_outs), 'sms', 'y', ?)", (stamp(now),))
    conn.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_scan_equals_one_statement_per_bound(tmp_path, seed):
    db = build_db(tmp_path / "sites.db", ROWS)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    clock = Clock()
    exporter = exporter_on(db, clock, config)
    rng = random.Random(seed)
    names = ["a_events", "b_events", "a_opt_outs", "b_opt_outs"]
    for _ in range(60):
        change(db, rng, clock.now)
        clock.now += rng.choice([15, 60, 300, 900])
        got = samples(exporter, names)
        for family in ("events", "opt_outs"):
            a = {labels: v for (name, labels), v in got.items() if name == f"a_{family}_total"}
            b = {labels: v for (name, labels), v in got.items() if name == f"b_{family}_total"}
            assert a and a == b
        states = {s.info.name: s for s in exporter.pipeline.snapshot.states()}
        assert not [(n, states[n].error) for n in ("per_bound", "one_scan", "ids_per_bound", "ids_one_scan")
                    if states[n].error]


def test_last_keys_is_a_table_of_bounds_and_the_rows_split_by_bound():
    sql = last_keys_sql("SELECT * FROM t CROSS JOIN $last_keys b", 3)
    assert sql == ("SELECT * FROM t CROSS JOIN (SELECT 0 AS pe_bound, :pe_last_key_0 AS last_key UNION ALL "
                   "SELECT 1, :pe_last_key_1 UNION ALL SELECT 2, :pe_last_key_2) b")
    parts = split_bounds(Result(["c", "pe_bound", "n"], [("x", 0, 1), ("y", 2, 5), ("x", 2, 3)]), 3)
    assert [p.columns for p in parts] == [["c", "n"]] * 3
    assert [p.rows for p in parts] == [[("x", 1)], [], [("y", 5), ("x", 3)]]


def test_last_keys_and_last_key_together_are_refused(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("packs: []\nqueries:\n  q:\n    incremental: {key: id}\n    sql: SELECT b.pe_bound, "
                      "COUNT(*) AS n, MAX(id) AS max_key FROM sales CROSS JOIN $last_keys b WHERE id > :last_key "
                      "GROUP BY b.pe_bound\n    metrics: [{name: demo_total, type: counter, help: N., value: n}]\n")
    with pytest.raises(ConfigError, match="either :last_key .* or \\$last_keys"):
        load_config(config)


def test_a_last_keys_query_without_pe_bound_is_refused_at_start(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    config = tmp_path / "config.yaml"
    config.write_text("packs: []\nqueries:\n  q:\n    incremental: {key: id}\n    sql: SELECT COUNT(*) AS n, "
                      "MAX(id) AS max_key FROM sales CROSS JOIN $last_keys b WHERE id > b.last_key\n"
                      "    metrics: [{name: demo_total, type: counter, help: N., value: n}]\n")
    exporter = exporter_on(db, Clock(NOW_TS), config)
    with pytest.raises(ConfigError, match="returns the column pe_bound"):
        exporter.pipeline.probe()
