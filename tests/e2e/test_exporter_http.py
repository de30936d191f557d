"""The exporter as users run it: a real process on a demo database, scraped over HTTP."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import stack
from tests.support.procs import require_binary, wait_for

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contract" / "metrics.md"


def contract_metric_names() -> set[str]:
    """Every metric name in the contract's tables (family names, counters without _total)."""
    text = CONTRACT.read_text()
    names = set(re.findall(r"^\| `(pipeline_[a-z0-9_]+)`(?:, `(pipeline_[a-z0-9_]+)`)?", text, re.M))
    return {n.removesuffix("_total") for pair in names for n in pair if n}


@pytest.fixture(scope="module")
def running_exporter(demo, tmp_path_factory):
    with stack.exporter(tmp_path_factory.mktemp("http"), demo["db"], coverage=demo["coverage"],
                        e2e_report=demo["e2e_report"]) as service:
        yield service


def test_every_contract_metric_family_is_served_with_samples(running_exporter):
    assert CONTRACT.exists(), f"the contract is expected beside the repository at {CONTRACT}"
    body = running_exporter.get("/metrics").text
    served = {f.name: f for f in text_string_to_metric_families(body)}
    expected = contract_metric_names()
    assert len(expected) >= 50
    missing = sorted(expected - set(served))
    assert not missing, f"contract metrics not served: {missing}"
    empty = sorted(n for n in expected if not served[n].samples)
    assert not empty, f"served without samples on the demo database: {empty}"


def test_promtool_check_metrics_is_clean(running_exporter):
    promtool = require_binary("promtool")
    body = running_exporter.get("/metrics").content
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().strip() == "" and result.stderr.decode().strip() == ""


def test_health_readiness_and_status_page(running_exporter):
    assert running_exporter.get("/-/healthy").status_code == 200
    assert running_exporter.get("/-/ready").status_code == 200
    page = running_exporter.get("/").text
    for query in ("sites", "outreaches", "cron_jobs", "coverage_report", "database_integrity", "host"):
        assert f"<td>{query}</td>" in page
    assert "failing" not in page
    assert running_exporter.get("/nope").status_code == 404


def test_missing_database_at_start_then_recovery(demo, tmp_path):
    db = tmp_path / "later" / "sites.db"
    with stack.exporter(tmp_path, db, ready=False) as service:
        wait_for(lambda: "pipeline_exporter_database_up 0.0" in service.get("/metrics").text,
                 what="database_up 0 while the file is missing")
        assert service.get("/-/ready").status_code == 503
        assert "pipeline_sites{" not in service.get("/metrics").text
        db.parent.mkdir()
        shutil.copy(demo["db"], db)
        # The 60 s queries retry on their schedule; the 15 s ones show the recovery first.
        wait_for(lambda: "pipeline_exporter_database_up 1.0" in service.get("/metrics").text,
                 timeout=40, what="database_up 1 after the file appeared")
        wait_for(lambda: "pipeline_cron_job_enabled{" in service.get("/metrics").text, timeout=40,
                 what="cron metrics after the file appeared")
    assert "does not exist" in service.log.read_text()
