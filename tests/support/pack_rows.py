"""Known rows of a further pack's tables, loaded into SQLite or a server, and one collection of
the pack over them: the fixture of each pack's every-metric tests."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy

from pipeline_exporter import demowriter as demos
from pipeline_exporter.app import families
from tests.support.servers import make_exporter, samples

Rows = dict[str, list[tuple[Any, ...]]]


def _stamped(pack: str, rows: Rows, stamp: Any) -> Rows:
    """The rows with each timestamp column (Unix seconds in the fixtures) turned by ``stamp``."""
    module = demos._module(pack)
    return {t: [tuple(stamp(v) if c in module.TIMESTAMPS and v is not None else v
                      for c, v in zip(module.COLUMNS[t], row)) for row in table]
            for t, table in rows.items()}


def sqlite_db(pack: str, rows: Rows, path: Path) -> str:
    """A SQLite file with the pack's schema and ``rows`` (timestamps as UTC text); its URL."""
    columns = demos._module(pack).COLUMNS
    conn = sqlite3.connect(path)
    for statement in demos.schema_statements(pack, "sqlite"):
        conn.execute(statement)
    for table, table_rows in _stamped(pack, rows, lambda t: time.strftime("%Y-%m-%d %H:%M:%S",
                                                                            time.gmtime(t))).items():
        conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns[table]))})", table_rows)
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def server_db(pack: str, rows: Rows, url: str) -> None:
    """The pack's schema and ``rows`` in the (empty) server database at ``url``: timestamps aware
    on PostgreSQL, naive UTC on MariaDB."""
    def aware(t: int) -> datetime:
        return datetime.fromtimestamp(t, timezone.utc)

    stamp = aware if url.startswith("postgresql") else (lambda t: aware(t).replace(tzinfo=None))
    columns = demos._module(pack).COLUMNS
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for statement in demos.schema_statements(pack, "postgresql" if url.startswith("postgresql") else "mysql"):
            conn.exec_driver_sql(statement)
        for table, table_rows in _stamped(pack, rows, stamp).items():
            target = sqlalchemy.table(table, *map(sqlalchemy.column, columns[table]))
            conn.execute(target.insert(), [dict(zip(columns[table], row)) for row in table_rows])
    engine.dispose()


def scrape(pack: str, url: str, tmp: Path) -> tuple[dict, dict[str, str]]:
    """One run of every query of ``pack`` (no host collector): samples and family types."""
    config = tmp / f"{pack}.yml"
    config.write_text(f"packs: [{pack}]\ncollectors: {{host: false}}\n")
    exporter = make_exporter(url, tmp, config)
    try:
        exporter.pipeline.scheduler.run_once()
        return samples(exporter), {name: f.type for name, f in families(exporter.registry).items()}
    finally:
        exporter.stop()


def v(got: dict, name: str, **labels: str) -> float:
    """The value of one series of a scrape (0.0 when absent)."""
    return got.get((name, tuple(sorted(labels.items()))), 0.0)


def absent(got: dict, name: str, **labels: str) -> bool:
    return (name, tuple(sorted(labels.items()))) not in got
