"""A golden copy of /metrics for a small fixed database at a fixed instant.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 make test PYTEST_ARGS=tests/unit/test_golden.py``
and review the diff like code: it is the exporter's public interface.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import generate_latest

from tests.support.known_rows import ROWS
from tests.support.sqlite import build_db, make_exporter

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden-metrics.prom"
# Values that depend on the machine or on timing, not on the database's rows.
VOLATILE = ("pipeline_host_", "pipeline_database_size_bytes", "pipeline_exporter_query_duration_seconds",
            "pipeline_exporter_build_info")


def exposition(tmp_path: Path) -> str:
    exporter = make_exporter(build_db(tmp_path / "sites.db", ROWS))
    exporter.pipeline.scheduler.run_once()
    lines = generate_latest(exporter.registry).decode().splitlines()
    return "\n".join(line for line in lines if not any(v in line for v in VOLATILE)) + "\n"


def test_metrics_match_the_golden_file(tmp_path):
    text = exposition(tmp_path)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), "no golden file yet: run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text()
