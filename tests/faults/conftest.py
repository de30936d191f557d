"""Fault injection against the real exporter process: real files, real SQLite writers, real signals."""

from __future__ import annotations

import sqlite3
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import ContextManager

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.demo import build_demo
from tests.support import stack

REPO = Path(__file__).resolve().parents[2]
DDL = REPO / "exporter" / "schema" / "sqlite.sql"

# Fast inline queries (the built-in pack runs every 60 s): a fault test waits seconds, not minutes.
FAST_QUERIES = """
  site_count:
    interval: 500ms
    sql: SELECT COUNT(*) AS n FROM sites
    metrics: [{name: fault_sites, type: gauge, help: Sites., value: n}]
  opt_out_count:
    interval: 500ms
    sql: SELECT channel, COUNT(*) AS n FROM opt_outs GROUP BY channel
    metrics: [{name: fault_opt_outs, type: gauge, help: Opt-outs by channel., value: n, labels: [channel]}]
  site_errors:
    interval: 500ms
    sql: SELECT error_type, COUNT(*) AS n FROM sites WHERE error_type IS NOT NULL GROUP BY error_type
    metrics: [{name: fault_site_errors, type: gauge, help: Sites with an error., value: n, labels: [error_type]}]
"""
FAST_CHECKS = """
files: {interval: 500ms}
checks: {size_interval: 500ms, integrity_interval: 1s, host_interval: 1s}
"""


def fast_config(tmp: Path, extra_queries: str = "", extra: str = "", name: str = "config.yml") -> Path:
    """A config with no pack, the fast queries above (plus more) and sub-second checks."""
    body = "packs: []\nqueries:\n" + textwrap.indent((textwrap.dedent(FAST_QUERIES).strip("\n") + "\n" + textwrap.dedent(extra_queries)).strip("\n"), "  ")
    path = tmp / name
    path.write_text(body + "\n" + FAST_CHECKS + textwrap.dedent(extra))
    return path


def parse(body: str) -> dict[tuple, float]:
    """An exposition's samples: (sample name, sorted label items) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def exporter(tmp: Path, db: Path | None, config: Path | None = None, **kwargs) -> ContextManager[stack.Service]:
    """The shared launcher, with the config as third positional argument as these tests write it."""
    return stack.exporter(tmp, db, config=config, **kwargs)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """A pristine 1,500-site demo database; tests copy it before touching it."""
    root = tmp_path_factory.mktemp("fault-demo")
    db = root / "sites.db"
    build_demo(db, sites=1500, seed=333, now=datetime.now(timezone.utc).replace(microsecond=0), files_dir=root)
    return db


def small_db(path: Path, sites: int, opt_outs: dict[str, int] | None = None,
             errors: dict[str, int] | None = None) -> Path:
    """A WAL-mode database from the shipped DDL with ``sites`` sites and the given opt-outs and errors."""
    conn = sqlite3.connect(path)
    conn.executescript(DDL.read_text())
    conn.executemany("INSERT INTO sites (domain, status) VALUES (?, 'found')",
                     [(f"s{i}.example",) for i in range(sites)])
    for error, n in (errors or {}).items():
        conn.executemany("INSERT INTO sites (domain, status, error_type) VALUES (?, 'scraped', ?)",
                         [(f"e{error}{i}.example", error) for i in range(n)])
    for channel, n in (opt_outs or {}).items():
        conn.executemany("INSERT INTO opt_outs (channel, contact) VALUES (?, 'x')", [(channel,)] * n)
    conn.commit()  # journal_mode cannot change inside the open transaction
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.close()
    return path


@pytest.fixture(scope="session")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    import subprocess

    from tests.support.procs import require_binary

    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "server.key", folder / "server.crt"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def web_config(tmp: Path, body: str) -> Path:
    """A --web.config.file with this body."""
    path = tmp / "web.yml"
    path.write_text(body)
    return path
