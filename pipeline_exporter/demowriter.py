"""Demo databases of the other built-in packs (``pipeline-exporter demo-db PATH --pack NAME``).

Each pack's module yields its rows as ``(table, rows)`` with timestamps as Unix seconds in the
columns its ``TIMESTAMPS`` names; one writer here turns them into each backend's form and loads
them into SQLite (a new file) or a server (PostgreSQL, MySQL/MariaDB) with the pack's DDL from
``pipeline_exporter/schema/<pack>/<dialect>.sql``. Append-only tables are numbered in time order, as
a system appends them (the engine's key search relies on it).
"""

from __future__ import annotations

import importlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy
from sqlalchemy.engine import make_url

from pipeline_exporter import packloader
from pipeline_exporter.errors import DemoTargetNotEmpty
from pipeline_exporter.packs.method333 import demo
from pipeline_exporter.redact import mask_url

Row = tuple[Any, ...]


def _module(pack: str) -> ModuleType:
    if pack not in pack_names():
        raise ValueError(f"no demo for pack {pack!r}; demos exist for method333, {', '.join(pack_names())}")
    return importlib.import_module(f"pipeline_exporter.packs.{pack}.demo")


def pack_names() -> list[str]:
    """Packs other than method333 (which has its own builder) whose folder holds a demo.py."""
    return [name for name in packloader.having("demo.py") if name != "method333"]


def schema_statements(pack: str, dialect: str) -> list[str]:
    """The pack's shipped DDL of one dialect, split into statements."""
    return demo.schema_statements(dialect, pack)


def rows(pack: str, *, seed: int, now: int) -> dict[str, list[Row]]:
    """Every table's rows (Unix-second timestamps), append-only tables numbered by time."""
    module = _module(pack)
    tables: dict[str, list[Row]] = {table: [] for table in module.COLUMNS}
    for table, batch in module.iter_rows(seed=seed, now=now):
        tables[table].extend(batch)
    for table, stamp in module.CHRONOLOGICAL.items():
        position = module.COLUMNS[table].index(stamp)
        ordered = sorted(tables[table], key=lambda row: (row[position], row[0]))
        tables[table] = [(i + 1, *row[1:]) for i, row in enumerate(ordered)]
    return tables


def _stamped(pack: str, tables: dict[str, list[Row]], stamp: Any) -> dict[str, list[Row]]:
    module = _module(pack)
    out = {}
    for table, batch in tables.items():
        positions = [i for i, c in enumerate(module.COLUMNS[table]) if c in module.TIMESTAMPS]
        out[table] = [tuple(stamp(v) if i in positions and v is not None else v for i, v in enumerate(row))
                      for row in batch]
    return out


def build(pack: str, path: Path, *, seed: int = 333, now: int | None = None, force: bool = False) -> dict[str, int]:
    """Write the pack's demo SQLite database at path (refused if it exists, unless force)."""
    module = _module(pack)
    path = Path(path)
    if not force and (path.exists() or path.is_symlink()):
        raise DemoTargetNotEmpty(f"{path} already exists; refusing to replace it with demo data "
                                 "(pass --force, or force=True, to overwrite it)")
    tables = _stamped(pack, rows(pack, seed=seed, now=int(time.time()) if now is None else now),
                      lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)))

    def write(tmp: Path) -> None:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("BEGIN")
            for statement in schema_statements(pack, "sqlite"):
                conn.execute(statement)
            for table, batch in tables.items():
                columns = module.COLUMNS[table]
                conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                 f"({', '.join('?' * len(columns))})", batch)
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    demo.replace_sqlite(path, write)
    return {table: len(batch) for table, batch in tables.items()}


def build_url(pack: str, database_url: str, *, seed: int = 333, now: int | None = None,
              force: bool = False) -> dict[str, int]:
    """Fill a PostgreSQL or MySQL/MariaDB database with the pack's tables and demo rows."""
    module = _module(pack)
    url = demo._with_driver(make_url(database_url))
    backend = url.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise ValueError(f"demo databases on a server are PostgreSQL or MySQL/MariaDB, not {backend!r}")
    dialect = "postgresql" if backend == "postgresql" else "mysql"
    tables = _stamped(pack, rows(pack, seed=seed, now=int(time.time()) if now is None else now),
                      demo._aware if dialect == "postgresql" else demo._naive)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            if (filled := demo.tables_with_rows(conn, module.COLUMNS)) and not force:
                raise DemoTargetNotEmpty(f"{mask_url(database_url)} already has rows in {', '.join(filled)}; "
                                         "refusing to delete them for demo data (pass --force to overwrite them)")
            for statement in schema_statements(pack, dialect):
                if dialect == "mysql" and statement.upper().startswith("CREATE INDEX"):
                    name = statement.split()[2]
                    table = statement.split()[4]
                    if conn.exec_driver_sql(f"SHOW INDEX FROM {table} WHERE Key_name = '{name}'").first():
                        continue
                conn.exec_driver_sql(statement)
            for table in reversed(list(module.COLUMNS)):
                conn.exec_driver_sql(f"DELETE FROM {table}")
            for table, batch in tables.items():
                columns = module.COLUMNS[table]
                target = sqlalchemy.table(table, *map(sqlalchemy.column, columns))
                for start in range(0, len(batch), 5000):
                    chunk = batch[start:start + 5000]
                    if chunk:
                        conn.execute(target.insert(), [dict(zip(columns, row)) for row in chunk])
            if dialect == "postgresql":
                demo.reset_identities(conn, module.COLUMNS)
    finally:
        engine.dispose()
    return {table: len(batch) for table, batch in tables.items()}


def iter_tables(pack: str) -> Iterator[str]:
    yield from _module(pack).COLUMNS
