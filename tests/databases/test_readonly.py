"""Read-only: SELECT privileges are enough for the whole pack, and the exporter's sessions refuse writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_exporter.db import Database
from pipeline_exporter.errors import CollectionError
from tests.support.servers import Server, make_exporter, samples, unique

WRITES = ["INSERT INTO opt_outs (channel, contact) VALUES ('email', 'intruder@example.com')",
          "UPDATE sites SET status = 'sold'",
          "DELETE FROM cron_job_logs"]


@pytest.fixture
def reader(server: Server, demo_database: str) -> Iterator[str]:
    """A URL for a login that may only SELECT from the demo database's tables; removed afterwards."""
    user, password = unique("pe_reader"), "reader-pw"
    if server.kind == "postgresql":
        server.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'",
                       f"GRANT CONNECT ON DATABASE {demo_database} TO {user}")
        server.execute(f"GRANT USAGE ON SCHEMA public TO {user}",
                       f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}", database=demo_database)
        try:
            yield server.url(demo_database, user, password)
        finally:
            server.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{user}'",
                           f"DROP OWNED BY {user}", database=demo_database)
            server.execute(f"DROP ROLE IF EXISTS {user}")
    else:
        hosts = ("%", "localhost")
        for host in hosts:
            server.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'",
                           f"GRANT SELECT ON {demo_database}.* TO '{user}'@'{host}'")
        try:
            yield server.url(demo_database, user, password)
        finally:
            for host in hosts:
                server.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


def counts(server: Server, database: str) -> list[tuple]:
    return server.execute("SELECT (SELECT COUNT(*) FROM opt_outs), (SELECT COUNT(*) FROM cron_job_logs), "
                          "(SELECT COUNT(*) FROM sites WHERE status = 'sold')", database=database)[0]


def test_select_privileges_are_enough_for_every_query(reader: str, tmp_path: Path) -> None:
    exporter = make_exporter(reader, tmp_path)
    try:
        assert exporter.pipeline.probe() == (len(exporter.pipeline.config.queries), {})
        exporter.pipeline.scheduler.run_once()
        failing = {s.info.name: s.error for s in exporter.snapshot.states()
                   if s.error and s.info.kind in ("query", "database")}
        assert failing == {}
        exposed = samples(exporter)
        assert exposed[("pipeline_exporter_database_up", ())] == 1.0
        assert exposed[("pipeline_database_size_bytes", ())] > 0
        assert exposed[("pipeline_sites_created_total", ())] == 2_000
    finally:
        exporter.stop()


@pytest.mark.parametrize("as_reader", [False, True], ids=["superuser", "select-only"])
def test_a_write_through_the_exporters_connection_fails(server: Server, demo_database: str, reader: str,
                                                        as_reader: bool) -> None:
    # Even a login allowed to write cannot: every session the exporter opens is read-only.
    before = counts(server, demo_database)
    db = Database(reader if as_reader else server.url(demo_database))
    try:
        for statement in WRITES:
            with pytest.raises(CollectionError) as caught:
                db.fetch([statement], {}, 5.0)
            assert caught.value.kind == "query"
            if not as_reader:
                # PostgreSQL's read_only_sql_transaction, MariaDB/MySQL's ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
                assert "SQLSTATE 25006" in str(caught.value) or "MySQL error 1792" in str(caught.value), caught.value
        # Also straight on a pooled connection, outside fetch() and its transaction.
        with db.engine.connect() as conn, pytest.raises(Exception, match="(?i)read.only|denied|permission"):
            conn.exec_driver_sql(WRITES[0])
            conn.commit()
    finally:
        db.close()
    assert counts(server, demo_database) == before
