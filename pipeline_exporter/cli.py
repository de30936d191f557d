"""Command line: run the exporter (Prometheus-style flags), check a config, or write a demo database."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_exporter import __version__, flags, logs, packloader
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.redact import mask_url

if TYPE_CHECKING:  # heavy modules are imported when used, after the signal handlers are in place
    from pipeline_exporter.app import Exporter
    from pipeline_exporter.web import ServerLimits, WebState

log = logging.getLogger("pipeline_exporter")
EXIT_CONFIG = 2
PROBE_BUDGET = 10.0  # seconds the start-up probe may hold up the first collection (not the server)


def demo_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(
        prog="pipeline-exporter demo-db", description="Write a realistic demo pipeline database."
    )
    parser.add_argument(
        "path", type=Path, nargs="?", help="SQLite file to write (an existing file is refused unless --force)"
    )
    parser.add_argument(
        "--database.url", "--database-url", dest="database_url",
        help="fill a PostgreSQL or MySQL/MariaDB database instead of a SQLite file"
    )
    parser.add_argument("--pack", default="method333",
                        help=f"the pack whose demo to write: {', '.join(packloader.having('demo.py'))} "
                        "(default method333)")
    parser.add_argument("--sites", type=int, default=20_000, help="number of sites (default 20000; method333 only)")
    parser.add_argument("--seed", type=int, default=333, help="random seed (default 333)")
    parser.add_argument(
        "--files-dir",
        dest="files_dir",
        type=Path,
        help="also write coverage/coverage-summary.json and test-results/e2e-junit.xml here",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing SQLite file, or delete the rows already in the pipeline tables",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo-db"]:
        return demo_main(argv[1:])
    if argv[:1] == ["backfill"]:
        from pipeline_exporter.backfill import main as backfill_main  # its parser lives there too

        return backfill_main(argv[1:])
    if argv[:1] == ["mixin"]:
        from pipeline_exporter.mixin.cli import main as mixin_main  # rules and dashboards for one setup

        return mixin_main(argv[1:])
    try:
        args = flags.parse_run_flags(argv)
    except flags.FlagError as exc:
        print(f"pipeline-exporter: invalid environment: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.pack and (problem := pack_problem(args.pack)):
        print(f"pipeline-exporter: --pack {args.pack!r}: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if not args.check_config:
        SIGNALS.install()  # before start-up: a SIGHUP while the database is probed must not kill us
    logs.setup(args.log_level, args.log_format)
    overrides = {"database_url": args.database_url, "coverage": args.coverage, "e2e_report": args.e2e_report,
                 "collectors": flags.collector_overrides(args), "packs": [args.pack] if args.pack else None}
    web_config = None
    if args.web_config_file:
        from pipeline_exporter.webconfig import load_web_config

        try:
            web_config = load_web_config(args.web_config_file)
        except ConfigError as exc:
            print(f"pipeline-exporter: invalid web configuration: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        from pipeline_exporter.app import Exporter

        exporter = Exporter(args.config_file, overrides)
        # The exporter's own start-up probe runs after the server is up (serve_forever): a locked
        # table must not hold up /-/healthy nor SIGTERM.
        checked, failed = exporter.pipeline.probe() if args.check_config else (0, {})
    except ConfigError as exc:
        print(f"pipeline-exporter: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    config = exporter.pipeline.config
    if args.check_config:
        for query, error in failed.items():
            print(f"pipeline-exporter: {config.origin}: queries.{query}: the database refused it: {error}",
                  file=sys.stderr)
        if failed:
            return EXIT_CONFIG
        unanswered = len(config.queries) - checked - len(failed)  # the probe stops when the database does not answer
        if unanswered:
            # Exit 0 all the same: the config is valid, and a check run where the database cannot be
            # reached (a CI job, an image build) must not fail; but the line says what was not checked.
            print(f"configuration OK: {len(config.queries)} queries from {config.origin}; columns NOT checked for "
                  f"{unanswered}: the database {mask_url(config.database_url)} did not answer")
        else:
            print(f"configuration OK: {len(config.queries)} queries from {config.origin}; "
                  f"columns checked for {checked} against {mask_url(config.database_url)}")
        return 0
    from pipeline_exporter.web import ServerLimits, WebState

    exporter.add_process_metrics()
    limits = ServerLimits(read_timeout=args.read_timeout, write_timeout=args.write_timeout,
                          max_connections=args.max_connections, max_requests=args.max_requests)
    web = WebState(web_config, args.web_config_file, args.telemetry_path, args.enable_lifecycle)
    return serve_forever(exporter, args.listen, web, limits)


def pack_problem(ref: str) -> str | None:
    """Why ``--pack`` cannot load ``ref`` (None if it can): neither a built-in pack nor a file or folder."""
    if ref in packloader.names() or Path(ref).exists():
        return None
    return f"no such built-in pack, pack file or pack folder (built-in packs: {', '.join(packloader.names())})"


def serve_forever(exporter: Exporter, listen: str, web: WebState | None = None,
                  limits: ServerLimits | None = None) -> int:
    """Serve until SIGINT or SIGTERM; SIGHUP (or POST /-/reload) reloads the config and the web config."""
    from pipeline_exporter.web import (  # imported here so demo-db and --config.check stay light
        ServerLimits,
        WebState,
        serve,
    )

    web = web or WebState()
    lock = threading.Lock()

    def reload() -> bool:
        with lock:  # a SIGHUP and a POST /-/reload at once: one after the other
            web_ok = web.reload_web_config()
            ok = exporter.reload() and web_ok
            if not web_ok:  # the web config failed: the reload as a whole did
                exporter.reload_ok = False
                exporter.snapshot.touch()
            return ok

    web.reload = reload
    try:
        server, _ = serve(exporter, listen, web, limits or ServerLimits())
    except ConfigError as exc:
        print(f"pipeline-exporter: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"pipeline-exporter: cannot listen on {listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    shown = "localhost" if host in ("", "0.0.0.0", "::") else str(host)
    scheme = "https" if web.config.tls else "http"
    log.info(f"serving {scheme}://{shown}:{port}{web.telemetry_path}",
             extra={"version": __version__, "database": mask_url(exporter.pipeline.config.database_url)})
    signals = SIGNALS.install()  # a no-op when main() installed them before start-up
    probe = StartupProbe(exporter)
    probe.start()
    started = False
    # Python runs a handler only when the main thread executes bytecode: poll the flags five times a second.
    while not signals.stop:
        if not started and probe.finished():
            if probe.config_error is not None:
                print(f"pipeline-exporter: invalid configuration: {probe.config_error}", file=sys.stderr)
                server.shutdown()
                exporter.stop()
                return EXIT_CONFIG
            exporter.start()
            started = True
        if started and signals.reload:  # also a SIGHUP that arrived during start-up
            signals.reload = False
            threading.Thread(target=reload, name="reload", daemon=True).start()
        time.sleep(0.2)
    log.info("shutting down")
    server.shutdown()
    if not exporter.stop() or not probe.finished():
        # A run (or the probe) is stuck in a call nothing could cut short: leave without its thread.
        logging.shutdown()
        os._exit(0)
    return 0


class StartupProbe:
    """The start-up check of every query's columns, in a thread of its own with a budget: a locked
    table (a migration) delays the first collection by at most PROBE_BUDGET, never the server, and
    SIGTERM interrupts it."""

    def __init__(self, exporter: Exporter):
        self.exporter = exporter
        self.config_error: ConfigError | None = None
        self.deadline = time.monotonic() + PROBE_BUDGET
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="startup-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            checked, failed = self.exporter.pipeline.probe(self.deadline)
            log.debug("start-up probe", extra={"checked": checked, "refused": len(failed)})
        except ConfigError as exc:
            self.config_error = exc
        except Exception as exc:  # the scheduler reports the database's state from here on
            log.debug("start-up probe failed", extra={"error": str(exc)})
        finally:
            self._done.set()

    def finished(self) -> bool:
        """True once the probe ended or its budget ran out (collection starts either way)."""
        return self._done.is_set() or time.monotonic() > self.deadline


class Signals:
    """SIGTERM/SIGINT ask to stop, SIGHUP to reload; installed before start-up, so a SIGHUP that
    arrives while the exporter starts is a reload afterwards, never the end of the process. The
    handlers only set a flag: no lock, so a flood of signals cannot re-enter anything."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False
        self.installed = False

    def install(self) -> Signals:
        if not self.installed and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._stop)
            signal.signal(signal.SIGINT, self._stop)
            signal.signal(signal.SIGHUP, self._reload)
            self.installed = True
        return self

    def _stop(self, *_: object) -> None:
        self.stop = True

    def _reload(self, *_: object) -> None:
        self.reload = True


SIGNALS = Signals()


def demo_main(argv: list[str]) -> int:
    """``demo-db``: every failure is one line on stderr and exit 2, with the URL's secrets masked."""
    args = demo_parser().parse_args(argv)

    def fail(message: str) -> int:
        print(f"pipeline-exporter demo-db: {message}", file=sys.stderr)
        return EXIT_CONFIG

    if not args.path and not args.database_url:
        return fail("give a PATH (a SQLite file) or --database.url (a PostgreSQL or MySQL/MariaDB database)")
    if args.database_url and (problem := server_url_problem(args.database_url)):
        return fail(problem)
    from sqlalchemy.exc import SQLAlchemyError

    from pipeline_exporter.errors import DemoTargetNotEmpty
    from pipeline_exporter.redact import safe_message

    try:
        return pack_demo_main(args) if args.pack != "method333" else method333_demo_main(args)
    except DemoTargetNotEmpty as exc:  # an existing file or filled tables, without --force
        # The library's message names its keyword argument too; a command line user has the flag.
        return fail(str(exc).replace(", or force=True,", ""))
    except SQLAlchemyError as exc:  # the server did not answer, refused the login, or the statement
        return fail(f"cannot fill {mask_url(args.database_url)}: {safe_message(exc)}")
    except ModuleNotFoundError as exc:
        return fail(f"the driver {exc.name} is not installed: pip install 'pipeline-exporter[postgresql,mysql]'")
    except OSError as exc:
        return fail(f"cannot write {exc.filename or args.path}: {exc.strerror or type(exc).__name__}")


def server_url_problem(url: str) -> str | None:
    """Why ``url`` cannot take a demo (None if it can): malformed, SQLite, or another database."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):  # ValueError: a port that is no number; its text quotes the URL
        return ("--database.url is not a valid URL (expected e.g. postgresql://user@host:5432/db; "
                "the port, if any, a number)")
    if backend == "sqlite":
        return "--database.url fills a PostgreSQL or MySQL/MariaDB server; for SQLite give the file: demo-db PATH"
    if backend not in ("postgresql", "postgres", "mysql", "mariadb"):
        return f"--database.url: {backend!r} is not a database demo-db fills (PostgreSQL, MySQL or MariaDB)"
    return None


def method333_demo_main(args: argparse.Namespace) -> int:
    """``demo-db [PATH]``: the default pack's demo, with a progress line on a terminal."""
    from pipeline_exporter.packs.method333 import demo
    from pipeline_exporter.progress import Progress

    shown = Progress("demo-db", args.sites, "sites")

    def progress(table: str, rows: int) -> None:
        if table == "sites":
            shown.advance(rows)

    try:
        if args.database_url:
            counts = demo.build_demo_url(args.database_url, sites=args.sites, seed=args.seed, force=args.force,
                                         progress=progress)
            target = mask_url(args.database_url)
        else:
            counts = demo.build_demo(args.path, sites=args.sites, seed=args.seed, files_dir=args.files_dir,
                                     force=args.force, progress=progress)
            target = str(args.path)
    finally:
        shown.done()
    if args.files_dir and args.database_url:
        demo.write_demo_files(args.files_dir, seed=args.seed)
    print(f"demo database written to {target}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    return 0


def pack_demo_main(args: argparse.Namespace) -> int:
    """``demo-db PATH --pack NAME``: another built-in pack's demo (its folder's demo.py)."""
    from pipeline_exporter import demowriter as demos

    if args.pack not in demos.pack_names():
        print(f"pipeline-exporter demo-db: no demo for pack {args.pack!r} (known: method333, "
              f"{', '.join(demos.pack_names())})", file=sys.stderr)
        return EXIT_CONFIG
    if args.database_url:
        counts = demos.build_url(args.pack, args.database_url, seed=args.seed, force=args.force)
        target = mask_url(args.database_url)
    else:
        counts = demos.build(args.pack, args.path, seed=args.seed, force=args.force)
        target = str(args.path)
    print(f"{args.pack} demo database written to {target}: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    return 0
