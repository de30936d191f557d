"""Real SQLite files built from the shipped DDL with known rows, and scrapes at a fixed instant."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from prometheus_client.core import Metric

from exporter.app import Exporter, families

REPO = Path(__file__).resolve().parents[2]
DDL = REPO / "exporter" / "schema" / "sqlite.sql"
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


@pytest.fixture
def make_db(tmp_path: Path) -> Callable[..., Path]:
    """Build a database with known rows: ``make_db({"sites": [{...}], ...})``."""
    def make(rows: dict[str, list[dict[str, Any]]] | None = None, name: str = "sites.db") -> Path:
        return build_db(tmp_path / name, rows or {})
    return make


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


def value(fams: dict[str, Metric], sample: str, **labels: str) -> float | None:
    """The value of one sample (by its full name and exact labels), or None if absent."""
    for family in fams.values():
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return s.value
    return None


def series(fams: dict[str, Metric], sample: str) -> dict[tuple, float]:
    """Every sample of that name: sorted label items -> value."""
    return {tuple(sorted(s.labels.items())): s.value
            for family in fams.values() for s in family.samples if s.name == sample}
