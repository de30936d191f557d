"""Fixtures for the "beyond one machine" tests: two demo pipelines and rule copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_exporter.packs.method333.demo import build_demo
from tests.support.scale import NOW, PIPELINES


@pytest.fixture(scope="session")
def pipeline_dbs(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """name -> {db, coverage, e2e_report} of one demo database per pipeline."""
    out = {}
    for name, spec in PIPELINES.items():
        root = tmp_path_factory.mktemp(name)
        db = root / "db" / "sites.db"
        build_demo(db, sites=spec["sites"], seed=spec["seed"], now=NOW, files_dir=root)
        out[name] = {"db": db, "coverage": root / "coverage" / "coverage-summary.json",
                     "e2e_report": root / "test-results" / "e2e-junit.xml"}
    return out
