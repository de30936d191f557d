"""Coverage and JUnit files: good ones give metrics; bad ones degrade only their own metrics."""

from __future__ import annotations

import json

import pytest

from tests.support.exposition import series, value
from tests.support.sqlite import scrape

COVERAGE = {"total": {"lines": {"total": 200, "covered": 150, "skipped": 0, "pct": 75},
                      "statements": {"pct": 74.5}, "functions": {"pct": 60}, "branches": {"pct": "Unknown"}},
            "src/a.js": {"lines": {"pct": 10}}}
JUNIT = """<?xml version="1.0"?>
<testsuites>
  <testsuite name="Email" tests="3" failures="1" time="12.5">
    <testcase name="sends"/><testcase name="bounces"><failure message="boom"/></testcase>
    <testcase name="later"><skipped/></testcase>
  </testsuite>
  <testsuite name="Full Pipeline" tests="2" failures="0" errors="1" skipped="0" time="3"/>
</testsuites>"""


@pytest.fixture
def files(tmp_path):
    cov, junit = tmp_path / "coverage-summary.json", tmp_path / "e2e-junit.xml"
    cov.write_text(json.dumps(COVERAGE))
    junit.write_text(JUNIT)
    return cov, junit


def test_good_reports(make_db, files):
    cov, junit = files
    fams = scrape(make_db({}), coverage=cov, e2e_report=junit)
    assert value(fams, "pipeline_code_coverage_ratio", metric="lines") == 0.75
    assert value(fams, "pipeline_code_coverage_ratio", metric="statements") == 0.745
    assert value(fams, "pipeline_code_coverage_ratio", metric="branches") is None, "'Unknown' is not a number"
    assert value(fams, "pipeline_code_coverage_report_timestamp_seconds") == cov.stat().st_mtime
    assert value(fams, "pipeline_e2e_tests", suite="Email", result="passed") == 1
    assert value(fams, "pipeline_e2e_tests", suite="Email", result="failed") == 1
    assert value(fams, "pipeline_e2e_tests", suite="Email", result="skipped") == 1
    assert value(fams, "pipeline_e2e_tests", suite="Full Pipeline", result="failed") == 1
    assert value(fams, "pipeline_e2e_tests", suite="Full Pipeline", result="passed") == 1
    assert value(fams, "pipeline_e2e_duration_seconds", suite="Email") == 12.5
    assert value(fams, "pipeline_e2e_report_timestamp_seconds") == junit.stat().st_mtime


BAD = {
    "empty": b"",
    "truncated": b'{"total": {"lines": {"pct": 7',
    "not json": b"<html>",
    "no total": b'{"src/a.js": {}}',
    "xml bomb": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><testsuite name="&b;"/>',
    "external entity": (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                        b'<testsuite name="&x;"/>'),
    "half-written xml": b'<testsuites><testsuite name="Email"><testcase',
}


@pytest.mark.parametrize("content", BAD.values(), ids=BAD.keys())
def test_bad_report_files_fail_only_their_own_job(make_db, tmp_path, content):
    cov, junit = tmp_path / "c.json", tmp_path / "j.xml"
    cov.write_bytes(content)
    junit.write_bytes(content)
    fams = scrape(make_db({"opt_outs": [{"channel": "sms", "contact": "x"}]}), coverage=cov, e2e_report=junit)
    assert value(fams, "pipeline_exporter_query_errors_total", query="coverage_report") == 1
    assert value(fams, "pipeline_exporter_query_errors_total", query="e2e_report") == 1
    assert value(fams, "pipeline_code_coverage_ratio", metric="lines") is None
    assert value(fams, "pipeline_opt_outs_total", channel="sms") == 1
    assert value(fams, "pipeline_exporter_query_errors_total", query="opt_outs") == 0


def test_oversized_report_is_refused_without_reading_it(make_db, tmp_path):
    cov = tmp_path / "c.json"
    with open(cov, "wb") as handle:
        handle.truncate(17 * 1024 * 1024)  # sparse: 17 MiB over the 16 MiB default limit
    fams = scrape(make_db({}), coverage=cov)
    assert value(fams, "pipeline_exporter_query_errors_total", query="coverage_report") == 1


def test_suite_names_are_a_capped_label(make_db, tmp_path):
    junit = tmp_path / "j.xml"
    suites = "".join(f'<testsuite name="suite {i:02d}" tests="{i + 1}" failures="0" time="1"/>' for i in range(30))
    junit.write_text(f"<testsuites>{suites}</testsuites>")
    fams = scrape(make_db({}), e2e_report=junit)
    passed = {
        dict(k)["suite"]: v for k, v in series(fams, "pipeline_e2e_tests").items() if dict(k)["result"] == "passed"
    }
    assert len(passed) == 21 and passed["other"] == sum(range(1, 11)) and "suite 29" in passed
    assert sum(passed.values()) == sum(range(1, 31))
    assert value(fams, "pipeline_exporter_series_dropped_total", metric="pipeline_e2e_tests") == 10


def test_infinite_counts_in_a_report_are_not_exported(make_db, tmp_path):
    junit = tmp_path / "j.xml"
    junit.write_text('<testsuite name="Email" tests="inf" failures="1" time="inf"/>')
    fams = scrape(make_db({}), e2e_report=junit)
    assert value(fams, "pipeline_e2e_tests", suite="Email", result="failed") == 1
    assert value(fams, "pipeline_e2e_duration_seconds", suite="Email") == 0
    assert value(fams, "pipeline_exporter_query_errors_total", query="e2e_report") == 0
