"""The exporter as users run it: a real process on a demo database, scraped over HTTP."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import docs, stack
from tests.support.procs import require_binary, wait_for

# Served only when the config sets a monthly LLM budget; this exporter runs without one.
# The budget needs a configured budget; the non-finite counter a non-finite value in the data.
NEEDS_CONFIG = {"pipeline_llm_budget_usd", "pipeline_exporter_nonfinite_values_total"}
SECTIONS = ["Pipeline health", "Outreach, sales, LLM cost", "Conversations", "Compliance",
            "System health", "The exporter itself", "Windowed gauges", "LLM budget"]


def served_samples(body: str) -> dict[str, tuple[str, list]]:
    """{sample name: (its family's type, its samples)} of an exposition."""
    samples: dict[str, tuple[str, list]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, (family.type, []))[1].append(sample)
    return samples


@pytest.fixture(scope="module")
def running_exporter(demo, tmp_path_factory):
    with stack.exporter(tmp_path_factory.mktemp("http"), demo["db"], coverage=demo["coverage"],
                        e2e_report=demo["e2e_report"]) as service:
        yield service


@pytest.fixture(scope="module")
def samples(running_exporter) -> dict[str, tuple[str, list]]:
    return served_samples(running_exporter.get("/metrics").text)


def test_the_metric_list_was_read():
    """Guard against a vacuous pass: docs/metrics.md parses into every section's tables."""
    rows = docs.metric_rows()
    assert len(rows) >= 60
    assert [s for s in SECTIONS if s not in {row.section for row in rows}] == []
    for row in rows:
        assert row.name.startswith("pipeline_"), row
        assert row.name.endswith("_total") == (row.type == "counter"), row
        # A `window` label is a windowed gauge's (`_recent`) or a percentile's over a window (Version 4).
        assert ("window" in row.labels) == (row.name.endswith("_recent") or
                                            "window" in row.labels and "percentile" in row.labels), row
        assert not {"job", "instance"} & set(row.labels), row
    assert all(f"`{w}`" in docs.METRICS_DOC.read_text() for w in docs.WINDOWS)


def test_every_documented_metric_is_served_with_samples(samples):
    missing = sorted(row.name for row in docs.metric_rows()
                     if row.name not in NEEDS_CONFIG and not all(name in samples for name in row.series))
    assert not missing, f"documented in docs/metrics.md, no samples on the demo database: {missing}"


def test_served_metrics_have_the_documented_type_and_labels(samples):
    wrong = []
    for row in docs.metric_rows():
        for name in row.series:
            if name not in samples:
                continue
            kind, found = samples[name]
            labels = {frozenset(s.labels) - {"le"} for s in found}
            if kind != row.type or labels != {frozenset(row.labels)}:
                wrong.append(f"{name}: served {kind} {sorted(map(sorted, labels))}, "
                             f"documented {row.type} {list(row.labels)}")
    assert not wrong, "\n".join(wrong)


def test_windows_and_outreach_events_are_the_documented_values(samples):
    """Every windowed gauge has the four windows; outreach events are events only, no states."""
    for row in docs.metric_rows():
        if "window" in row.labels and row.name in samples:
            windows = {s.labels["window"] for s in samples[row.name][1]}
            # the cron percentiles are over the 24h and 7d windows only (metrics.md, Version 4)
            expected = {"24h", "7d"} if "percentile" in row.labels else set(docs.WINDOWS)
            assert windows == expected, row.name
    events = {s.labels["event"] for s in samples["pipeline_outreach_events_total"][1]}
    assert events == {"created", "sent", "delivered", "replied"}


def test_every_served_metric_is_documented(samples):
    documented = docs.series_names()
    counters = {row.name.removesuffix("_total") for row in docs.metric_rows() if row.type == "counter"}
    extra = sorted(name for name in samples if name.startswith("pipeline_") and name not in documented
                   and not (name.endswith("_created") and name.removesuffix("_created") in counters))
    assert not extra, f"served but missing from docs/metrics.md: {extra}"


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
        # The queries say why they fail before the file appears (on a busy machine the first
        # query run can come after database_up's first 0).
        wait_for(lambda: "does not exist" in service.log.read_text(), timeout=40,
                 what="a query's log line naming the missing file")
        db.parent.mkdir()
        shutil.copy(demo["db"], db)
        # The 60 s queries retry on their schedule; the 15 s ones show the recovery first.
        wait_for(lambda: "pipeline_exporter_database_up 1.0" in service.get("/metrics").text,
                 timeout=40, what="database_up 1 after the file appeared")
        wait_for(lambda: "pipeline_cron_job_enabled{" in service.get("/metrics").text, timeout=40,
                 what="cron metrics after the file appeared")
    assert "does not exist" in service.log.read_text()
