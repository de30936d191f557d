"""A database server restart mid-run: the exporter keeps serving, reports the outage, and recovers alone.

The exporter runs in-process with its scheduler and the real clock. While the server is down,
``pipeline_exporter_database_up`` is 0 and the last values stay (within their staleness limit);
once the server is back, the pool's pre-ping replaces the dead connections without a restart.
Every wait has a deadline, and the server is started again in a ``finally`` whatever happens.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.procs import wait_for
from tests.support.servers import Server, make_exporter, samples, unreachable

FAST_CONFIG = """
packs: []
defaults: {interval: 500ms, timeout: 2s}
queries:
  site_count:
    stale_after: 120s
    sql: SELECT COUNT(*) AS n FROM sites
    metrics: [{name: restart_sites, type: gauge, help: Sites., value: n}]
  opt_out_count:
    stale_after: 120s
    sql: SELECT COUNT(*) AS n FROM opt_outs
    metrics: [{name: restart_opt_outs, type: gauge, help: Opt-outs., value: n}]
checks: {size_interval: 500ms, host_interval: 1s}
files: {interval: 1s}
"""
PORTS = {"postgresql": 5432, "mysql": 3306}


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def controls(kind: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(stop, start) for the local server; skip (fail under CI) when this machine cannot restart it."""
    if os.geteuid() != 0:
        unreachable(f"restarting the local {kind} server needs root")
    if kind == "postgresql":
        clusters = glob.glob("/etc/postgresql/*/main")
        if not shutil.which("pg_ctlcluster") or not clusters:
            unreachable("pg_ctlcluster or the main cluster is missing: cannot restart PostgreSQL here")
        version = Path(clusters[0]).parent.name
        ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
        return (lambda: run([*ctl, "stop", "-m", "fast"]).check_returncode(),
                lambda: run([*ctl, "start"]))
    if not (shutil.which("mysqladmin") and shutil.which("start-stop-daemon") and os.path.exists("/usr/sbin/mariadbd")):
        unreachable("mysqladmin, start-stop-daemon or /usr/sbin/mariadbd is missing: cannot restart MariaDB here")
    return (lambda: run(["mysqladmin", "-uroot", "shutdown"]).check_returncode(),
            lambda: run(["start-stop-daemon", "--start", "--oknodo", "--background",
                         "--exec", "/usr/sbin/mariadbd"]))


def test_exporter_survives_a_server_restart(server: Server, demo_database: str, tmp_path: Path) -> None:
    stop_server, start_server = controls(server.kind)
    port = PORTS[server.kind]
    if server.admin_url.port not in (None, port) or server.admin_url.host not in ("127.0.0.1", "localhost"):
        pytest.skip(f"{server.kind} is not the local server on port {port}")
    config = tmp_path / "config.yml"
    config.write_text(FAST_CONFIG)
    exporter = make_exporter(server.url(demo_database), tmp_path, config, now=None)
    exporter.start()
    try:
        def value(name: str) -> float | None:
            return samples(exporter).get((name, ()))

        wait_for(lambda: value("pipeline_exporter_database_up") == 1.0 and value("restart_sites") == 2_000,
                 timeout=20, what="first successful collection")
        opt_outs = value("restart_opt_outs")
        try:
            stop_server()
            wait_for(lambda: not port_open(port), timeout=30, what=f"{server.kind} to stop")
            # Down: reported as such, scrapes still work, and the last good values stay.
            wait_for(lambda: value("pipeline_exporter_database_up") == 0.0, timeout=20, what="database_up 0")
            errors = samples(exporter)[("pipeline_exporter_query_errors_total", (("query", "site_count"),))]
            wait_for(lambda: samples(exporter)[("pipeline_exporter_query_errors_total",
                                               (("query", "site_count"),))] > errors,
                     timeout=10, what="failing runs to be counted")
            kinds = {s.info.name: s.error_kind for s in exporter.snapshot.states()}
            assert kinds["site_count"] == "connection"
            assert value("restart_sites") == 2_000
            assert value("restart_opt_outs") == opt_outs
        finally:
            start_server()
            wait_for(lambda: port_open(port), timeout=60, what=f"{server.kind} to start again")
        wait_for(lambda: _answers(server), timeout=60, what=f"{server.kind} to accept connections")
        # Back: a row written now shows up without restarting the exporter.
        server.execute("INSERT INTO opt_outs (channel, contact) VALUES ('sms', '+15550000000')",
                       database=demo_database)
        wait_for(lambda: value("restart_opt_outs") == opt_outs + 1, timeout=30, what="fresh values after restart")
        wait_for(lambda: value("pipeline_exporter_database_up") == 1.0, timeout=10, what="database_up 1")
        # Each query clears its error at its own next run (a run that began while the server was
        # still coming up may fail once more): wait for all of them, bounded.
        wait_for(lambda: not any(s.error for s in exporter.snapshot.states() if s.info.kind == "query"),
                 timeout=10, what="every query to run cleanly again")
    finally:
        exporter.stop()
        server.execute("DELETE FROM opt_outs WHERE contact = '+15550000000'", database=demo_database) \
            if _answers(server) else None


def _answers(server: Server) -> bool:
    try:
        server.execute("SELECT 1")
        return True
    except Exception:
        return False
