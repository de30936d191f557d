"""Rows committed out of key order on PostgreSQL and MariaDB: counted within two runs, never twice.

Two writers hold open transactions on the demo database: the first takes the lower id, the second
the higher one and commits first. The exporter (the default pack, a clock the test moves) must count
the higher row at once, the lower one at the run after its commit, and neither again: not by the
runs that follow, not when the events settle, not at the hourly recount.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from pipeline_exporter.packs.method333.demo import build_demo_url
from tests.support.servers import NOW, NOW_TS, Server, make_exporter, samples

SERIES = ("pipeline_http_errors_total", (("code", "429"), ("source", "latecommit"), ("stage", "fetch")))
OPT_OUTS = ("pipeline_opt_outs_total", (("channel", "latecommit"),))


class Clock:
    def __init__(self) -> None:
        self.now = NOW_TS

    def __call__(self) -> float:
        return self.now


def writer(server: Server, database: str) -> sqlalchemy.Connection:
    """A connection of the pipeline's, with a transaction the test commits by hand."""
    engine = sqlalchemy.create_engine(server.url(database), poolclass=sqlalchemy.pool.NullPool)
    conn = engine.connect()
    conn.begin()
    return conn


def add_error(conn: sqlalchemy.Connection) -> int:
    conn.execute(sqlalchemy.text("INSERT INTO http_errors (source, stage, status_code, url, created_at) "
                                 "VALUES ('latecommit', 'fetch', 429, 'u', :t)"), {"t": "2025-06-01 11:59:00"})
    conn.execute(sqlalchemy.text("INSERT INTO opt_outs (channel, contact, created_at) "
                                 "VALUES ('latecommit', 'x', :t)"), {"t": "2025-06-01 11:59:00"})
    return int(conn.execute(sqlalchemy.text("SELECT MAX(id) FROM http_errors")).scalar_one())


def test_rows_committed_out_of_id_order_are_counted_within_two_runs_and_never_twice(
        server: Server, scratch_database: str, tmp_path: Path) -> None:
    build_demo_url(server.url(scratch_database), sites=50, seed=5, now=NOW)  # its own rows: it writes
    clock = Clock()
    exporter = make_exporter(server.url(scratch_database), tmp_path, now=None)
    exporter.pipeline.snapshot.clock = exporter.pipeline.scheduler.clock = clock
    first, second = writer(server, scratch_database), writer(server, scratch_database)
    try:
        def counts() -> tuple[float, float]:
            clock.now += 15
            exporter.pipeline.scheduler.run_once()
            exposed = samples(exporter)
            return exposed.get(SERIES, 0.0), exposed.get(OPT_OUTS, 0.0)

        assert counts() == (0, 0)
        low_id, high_id = add_error(first), add_error(second)
        assert low_id < high_id
        second.commit()
        for _ in range(4):  # the higher id, at once; the lower one's transaction stays open a minute
            assert counts() == (1, 1)
        first.commit()
        assert counts() == (2, 2)  # the lower id, at the next run
        for _ in range(3):
            assert counts() == (2, 2)
        clock.now += 3600  # past settle_after and the hourly recount
        for _ in range(3):
            assert counts() == (2, 2)
        assert exporter.pipeline.memory.counters["http_errors"][1].full_runs == 2
    finally:
        for conn in (first, second):
            conn.close()
        exporter.stop()


def test_every_statement_of_one_read_sees_one_snapshot(server: Server, scratch_database: str) -> None:
    from pipeline_exporter.db import Database

    build_demo_url(server.url(scratch_database), sites=20, seed=5, now=NOW)
    db = Database(server.url(scratch_database))
    other = writer(server, scratch_database)

    def work(run):
        before = run("SELECT COUNT(*) FROM opt_outs", {}).rows[0][0]
        add_error(other)
        other.commit()
        return before, run("SELECT COUNT(*) FROM opt_outs", {}).rows[0][0]

    try:
        before, after = db.read(work, 10.0)
        assert after == before, "a row committed during the run showed up in its second statement"
        assert db.fetch(["SELECT COUNT(*) FROM opt_outs"], {}, 10.0)[0].rows[0][0] == before + 1
    finally:
        other.close()
        db.close()
