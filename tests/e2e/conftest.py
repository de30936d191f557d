"""Fixtures for the end-to-end suites: a small demo database with its report files."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline_exporter.packs.method333.demo import build_demo

DEMO_NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict[str, Path]:
    """A 3,000-site demo database written relative to the current time, plus coverage and JUnit files."""
    root = tmp_path_factory.mktemp("demo")
    db = root / "db" / "sites.db"
    build_demo(db, sites=3000, seed=333, now=DEMO_NOW, files_dir=root)
    return {"root": root, "db": db, "coverage": root / "coverage" / "coverage-summary.json",
            "e2e_report": root / "test-results" / "e2e-junit.xml"}
