"""Fixtures for the "beyond one machine" tests: two demo pipelines and rule copies."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from exporter.demo import build_demo

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "prometheus" / "examples"
NOW = datetime.now(timezone.utc).replace(microsecond=0)

# Two pipelines that differ in size and seed, so their numbers differ and a mix-up shows.
# The names are the ones prometheus/examples/multi-pipeline.yml gives its two targets.
PIPELINES = {"outreach-uk": {"sites": 1500, "seed": 11}, "outreach-us": {"sites": 2500, "seed": 29}}


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


def fast_recording_rules(tmp: Path) -> Path:
    """alerts/recording-rules.yml with every group evaluated each second (the outreach group's
    `interval: 1m` would otherwise delay its first sample by up to a minute)."""
    doc = yaml.safe_load((REPO / "alerts" / "recording-rules.yml").read_text(encoding="utf-8"))
    for group in doc["groups"]:
        group["interval"] = "1s"
    path = tmp / "recording-rules-1s.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
