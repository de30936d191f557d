"""Read-only access to the pipeline database: plain rows out, never a write, never prometheus_client."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from pipeline_exporter.errors import CollectionError, DatabaseURLError
from pipeline_exporter.model import Result, Runner
from pipeline_exporter.redact import safe_message
from pipeline_exporter.watchdog import Watch, Watchdog, socket_fd

# SQLite calls the progress handler every this many virtual-machine instructions.
PROGRESS_STEPS = 10_000
TIMEOUT_SQLSTATES = {"57014"}  # PostgreSQL query_canceled
MYSQL_TIMEOUT_CODES = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
# A server that has not answered this long after a statement's own timeout is not going to: the
# watchdog cuts the connection (the statement timeout needs a server that answers).
GRACE = 2.0
READ_TIMEOUT = 600.0


def deadline(timeout: float) -> float:
    """The client-side limit of an operation whose statements time out after ``timeout`` on the
    server: at most twice that, at most GRACE more."""
    return timeout + min(GRACE, timeout)
# URLs without a driver get the one the extras install ('.[postgresql]', '.[mysql]'); SQLAlchemy's
# own default for MySQL (mysqlclient) is not installed, and it refuses postgres:// outright. PostgreSQL
# goes through psycopg 3; postgresql+psycopg2:// URLs still work where psycopg2 is installed.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
                   "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}


T = TypeVar("T")


class Database:
    """A read-only handle on the pipeline database (SQLite, PostgreSQL or MySQL/MariaDB)."""

    def __init__(self, url: str, pool_size: int = 2, connect_timeout: float = 5.0,
                 read_timeout: float = READ_TIMEOUT):
        try:
            self.url = make_url(url)
        except (ArgumentError, ValueError):  # ValueError: a port that is no number, its text quoting the URL
            raise DatabaseURLError("invalid database URL (expected e.g. sqlite:///db/sites.db or "
                                   "postgresql://user@host:5432/db; the port, if any, a number)") from None
        if self.url.drivername in DEFAULT_DRIVERS:
            self.url = self.url.set(drivername=DEFAULT_DRIVERS[self.url.drivername])
        backend = self.url.get_backend_name()
        self.dialect = {"postgres": "postgresql", "mariadb": "mysql"}.get(backend, backend)
        if self.dialect not in ("sqlite", "postgresql", "mysql"):
            raise DatabaseURLError(f"unsupported database {backend!r}: use sqlite, postgresql or mysql URLs")
        self.sqlite_path: Path | None = None
        self.up: bool | None = None  # None until the first connection attempt
        self._running: set[sqlite3.Connection] = set()  # SQLite statements in flight, for interrupt()
        self._running_lock = threading.Lock()
        self._closing = False  # set by interrupt(): statements starting afterwards stop at once
        self._is_mariadb = False
        self.watchdog = Watchdog()
        try:
            self.engine = self._create_engine(pool_size, connect_timeout, read_timeout)
        except ModuleNotFoundError as exc:
            raise DatabaseURLError(f"the {self.dialect} driver is not installed ({exc.name}); "
                             f"pip install 'pipeline-exporter[{self.dialect}]'") from None
        except NoSuchModuleError:
            raise DatabaseURLError(f"unknown database driver in {self.url.drivername!r}; use e.g. "
                             "postgresql+psycopg:// or mysql+pymysql://") from None

    # ------------------------------------------------------------------ engine

    def _create_engine(self, pool_size: int, connect_timeout: float, read_timeout: float) -> Engine:
        if self.dialect == "sqlite":
            self.sqlite_path = Path(self.url.database or "")
            return create_engine("sqlite://", creator=self._connect_sqlite, poolclass=NullPool)
        args: dict[str, Any] = {"connect_timeout": int(max(1, connect_timeout))}
        if self.dialect == "postgresql":
            # Every session is read-only; a write fails even if a query tried one.
            args["options"] = "-c default_transaction_read_only=on"
            # A peer that vanishes without a word is noticed by the kernel within about a minute.
            args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        else:
            # A backstop behind the watchdog: no single socket read or write waits longer than this.
            args.update(read_timeout=int(read_timeout) + 1, write_timeout=int(read_timeout) + 1)
        # No pool_pre_ping: the ping is done in read(), under the watchdog, so it cannot hang either.
        # REPEATABLE READ: every statement of one read() sees one snapshot (PostgreSQL's default, READ
        # COMMITTED, gives each statement its own; MySQL's default is already REPEATABLE READ).
        engine = create_engine(self.url, pool_size=pool_size, max_overflow=0, pool_recycle=1800,
                               connect_args=args, isolation_level="REPEATABLE READ")
        if self.dialect == "mysql":
            event.listen(engine, "connect", self._on_mysql_connect)
        return engine

    def _connect_sqlite(self) -> sqlite3.Connection:
        # mode=ro: SQLite itself refuses writes; the pipeline keeps writing in WAL mode meanwhile.
        uri = f"file:{quote(str(self._sqlite_file().resolve()))}?mode=ro"
        # Autocommit at the driver: read() opens the transaction itself (BEGIN), so every statement of a
        # run reads one snapshot (the driver would otherwise run each SELECT in a snapshot of its own).
        conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False, isolation_level=None)
        conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
        conn.execute("PRAGMA query_only = ON")
        # query_only refuses writes, but ATTACH would still create an empty file for a new name.
        conn.set_authorizer(_refuse_attach)
        return conn

    def _on_mysql_connect(self, dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            # UNIX_TIMESTAMP() reads DATETIME columns in the session zone; the pipeline stores UTC.
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute("SELECT VERSION()")
            self._is_mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
            if not self._is_mariadb:
                # MySQL 8 caches information_schema table sizes for a day by default.
                try:
                    cur.execute("SET SESSION information_schema_stats_expiry = 0")
                except Exception:
                    pass

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def interrupt(self) -> None:
        """Cut short every statement in flight, and any SQLite statement that starts later (at
        shutdown): SQLite's are interrupted, server connections are cut by the watchdog."""
        with self._running_lock:
            self._closing = True
            for raw in self._running:
                raw.interrupt()
        self.watchdog.expire_all()

    # ------------------------------------------------------------------ queries

    def fetch(self, statements: list[str], params: Mapping[str, Any], timeout: float) -> list[Result]:
        """Run statements in one short read-only transaction; the timeout cancels them in the database."""
        return self.read(lambda run: [run(sql, params) for sql in statements], timeout)

    def read(self, work: Callable[[Runner], T], timeout: float) -> T:
        """Call ``work(run)`` inside one read-only transaction, where ``run(sql, params)`` returns a
        Result; the timeout covers the whole transaction and cancels statements in the database
        (server-side), and on a server, the watchdog abandons the connection ``GRACE`` seconds later
        (client-side), whatever the link does."""
        conn, watch = self._checkout(timeout)
        try:
            with conn.begin():
                if self.dialect == "sqlite":
                    conn.exec_driver_sql("BEGIN")  # a read transaction: one snapshot for every statement
                self._arm_timeout(conn, timeout)
                try:
                    return work(lambda sql, params: self._run(conn, sql, params))
                finally:
                    self._disarm_timeout(conn)
        except CollectionError:
            raise
        except DBAPIError as exc:
            if watch is not None and watch.fired:
                self._abandon(conn)
                raise CollectionError("timeout", f"no answer from the database server within {deadline(timeout):g} s: "
                                            "connection abandoned") from None
            if exc.connection_invalidated:
                # The server went away (restart, failover, killed session).
                self.up = False
                raise CollectionError("connection", safe_message(exc)) from None
            raise CollectionError("timeout" if self._is_timeout(exc) else "query", safe_message(exc)) from None
        except SQLAlchemyError as exc:
            raise CollectionError("query", safe_message(exc)) from None
        finally:
            # The watch ends before the connection goes back to the pool: a deadline firing later must
            # never cut a socket another run has checked out meanwhile.
            if watch is not None:
                self.watchdog.release(watch)
            try:
                conn.close()
            except SQLAlchemyError:
                pass

    def _checkout(self, timeout: float) -> tuple[Connection, Watch | None]:
        """A connection that just answered, watched until ``timeout + GRACE`` on a server."""
        if self.dialect == "sqlite":
            return self._connect(), None
        for attempt in (1, 2):
            conn = self._connect()
            watch = self.watchdog.watch(socket_fd(conn.connection.driver_connection), deadline(timeout))
            try:
                conn.exec_driver_sql("SELECT 1").close()
                conn.rollback()
                return conn, watch
            except DBAPIError as exc:
                self.watchdog.release(watch)
                self._abandon(conn)
                if attempt == 2 or watch.fired or not exc.connection_invalidated:
                    self.up = False
                    if watch.fired:
                        raise CollectionError("timeout", "the database server did not answer a ping") from None
                    raise CollectionError("connection", safe_message(exc)) from None
                # A pooled connection the server dropped meanwhile: one more try with a new one.
        raise AssertionError("unreachable")

    @staticmethod
    def _abandon(conn: Connection) -> None:
        """Throw a connection away instead of returning it to the pool."""
        try:
            conn.invalidate()
        except SQLAlchemyError:
            pass
        try:
            conn.close()
        except SQLAlchemyError:
            pass

    def _connect(self) -> Connection:
        try:
            if self.sqlite_path is not None and not self.sqlite_path.is_file():
                raise CollectionError("connection", f"database file {self.sqlite_path} does not exist")
            conn = self.engine.connect()
        except CollectionError:
            self.up = False
            raise
        except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
            self.up = False
            raise CollectionError("connection", safe_message(exc)) from None
        self.up = True
        return conn

    @staticmethod
    def _run(conn: Connection, sql: str, params: Mapping[str, Any]) -> Result:
        statement = text(sql)
        if any(isinstance(value, list) for value in params.values()):
            # A list parameter (a pack's type: list) binds expanding: ``WHERE status IN :statuses``.
            named = statement.compile().binds
            statement = statement.bindparams(*(bindparam(name, expanding=True) for name, value in params.items()
                                               if isinstance(value, list) and name in named))
        result = conn.execute(statement, dict(params))
        return Result(columns=list(result.keys()), rows=[tuple(row) for row in result.fetchall()])

    def _arm_timeout(self, conn: Connection, timeout: float) -> None:
        if self.dialect == "sqlite":
            deadline = time.monotonic() + timeout
            raw = self._sqlite_connection(conn)
            raw.set_progress_handler(lambda: 1 if self._closing or time.monotonic() > deadline else 0,
                                     PROGRESS_STEPS)
            with self._running_lock:
                self._running.add(raw)
        elif self.dialect == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
        elif self._is_mariadb:
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {timeout:.3f}")
        else:
            conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(timeout * 1000)}")

    def _disarm_timeout(self, conn: Connection) -> None:
        if self.dialect == "sqlite":
            raw = self._sqlite_connection(conn)
            raw.set_progress_handler(None, 0)
            with self._running_lock:
                self._running.discard(raw)

    def _sqlite_file(self) -> Path:
        assert self.sqlite_path is not None, "a SQLite database has a file"
        return self.sqlite_path

    @staticmethod
    def _sqlite_connection(conn: Connection) -> sqlite3.Connection:
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    def _is_timeout(self, exc: DBAPIError) -> bool:
        orig = exc.orig
        if self.dialect == "sqlite":
            return "interrupted" in str(orig)
        if self.dialect == "postgresql":
            return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in TIMEOUT_SQLSTATES
        args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
        return bool(args) and args[0] in MYSQL_TIMEOUT_CODES

    # ------------------------------------------------------------------ health

    def size_bytes(self, timeout: float = 10.0) -> float:
        """The database's size: SQLite file plus WAL, or the server's own figure."""
        if self.dialect == "sqlite":
            self._connect().close()  # counts as a connection attempt, and proves the file opens
            path = self._sqlite_file()
            wal = path.with_name(path.name + "-wal")
            return float(path.stat().st_size + (wal.stat().st_size if wal.exists() else 0))
        sql = ("SELECT pg_database_size(current_database())" if self.dialect == "postgresql" else
               "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
               "WHERE table_schema = DATABASE()")
        return float(self.fetch([sql], {}, timeout)[0].rows[0][0])

    def integrity_ok(self, timeout: float) -> bool:
        """SQLite's quick_check: True when it reports ok; a malformed file counts as a failure."""
        if self.dialect != "sqlite":
            raise CollectionError("query", f"integrity checks are only defined for SQLite, not {self.dialect}")
        try:
            rows = self.fetch(["PRAGMA quick_check"], {}, timeout)[0].rows
        except CollectionError as exc:
            # A damaged header fails already at connect; damaged pages fail the pragma itself.
            if is_corruption(str(exc)):
                return False
            raise
        return [tuple(r) for r in rows] == [("ok",)]


def _refuse_attach(action: int, _arg1: str | None = None, arg2: str | None = None, *_: object) -> int:
    """SQLite authorizer: deny ATTACH (a pack must not open or create other files) and pragma
    assignments (``PRAGMA journal_mode = DELETE``), allow the rest. VACUUM has no action of its own:
    it fails because every read runs inside a transaction."""
    if action == sqlite3.SQLITE_ATTACH or (action == sqlite3.SQLITE_PRAGMA and arg2 is not None):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def is_corruption(message: str) -> bool:
    """True for SQLite's messages about a damaged file."""
    return any(s in message for s in ("malformed", "not a database", "corrupt"))
