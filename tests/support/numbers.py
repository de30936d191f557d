"""The numbers-true cases (issue 19) on any database: a pipeline database the test writes to, an
exporter on it with a clock the test moves, and plain SQL to compare every window with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy

from pipeline_exporter.app import Exporter, families
from pipeline_exporter.demowriter import schema_statements
from pipeline_exporter.sql import expand_macros
from tests.support.exposition import registry_samples
from tests.support.servers import connect_server, unique

START = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc).timestamp()
WINDOWS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 604800}


class Clock:
    """The exporter's clock: the test moves it, never the wall."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Store:
    """A pipeline database (the shipped schema) the test writes to as the pipeline would."""

    url: str
    engine: sqlalchemy.Engine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = sqlalchemy.create_engine(self.url, pool_size=1)
        self.dialect = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}.get(
            self.engine.dialect.name, "sqlite")

    def create(self) -> Store:
        with self.engine.begin() as conn:
            for statement in schema_statements("method333", self.dialect):
                conn.execute(sqlalchemy.text(statement))
        return self

    def stamp(self, moment: float) -> Any:
        """A Unix time as the dialect's timestamp column takes it (UTC)."""
        when = datetime.fromtimestamp(moment, timezone.utc)
        if self.dialect == "postgresql":
            return when
        return when.strftime("%Y-%m-%d %H:%M:%S") if self.dialect == "sqlite" else when.replace(tzinfo=None)

    def execute(self, sql: str, rows: list[dict[str, Any]] | dict[str, Any] | None = None) -> list[tuple]:
        with self.engine.begin() as conn:
            if self.dialect == "mysql":
                conn.execute(sqlalchemy.text("SET time_zone = '+00:00'"))
            result = conn.execute(sqlalchemy.text(sql), rows or {})
            return [tuple(r) for r in result] if result.returns_rows else []

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            columns = list(rows[0])
            self.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                         f"({', '.join(':' + c for c in columns)})", rows)

    def windows(self, table: str, time: str, label: str, now: float, where: str = "1 = 1") -> dict[tuple, float]:
        """Plain SQL: per label value and window, the rows dated in (now - period, now]."""
        epoch = expand_macros(f"$epoch({time})", self.dialect)
        counts = ", ".join(f"SUM(CASE WHEN {epoch} > :now - {seconds} AND {epoch} <= :now THEN 1 ELSE 0 END)"
                           for seconds in WINDOWS.values())
        rows = self.execute(f"SELECT {label}, {counts} FROM {table} WHERE {where} GROUP BY {label}", {"now": now})
        return {(row[0], window): float(row[1 + i] or 0) for row in rows for i, window in enumerate(WINDOWS)}

    def rekey(self, table: str) -> None:
        """After rows with explicit ids: the next id the database gives follows the largest."""
        if self.dialect == "postgresql":
            self.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)")
        elif self.dialect == "mysql":
            top = self.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")[0][0]
            self.execute(f"ALTER TABLE {table} AUTO_INCREMENT = {int(top)}")

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def fresh_store(kind: str, folder: Path, prefix: str) -> Iterator[Store]:
    """A fresh pipeline database on that kind of server (``sqlite``: a file in ``folder``), dropped after."""
    if kind == "sqlite":
        made = Store(f"sqlite:///{folder / 'sites.db'}").create()
        try:
            yield made
        finally:
            made.close()
        return
    server = connect_server(kind)
    name = unique(prefix)
    server.create_database(name)
    made = Store(server.url(name)).create()
    try:
        yield made
    finally:
        made.close()
        server.drop_database(name)
        server.admin.dispose()


def exporter(store: Store, tmp: Path, clock: Clock) -> Exporter:
    """The default pack on ``store``, its clock the test's."""
    settings = {"database_url": store.url, "coverage": tmp / "no-coverage.json", "e2e_report": tmp / "no-junit.xml"}
    return Exporter(None, settings, clock=clock)


def scrape(exp: Exporter, *jobs: str) -> dict[tuple, float]:
    """Run the given jobs once, then what a scrape exposes: (name, sorted label items) -> value."""
    for job in jobs:
        exp.pipeline.scheduler.run_job(job)
    return registry_samples(families(exp.registry))


def window_samples(samples: dict[tuple, float], metric: str, label: str) -> dict[tuple, float]:
    """A windowed family's samples as (label value, window) -> value."""
    return {(dict(labels)[label], dict(labels)["window"]): value
            for (name, labels), value in samples.items() if name == metric}


def counter(samples: dict[tuple, float], metric: str, **labels: str) -> float:
    """The sum of a counter's samples whose labels include ``labels``."""
    return sum(value for (name, items), value in samples.items()
               if name == metric + "_total" and set(labels.items()) <= set(items))
