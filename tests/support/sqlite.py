"""Real SQLite pipeline databases from the shipped DDL, and in-process exporters on them at a
fixed instant: the one SQLite builder of every suite."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from pipeline_exporter.app import Exporter, families
from tests.support.paths import DDL

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=timezone.utc)
NOW_TS = NOW.timestamp()


def ago(seconds: float, iso: bool = False) -> str:
    """A timestamp ``seconds`` before NOW, in SQLite's form or ISO-8601 with T and Z."""
    moment = NOW - timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S")


def build_db(path: Path, rows: dict[str, list[dict[str, Any]]]) -> Path:
    """A WAL-mode SQLite database with the contract's tables and the given rows."""
    conn = sqlite3.connect(path)
    conn.executescript(DDL.read_text())
    for table, table_rows in rows.items():
        for row in table_rows:
            cols = ", ".join(row)
            conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    conn.commit()
    conn.execute("PRAGMA journal_mode=WAL")  # outside any transaction, or SQLite ignores it
    conn.close()
    return path



def small_db(
    path: Path, sites: int, opt_outs: dict[str, int] | None = None, errors: dict[str, int] | None = None
) -> Path:
    """A WAL-mode database with ``sites`` sites and the given opt-outs and errors (by count)."""
    rows: dict[str, list[dict[str, Any]]] = {
        "sites": [{"domain": f"s{i}.example", "status": "found"} for i in range(sites)]
        + [{"domain": f"e{error}{i}.example", "status": "scraped", "error_type": error}
           for error, n in (errors or {}).items() for i in range(n)],
        "opt_outs": [{"channel": channel, "contact": "x"} for channel, n in (opt_outs or {}).items()
                     for _ in range(n)],
    }
    return build_db(path, rows)




def make_exporter(db: Path, config: Path | None = None, now: float = NOW_TS, **overrides: Any) -> Exporter:
    """An exporter on ``db`` whose clock stands at ``now``; report files default to absent ones."""
    base = db.parent
    settings = {"database_url": f"sqlite:///{db}", "coverage": base / "no-coverage.json",
                "e2e_report": base / "no-junit.xml", **overrides}
    return Exporter(config, settings, clock=lambda: now)


def scrape(db: Path, config: Path | None = None, now: float = NOW_TS, **overrides: Any) -> dict[str, Metric]:
    """Run every job once and return the families a scrape would expose."""
    exporter = make_exporter(db, config, now, **overrides)
    exporter.pipeline.scheduler.run_once()
    return families(exporter.registry)
