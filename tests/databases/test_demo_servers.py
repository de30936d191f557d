"""The demo generator on real PostgreSQL and MariaDB: the same rows as SQLite, refusals without
--force, UTC timestamps, identities that continue after the demo's ids."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy

from pipeline_exporter.errors import DemoTargetNotEmpty
from pipeline_exporter.packs.method333.demo import build_demo, build_demo_url, schema_statements
from pipeline_exporter.redact import mask_url
from tests.support.docs import database_tables
from tests.support.servers import Server

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
CONTRACT = {table: set(columns) for table, columns in database_tables().items()}


def rows(conn: sqlite3.Connection, sql: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sql)]


SERVER_SITES = 300


@pytest.fixture
def server_url(server: Server, scratch_database: str) -> str:
    """URL of a throwaway database on a real PostgreSQL or MariaDB, dropped afterwards."""
    return server.url(scratch_database)


@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, int], list[tuple]]:
    """Counts and site rows of the SQLite build the servers must match."""
    path = tmp_path_factory.mktemp("reference") / "sites.db"
    counts = build_demo(path, sites=SERVER_SITES, now=NOW)
    conn = sqlite3.connect(path)
    try:
        sites = rows(conn, "SELECT id, domain, status, error_type, score FROM sites ORDER BY id")
    finally:
        conn.close()
    return counts, sites


def server_query(url: str, sql: str) -> list[tuple]:
    """Rows of a query on a server database."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def test_server_gets_the_same_rows_as_sqlite(server_url: str,
                                             sqlite_reference: tuple[dict[str, int], list[tuple]]) -> None:
    counts, sites = sqlite_reference
    assert build_demo_url(server_url, sites=SERVER_SITES, now=NOW) == counts
    # A second run with force replaces the rows instead of adding to them.
    assert build_demo_url(server_url, sites=SERVER_SITES, now=NOW, force=True) == counts
    for table, n in counts.items():
        assert server_query(server_url, f"SELECT COUNT(*) FROM {table}") == [(n,)], table
    got = server_query(server_url, "SELECT id, domain, status, error_type, score FROM sites ORDER BY id")
    assert got == sites
    columns = server_query(server_url, "SELECT table_name, column_name FROM information_schema.columns "
                                       "WHERE table_schema = " + (
                                           "'public'" if server_url.startswith("postgresql") else "DATABASE()"))
    found: dict[str, set[str]] = {}
    for table, column in columns:
        found.setdefault(table, set()).add(column)
    assert found == CONTRACT


def test_server_tables_with_rows_are_refused_without_force(server_url: str) -> None:
    engine = sqlalchemy.create_engine(server_url)
    try:
        with engine.begin() as conn:  # the pipeline's own rows, in one table only
            for statement in schema_statements("postgresql" if server_url.startswith("postgresql") else "mysql"):
                conn.exec_driver_sql(statement)
            conn.exec_driver_sql("INSERT INTO opt_outs (channel, contact) VALUES ('sms', 'real customer')")
    finally:
        engine.dispose()
    # The refusal names the database with its password masked (the test servers ignore or lack one).
    with_password = server_url.replace("postgres@", "postgres:s3cret@")
    shown = mask_url(with_password).split("//", 1)[1]
    refusal = rf"{re.escape(shown)} already has rows in opt_outs;.*--force"
    with pytest.raises(DemoTargetNotEmpty, match=refusal) as refused:
        build_demo_url(with_password, sites=50, now=NOW)
    assert "s3cret" not in str(refused.value)
    assert server_query(server_url, "SELECT contact FROM opt_outs") == [("real customer",)]
    assert server_query(server_url, "SELECT COUNT(*) FROM sites") == [(0,)]
    counts = build_demo_url(server_url, sites=50, now=NOW, force=True)
    assert server_query(server_url, "SELECT COUNT(*) FROM opt_outs") == [(counts["opt_outs"],)]
    assert server_query(server_url, "SELECT COUNT(*) FROM opt_outs WHERE contact = 'real customer'") == [(0,)]


def test_server_with_empty_pipeline_tables_needs_no_force(server_url: str) -> None:
    engine = sqlalchemy.create_engine(server_url)
    try:
        with engine.begin() as conn:  # the shipped DDL applied, no rows yet: nothing to lose
            for statement in schema_statements("postgresql" if server_url.startswith("postgresql") else "mysql"):
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert build_demo_url(server_url, sites=50, now=NOW)["sites"] == 50


def test_server_timestamps_are_utc(server_url: str) -> None:
    build_demo_url(server_url, sites=50, now=NOW)
    latest = server_query(server_url, "SELECT MAX(created_at) FROM http_errors")[0][0]
    latest = latest if latest.tzinfo else latest.replace(tzinfo=timezone.utc)
    assert timedelta(0) <= NOW - latest < timedelta(minutes=15)


def test_identities_continue_after_the_demo_rows(server_url: str) -> None:
    # MySQL's AUTO_INCREMENT follows explicit ids by itself; PostgreSQL's identities must be moved on.
    counts = build_demo_url(server_url, sites=50, now=NOW)
    engine = sqlalchemy.create_engine(server_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO opt_outs (channel, contact) VALUES ('email', 'x@example.com')")
            new_id = conn.exec_driver_sql("SELECT MAX(id) FROM opt_outs").scalar_one()
    finally:
        engine.dispose()
    assert new_id == counts["opt_outs"] + 1
