"""Writing a pack's demo database: its DDL, the SQLite file swap, the driver choice, progress and
the check for tables that already hold rows. The data comes from the pack's own ``demo.py``.

A pack's demo module yields its rows as ``(table, rows)`` with timestamps as Unix seconds in the
columns its ``TIMESTAMPS`` names (``demo-db PATH --pack NAME``, ``build``/``build_url`` here); one
writer turns them into each backend's form and loads them into SQLite (a new file) or a server
(PostgreSQL, MySQL/MariaDB) with the pack's DDL from ``packs/<pack>/schema/<dialect>.sql``.
Append-only tables are numbered in time order, as a system appends them (the engine's key search
relies on it). method333's demo, larger and with its report files, drives the writers itself.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy.engine import make_url

from pipeline_exporter import packloader
from pipeline_exporter.db import DEFAULT_DRIVERS
from pipeline_exporter.errors import DemoTargetNotEmpty
from pipeline_exporter.redact import mask_url

T = TypeVar("T")
MINUTE, HOUR, DAY = 60, 3600, 86400
Row = tuple[Any, ...]
Batch = tuple[str, list[Row]]  # a table and some of its rows
Stamp = Callable[[int], Any]  # Unix seconds -> the backend's timestamp value
Columns = Mapping[str, tuple[str, ...]]  # table -> its columns in the generated order, parents first


def _module(pack: str) -> ModuleType:
    if pack not in pack_names():
        raise ValueError(f"no demo for pack {pack!r}; demos exist for method333, {', '.join(pack_names())}")
    return importlib.import_module(f"pipeline_exporter.packs.{pack}.demo")


def pack_names() -> list[str]:
    """Packs other than method333 (which has its own builder) whose folder holds a demo.py."""
    return [name for name in packloader.having("demo.py") if name != "method333"]


def schema_statements(pack: str, dialect: str) -> list[str]:
    """A built-in pack's DDL of one dialect (sqlite, postgresql, mysql), split into statements."""
    text = (packloader.folder(pack) / "schema" / f"{dialect}.sql").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


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

    replace_sqlite(path, write)
    return {table: len(batch) for table, batch in tables.items()}


def build_url(pack: str, database_url: str, *, seed: int = 333, now: int | None = None,
              force: bool = False) -> dict[str, int]:
    """Fill a PostgreSQL or MySQL/MariaDB database with the pack's tables and demo rows."""
    module = _module(pack)
    url = with_driver(make_url(database_url))
    backend = url.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise ValueError(f"demo databases on a server are PostgreSQL or MySQL/MariaDB, not {backend!r}")
    dialect = "postgresql" if backend == "postgresql" else "mysql"
    tables = _stamped(pack, rows(pack, seed=seed, now=int(time.time()) if now is None else now),
                      aware if dialect == "postgresql" else naive)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            if (filled := tables_with_rows(conn, module.COLUMNS)) and not force:
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
                reset_identities(conn, module.COLUMNS)
    finally:
        engine.dispose()
    return {table: len(batch) for table, batch in tables.items()}


def iter_tables(pack: str) -> Iterator[str]:
    yield from _module(pack).COLUMNS


# Told (table, rows written) after every batch: a progress display counts the sites.
Progressing = Callable[[str, int], None]


def reporting(batches: Iterable[Batch], progress: Progressing | None) -> Iterator[Batch]:
    """The batches, telling ``progress`` of each."""
    for table, rows in batches:
        yield table, rows
        if progress is not None:
            progress(table, len(rows))


# ---------------------------------------------------------------- writers


def write_sqlite(path: Path, pack: str, columns: Columns, chronological: Mapping[str, str],
                 batches: Iterable[Batch]) -> dict[str, int]:
    """Create a pack's schema in a new SQLite file, load every batch (fast: one transaction, no
    journal), number the ``chronological`` tables' rows by their time, index it and switch to WAL."""
    statements = schema_statements(pack, "sqlite")
    tables_of = tuple(columns)
    tables = [s for s in statements if s.upper().startswith("CREATE TABLE")]
    indexes = [s for s in statements if s not in tables]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Nothing to protect while building a temp file: no journal, no fsync.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("BEGIN")
        for statement in tables:
            conn.execute(statement)
        # Append-only tables load into staging copies first, then move over numbered by their time.
        for table in chronological:
            conn.execute(f"CREATE TABLE pe_stage_{table} AS SELECT * FROM {table} WHERE 0")
        inserts = {t: _insert_sql(f"pe_stage_{t}" if t in chronological else t, "?", columns[t]) for t in tables_of}
        counts = dict.fromkeys(tables_of, 0)
        for table, rows in batches:
            conn.executemany(inserts[table], rows)
            counts[table] += len(rows)
        for table, stamp in chronological.items():
            others = ", ".join(columns[table][1:])
            when = f"CAST(strftime('%s', {stamp}) AS INTEGER)"
            conn.execute(
                f"INSERT INTO {table} (id, {others}) SELECT ROW_NUMBER() OVER "
                f"(ORDER BY {when} IS NULL, {when}, id), {others} FROM pe_stage_{table} ORDER BY 1"
            )
            conn.execute(f"DROP TABLE pe_stage_{table}")
        # Indexes built once after the load are much cheaper than maintained per row.
        for statement in indexes:
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("PRAGMA analysis_limit=1000")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return counts


def tables_with_rows(conn: sqlalchemy.Connection, tables: Iterable[str]) -> list[str]:
    """The tables that exist on the server and hold at least one row."""
    present = set(sqlalchemy.inspect(conn).get_table_names())
    return [
        name
        for name in tables
        if name in present
        and conn.execute(sqlalchemy.select(sqlalchemy.literal(1)).select_from(sqlalchemy.table(name)).limit(1)).first()
        is not None
    ]


def write_sqlalchemy(conn: sqlalchemy.Connection, ddl: list[str], columns: Columns,
                     chronological: Mapping[str, str], batches: Iterable[Batch]) -> dict[str, int]:
    """Create the tables if needed, empty them and insert every batch in one transaction; number
    the ``chronological`` tables' rows by their time."""
    for statement in ddl:
        conn.exec_driver_sql(statement)
    tables = {t: sqlalchemy.table(t, *map(sqlalchemy.column, columns[t])) for t in columns}
    for name in reversed(list(columns)):
        conn.execute(tables[name].delete())
    counts = dict.fromkeys(columns, 0)
    for name, rows in batches:
        if rows:
            names = columns[name]
            conn.execute(tables[name].insert(), [dict(zip(names, row)) for row in rows])
        counts[name] += len(rows)
    for table, stamp in chronological.items():
        _renumber_by_time(conn, table, stamp)
    if conn.dialect.name == "postgresql":
        reset_identities(conn, columns)
    return counts


def _renumber_by_time(conn: sqlalchemy.Connection, table: str, stamp: str) -> None:
    """Number an append-only table's rows by their time, as the pipeline appends them (ties by the
    generated id, as on SQLite): negate the ids first, so no new id meets an old one."""
    conn.exec_driver_sql(f"UPDATE {table} SET id = -id")
    order = f"ROW_NUMBER() OVER (ORDER BY {stamp} IS NULL, {stamp}, -id)"
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"UPDATE {table} SET id = o.n FROM (SELECT id AS old, {order} AS n FROM {table}) o WHERE {table}.id = o.old"
        )
    else:
        conn.exec_driver_sql(
            f"UPDATE {table} JOIN (SELECT id AS old, {order} AS n FROM {table}) o "
            f"ON {table}.id = o.old SET {table}.id = o.n"
        )


def reset_identities(conn: sqlalchemy.Connection, columns: Columns) -> None:
    """Move PostgreSQL identity sequences past the explicit ids so the pipeline can insert."""
    for name, names in columns.items():
        if names[0] == "id":
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {name}"
            )


def _insert_sql(table: str, marker: str, columns: tuple[str, ...]) -> str:
    """INSERT statement for a table with the generated column order."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"


def with_driver(url: sqlalchemy.URL) -> sqlalchemy.URL:
    """Driverless URLs get the drivers the extras install (psycopg 3, PyMySQL), as the exporter's do."""
    if url.drivername in DEFAULT_DRIVERS:
        return url.set(drivername=DEFAULT_DRIVERS[url.drivername])
    return url


def replace_sqlite(path: Path, write: Callable[[Path], T]) -> T:
    """``write`` a new SQLite file beside ``path``, then put it in place in one rename (a reader
    never sees half a database); the old file's -wal and -shm go first, as a -wal left behind would
    be replayed into the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.building")
    tmp.unlink(missing_ok=True)
    try:
        result = write(tmp)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return result


def write_atomically(path: Path, data: bytes, mtime: int) -> None:
    """Write a file through a temp name so readers never see half of it; set its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


# ---------------------------------------------------------------- time


def epoch(now: datetime | None) -> int:
    """Unix seconds of now (naive datetimes are UTC), default the current time."""
    if now is None:
        return int(time.time())
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return int(now.timestamp())


def aware(t: int) -> datetime:
    """Stamp for PostgreSQL timestamptz."""
    return datetime.fromtimestamp(t, timezone.utc)


def naive(t: int) -> datetime:
    """Stamp for MySQL DATETIME (UTC without zone)."""
    return datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)


def opt(stamp: Stamp, t: int | None) -> Any:
    """Stamp a timestamp that may not have happened."""
    return None if t is None else stamp(t)
