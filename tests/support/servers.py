"""Real PostgreSQL and MariaDB/MySQL servers for the database suites: admin handles, throwaway
names, and in-process exporters on a server at a fixed instant.

Server URLs default to the local test services and can be changed with PIPELINE_TEST_POSTGRESQL_URL
and PIPELINE_TEST_MYSQL_URL (admin URLs; the database part names the one to connect to for admin work).
A server that does not answer skips the test locally and fails it under CI=true.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from pipeline_exporter.app import Exporter, families
from tests.support.exposition import Samples, registry_samples
from tests.support.procs import IN_CI

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
NOW_TS = NOW.timestamp()
SITES = 2_000
SEED = 333

ADMIN_URLS = {
    "postgresql": os.environ.get("PIPELINE_TEST_POSTGRESQL_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("PIPELINE_TEST_MYSQL_URL", "mysql+pymysql://root:@127.0.0.1:3306/"),
}
SERVERS = sorted(ADMIN_URLS)


@dataclass
class Server:
    """One database server reached with admin rights."""

    kind: str
    admin: sqlalchemy.Engine
    admin_url: URL

    def url(self, database: str, user: str | None = None, password: str | None = None) -> str:
        """A URL to ``database`` on this server, as the admin or as another user."""
        url = self.admin_url.set(database=database)
        if user is not None:
            url = url.set(username=user, password=password)
        return url.render_as_string(hide_password=False)

    def execute(self, *statements: str, database: str | None = None) -> list[list[tuple]]:
        """Run admin statements (autocommit), in ``database`` if given; rows of each."""
        engine = self.admin if database is None else sqlalchemy.create_engine(
            self.url(database), isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
        out = []
        with engine.connect() as conn:
            for statement in statements:
                result = conn.execute(sqlalchemy.text(statement))
                out.append([tuple(r) for r in result] if result.returns_rows else [])
        return out

    def create_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")

    def drop_database(self, name: str) -> None:
        if self.kind == "postgresql":
            # Pooled exporter connections may still be open; a throwaway database goes anyway.
            self.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                         "AND pid <> pg_backend_pid()")
        self.execute(f"DROP DATABASE IF EXISTS {name}")


def unreachable(message: str) -> None:
    """Skip locally, fail under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


def connect_server(kind: str) -> Server:
    """An admin handle on a server, or skip (fail under CI) when it does not answer."""
    url = make_url(ADMIN_URLS[kind])
    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        engine.connect().close()
    except sqlalchemy.exc.OperationalError as exc:
        engine.dispose()
        unreachable(f"{kind} at {url.render_as_string()} is unreachable: {exc.orig}")
    return Server(kind, engine, url)


def unique(prefix: str) -> str:
    """A database or role name no other run uses."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"


def make_exporter(url: str, tmp: Path, config: Path | None = None, now: float | None = NOW_TS) -> Exporter:
    """An exporter on ``url`` with a fixed clock (or the real one when now is None), no report files."""
    settings: dict[str, Any] = {"database_url": url, "coverage": tmp / "no-coverage.json",
                                "e2e_report": tmp / "no-junit.xml"}
    return Exporter(config, settings, clock=(lambda: now) if now is not None else time.time)


def samples(exporter: Exporter) -> Samples:
    """What a scrape would expose: (sample name, sorted label items) -> value."""
    return registry_samples(families(exporter.registry))
