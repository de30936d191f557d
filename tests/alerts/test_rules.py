"""The rule files: generated from one config, accepted by promtool, unit-tested, and on Version 2.

The rules are ``pipeline_exporter/mixin``'s output with the default config. These tests check that the
committed files are that output, that promtool accepts and unit-tests them (alerts/tests/), and
the properties issue 11 asks for: alerts read windowed gauges (never ``increase()`` over a
counter derived from the database), every alert carries ``service="pipeline"``, names and
severities match the interface table of docs/alerting.md, and each of issue 11's false pages is
pinned by a named promtool test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import promql_parser as promql
import pytest
import yaml

from pipeline_exporter.mixin import DEFAULT, render
from pipeline_exporter.mixin.config import MixinConfig
from pipeline_exporter.mixin.render import groups, packs
from pipeline_exporter.mixin.render.docs import thresholds_table as table_of
from tests.alerts.conftest import (
    ALERT_RULES,
    ALERTING_DOC,
    ALERTS,
    PROMETHEUS_CONFIG,
    RECORDING_RULES,
    REPO,
    RULE_TESTS,
    RUNBOOKS,
    SEVERITIES,
    alert_rules,
    github_anchors,
    interface_alerts,
    load_rules,
    rule_files,
    run,
    runbook_url,
)
from tests.support.promql import selectors, walk

METHOD333 = packs()["method333"]
PARAMETERS = {name: spec.default for name, spec in METHOD333.parameters.items()}


def thresholds_table(config: MixinConfig) -> str:
    """The docs table of method333's alerts for ``config``."""
    return table_of(alert for group in groups(METHOD333, config, "groups") for alert in group.alerts)


ANNOTATIONS = {"summary", "description", "resolved", "runbook_url", "dashboard_url"}
# Alerts allowed to fire at the first evaluation (`for: 0m`): the input of the first is one
# complete check repeated on a slow schedule; the second always fires.
IMMEDIATE_ALERTS = {"DatabaseIntegrityCheckFailed", "Watchdog"}
ALWAYS_FIRING = {"Watchdog"}
TWINS = {"EmailBounceRateHigh", "EmailComplaintRateHigh", "LlmBudgetBurnHigh"}
RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta", "resets", "deriv"}
# Counters that are not derived from the pipeline's database: Prometheus's, Alertmanager's and
# the exporter's own bookkeeping. rate() and increase() are right on these.
OWN_COUNTERS = ("prometheus_", "alertmanager_", "pipeline_exporter_")

# Issue 11's false pages, each pinned by one promtool test: (file, test name).
FALSE_PAGES = {
    "prune": ("http.yml", "a prune and a restart with lower counters fire nothing"),
    "re-queue": ("outreach.yml", "re-queued failed sms fire nothing"),
    "classify": ("living.yml", "a living database that is pruned, re-queued, classified and "
                               "restarted fires nothing"),
    "restart with a lower counter": ("http.yml", "a prune and a restart with lower counters fire nothing"),
    "a new series' first burst": ("http.yml", "a new source's first burst of 403s fires"),
    "one complaint": ("outreach.yml", "one complaint in 150 emails pages nobody"),
    "a failing hourly job": ("exporter.yml", "a failing hourly query fires once and does not flap"),
    "a missing report file": ("exporter.yml", "a report file that is not in use fires nothing"),
}

# Issue 21: restarts and missed scrapes, and SitesStuck on a backlog, each pinned by one promtool
# test: (file, test name).
RESTARTS = {
    "a steady or draining backlog is silent, growth or ageing fires": (
        "system.yml", "stuck sites against growth or age, not a backlog"),
    "one stale scrape neither resolves nor re-fires": (
        "restarts.yml", "a firing alert stays firing through one stale scrape and resolves within keep_firing_for"),
    "a restart gap delays a held alert by the gap only": (
        "restarts.yml", "a held alert fires across a restart gap, delayed by the gap only"),
    "an exporter restarted every 20 minutes": (
        "restarts.yml", "a stage whose stuck count grows fires although the exporter restarts every 20 minutes"),
}
# The alerts that hold their span inside the expression (`hold:`): every `for` of 30 minutes or
# more, and the burn-rate warning the issue names. Those with a shorter `for` outlive restarts
# less often than every 15 minutes.
HELD = {"OutreachStalled", "ReplyRateDropped", "CodeCoverageLow", "SitesStuck", "HostDiskWillFillIn24h",
        "LlmBudgetBurnHigh-warning"}
# Alerts not fed by the exporter's metrics, and PipelineExporterDown (on `up`, never stale; it
# mutes the data alerts and must resolve at once): no keep_firing_for.
NOT_KEPT = {"Watchdog", "PrometheusRuleFailures", "PrometheusNotConnectedToAlertmanagers",
            "AlertmanagerFailedToSendAlerts", "PipelineExporterDown"}

# The low-volume (or below-the-level) case of every alert that has one: (file, test name).
LOW_VOLUME = {
    "EmailBounceRateHigh": ("outreach.yml", "email bounce low volume stays silent"),
    "EmailComplaintRateHigh": ("outreach.yml", "one complaint in 150 emails pages nobody"),
    "SmsFailureRateHigh": ("outreach.yml", "sms failure low volume stays silent"),
    "OutreachStalled": ("outreach.yml", "outreach on a channel not in use or still sending stays silent"),
    "ReplyRateDropped": ("outreach.yml", "reply rate normal or low volume stays silent"),
    "HttpForbiddenErrorsHigh": ("http.yml", "http errors at the thresholds stay silent"),
    "HttpRateLimitErrorsHigh": ("http.yml", "http errors at the thresholds stay silent"),
    "CodeCoverageLow": ("system.yml", "line coverage at exactly 70 % stays silent"),
    "SitesStuck": ("system.yml", "stuck sites against growth or age, not a backlog"),
    "HostDiskWillFillIn24h": ("system.yml", "disk growing slowly or a passing spike stays silent"),
    "LlmBudgetBurnHigh": ("cost.yml", "llm spend on the budget's pace stays silent"),
    "LlmBudgetExceeded": ("cost.yml", "llm spend on the budget's pace stays silent"),
    "PipelineExporterQueryFailing": ("exporter.yml", "a query failing for 15 minutes fires, one failure does not"),
    "PrometheusRuleFailures": ("meta.yml", "prometheus rule failures"),
    "PrometheusNotConnectedToAlertmanagers": ("meta.yml", "prometheus not connected to alertmanagers"),
    "AlertmanagerFailedToSendAlerts": ("meta.yml", "alertmanager failing to send notifications"),
}


def equal_matchers(node: promql.VectorSelector) -> dict[str, str]:
    return {m.name: m.value for m in node.matchers.matchers if str(m.op) == "MatchOp.Equal"}


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


def promtool_tests() -> Iterator[tuple[str, dict[str, Any]]]:
    """(file name, test) for every test of every promtool test file."""
    for path in sorted(RULE_TESTS.glob("*.yml")):
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            yield path.name, test


def unit_test_cases() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(alertname, exp_alerts) for every alert_rule_test entry of every promtool test file."""
    for _, test in promtool_tests():
        for case in test.get("alert_rule_test", []):
            yield case["alertname"], case.get("exp_alerts") or []


# ---------------------------------------------------------------- one source

def test_committed_rules_are_the_generators_output_with_the_defaults():
    """`pipeline-exporter mixin --out . --check`: rules, dashboards and the docs table are rendered."""
    result = subprocess.run([sys.executable, "-m", "pipeline_exporter", "mixin", "--out", str(REPO), "--check"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    files = render(DEFAULT)
    assert ALERT_RULES.read_text(encoding="utf-8") == files["alerts/pipeline-alerts.yml"]
    assert RECORDING_RULES.read_text(encoding="utf-8") == files["alerts/recording-rules.yml"]


def test_a_threshold_changed_in_the_config_changes_the_rules_and_the_docs_table():
    """Thresholds live in one place: the config feeds the rule and the docs table alike."""
    config = MixinConfig(parameters={"forbidden_per_window": 35, "min_events": 5})
    rules = render(config)["alerts/pipeline-alerts.yml"]
    assert 'code="403"} > 35' in rules and 'code="403"} > 20' not in rules
    assert 'status="bounced"} >= 5' in rules
    table = thresholds_table(config)
    assert "> 35 HTTP 403" in table and "5 bounces" in table
    assert "> 20 HTTP 403" in thresholds_table(DEFAULT)


# ---------------------------------------------------------------- promtool

@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_promtool_check_rules_is_clean(promtool, path):
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_files_exist():
    """Guard against a vacuous pass of the parametrised checks above."""
    assert {p.name for p in rule_files()} == {"pipeline-alerts.yml", "recording-rules.yml"}


def test_promtool_check_config_loads_every_rule_file_from_the_repo(promtool):
    result = run([promtool, "check", "config", str(PROMETHEUS_CONFIG.relative_to(REPO))])
    assert result.returncode == 0, result.stdout + result.stderr
    for path in rule_files():
        assert f"alerts/{path.name}" in result.stdout, result.stdout


def test_prometheus_config_rule_globs_work_in_the_compose_layout(promtool, tmp_path):
    """docker-compose mounts the config at /etc/prometheus/prometheus.yml, alerts/ beside it."""
    etc = tmp_path / "etc" / "prometheus"
    etc.mkdir(parents=True)
    shutil.copy(PROMETHEUS_CONFIG, etc / "prometheus.yml")
    shutil.copytree(ALERTS, etc / "alerts")
    result = run([promtool, "check", "config", str(etc / "prometheus.yml")], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in rule_files():
        assert str(etc / "alerts" / path.name) in result.stdout, result.stdout


def test_prometheus_config_scrapes_the_jobs_the_rules_select():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {DEFAULT.job, DEFAULT.prometheus_job, DEFAULT.alertmanager_job}
    assert jobs[DEFAULT.job]["static_configs"][0]["targets"] == ["exporter:9333"]
    assert jobs[DEFAULT.alertmanager_job]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    managers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert managers == ["alertmanager:9093"]


def test_promtool_unit_tests_pass(promtool):
    tests = sorted(str(p.relative_to(REPO)) for p in RULE_TESTS.glob("*.yml"))
    assert len(tests) >= 7, "promtool unit tests missing from alerts/tests/"
    result = run([promtool, "test", "rules", *tests])
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- unit-test coverage

def test_every_alert_and_severity_fires_in_a_unit_test_with_every_annotation_pinned():
    fired = {(name, alert["exp_labels"]["severity"])
             for name, alerts in unit_test_cases() for alert in alerts}
    expected = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    assert expected <= fired, f"never shown firing: {sorted(expected - fired)}"
    for name, alerts in unit_test_cases():
        for alert in alerts:
            missing = ANNOTATIONS - set(alert.get("exp_annotations", {}))
            assert not missing, f"{name}: a unit test does not pin {sorted(missing)}"
            assert alert["exp_labels"].get("service") == "pipeline", name


def test_every_alert_has_a_silent_unit_test():
    silent = {name for name, alerts in unit_test_cases() if not alerts}
    missing = {rule["alert"] for rule in alert_rules()} - silent - ALWAYS_FIRING
    assert not missing, f"no unit test shows these alerts staying silent: {sorted(missing)}"


def _named_test(file_name: str, test_name: str) -> dict[str, Any]:
    found = [test for name, test in promtool_tests() if name == file_name and test["name"] == test_name]
    assert len(found) == 1, f"alerts/tests/{file_name} has no single test named {test_name!r}"
    return found[0]


@pytest.mark.parametrize("case", sorted(FALSE_PAGES), ids=str)
def test_each_false_page_of_issue_11_is_pinned_by_a_named_promtool_test(case):
    test = _named_test(*FALSE_PAGES[case])
    checks = test.get("alert_rule_test", []) + test.get("promql_expr_test", [])
    assert checks, f"{case}: the test checks nothing"


@pytest.mark.parametrize("alert", sorted(LOW_VOLUME), ids=str)
def test_each_alert_has_a_low_volume_case_that_stays_silent(alert):
    test = _named_test(*LOW_VOLUME[alert])
    silent = [case for case in test.get("alert_rule_test", [])
              if case["alertname"] == alert and not case.get("exp_alerts")]
    assert silent, f"{LOW_VOLUME[alert]} never shows {alert} silent"


def test_the_living_database_test_checks_every_alert_and_pending_ones_too():
    test = _named_test(*FALSE_PAGES["classify"])
    checked = {case["alertname"] for case in test["alert_rule_test"] if not case.get("exp_alerts")}
    assert checked == {rule["alert"] for rule in alert_rules()} - ALWAYS_FIRING
    assert any(case["expr"].startswith("ALERTS{") for case in test["promql_expr_test"])


# ---------------------------------------------------------------- names, labels, annotations

def test_the_interface_table_was_read():
    """Guard against a vacuous pass: the docs' interface table holds the contract's 24 rows."""
    alerts = interface_alerts()
    assert len(alerts) == 26  # the contract's 24, issue 21's CronJobFailingOften and LlmBudgetExceeded
    assert ("EmailBounceRateHigh", "critical") in alerts and ("Watchdog", "none") in alerts


def test_the_rules_carry_exactly_the_interface_names_and_severities():
    ours = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    assert ours == interface_alerts(), (f"missing: {sorted(interface_alerts() - ours)}, "
                                        f"not in the interface: {sorted(ours - interface_alerts())}")
    assert len(ours) == len(alert_rules()), "two rules share an alert name and severity"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_labels_and_annotations(rule):
    name = rule["alert"]
    assert rule["labels"] == {"severity": rule["labels"]["severity"], "service": "pipeline"}
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) >= ANNOTATIONS, f"{name}: missing {sorted(ANNOTATIONS - set(annotations))}"
    for fixed in ("summary", "resolved"):
        assert "{{" not in annotations[fixed], f"{name}: {fixed} must be one fixed sentence"
    assert annotations["summary"] != annotations["resolved"]
    assert annotations["runbook_url"] == runbook_url(name)
    assert re.fullmatch(re.escape(DEFAULT.grafana_url) + r"/d/pipeline-[a-z]+\?orgId=1.*",
                        annotations["dashboard_url"]), annotations["dashboard_url"]
    if "value" in annotations:
        assert "$value" in annotations["description"] and "$value" in annotations["value"], name


def test_exporter_alerts_link_the_dashboard_with_their_instance():
    for rule in alert_rules():
        if not rule["alert"].startswith(("Prometheus", "Alertmanager", "Watchdog")):
            assert rule["annotations"]["dashboard_url"].endswith(
                "{{with $labels.instance}}&var-instance={{.}}{{end}}"), rule["alert"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_for_is_set_and_at_most_one_hour(rule):
    assert "for" in rule, f"{rule['alert']}: `for` must be chosen explicitly"
    minimum = 0 if rule["alert"] in IMMEDIATE_ALERTS else 1
    assert minimum <= duration_seconds(rule["for"]) <= 3600


def test_every_runbook_anchor_exists():
    anchors = github_anchors(RUNBOOKS.read_text(encoding="utf-8"))
    missing = {rule["annotations"]["runbook_url"].split("#", 1)[1] for rule in alert_rules()} - anchors
    assert not missing, f"docs/runbooks.md has no section for: {sorted(missing)}"


def test_twins_are_exactly_the_alerts_with_two_severities():
    by_name: dict[str, set[str]] = {}
    for rule in alert_rules():
        by_name.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert {name for name, severities in by_name.items() if len(severities) > 1} == TWINS
    assert all(by_name[name] == {"warning", "critical"} for name in TWINS)


# ---------------------------------------------------------------- Version 2: what rules read

def _job_for(metric: str) -> str:
    if metric.startswith("prometheus_"):
        return DEFAULT.prometheus_job
    if metric.startswith("alertmanager_"):
        return DEFAULT.alertmanager_job
    return DEFAULT.job


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_every_selector_picks_its_configured_job(path):
    for rule in load_rules(path):
        for node, _ in selectors(rule["expr"]):
            assert equal_matchers(node).get("job") == _job_for(node.name), \
                f"{rule.get('alert') or rule['record']}: {node.name} lacks job=\"{_job_for(node.name)}\""


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_no_rule_applies_rate_or_increase_to_a_counter_from_the_database(path):
    for rule in load_rules(path):
        for node, inside in selectors(rule["expr"]):
            if RANGE_FUNCTIONS & set(inside) and node.name.endswith("_total"):
                assert node.name.startswith(OWN_COUNTERS), \
                    f"{rule.get('alert') or rule['record']}: {sorted(RANGE_FUNCTIONS & set(inside))}({node.name})"


def removed_label_uses(expr: str) -> list[str]:
    """Selectors of labels Version 2 removed: outreach states as events, sentiment on messages."""
    bad = []
    for node, _ in selectors(expr):
        for matcher in node.matchers.matchers:
            if node.name == "pipeline_outreach_events_total" and matcher.name == "event" \
                    and re.search("bounced|failed|complained", matcher.value):
                bad.append(f'{node.name}{{event="{matcher.value}"}}')
            if node.name == "pipeline_conversation_messages_total" and matcher.name == "sentiment":
                bad.append(f"{node.name}{{sentiment=...}}")
    return bad


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_no_rule_selects_a_label_version_2_removed(path):
    for rule in load_rules(path):
        assert not removed_label_uses(rule["expr"]), rule.get("alert") or rule["record"]


def test_the_removed_label_check_catches_old_selectors():
    assert removed_label_uses('pipeline_outreach_events_total{event="bounced"}')
    assert removed_label_uses('sum(pipeline_conversation_messages_total{sentiment!="x"})')
    assert not removed_label_uses('pipeline_outreach_events_total{event="sent"}')


def test_ratio_alerts_need_twenty_sends_and_three_events_in_the_window():
    min_sends, min_events = PARAMETERS["min_sends"], PARAMETERS["min_events"]
    batch = PARAMETERS["batch_min_sends"]
    for rule in alert_rules():
        if "_per_sent:ratio" in rule["expr"] and rule["alert"] != "ReplyRateDropped":
            branches = rule["expr"].split("\nor\n")
            for branch in branches:
                # A branch on the 1 h window alone (the bad-batch page) needs the bigger batch.
                sends = batch if ":ratio24h{" not in branch and ":ratio7d{" not in branch else min_sends
                assert re.search(rf"pipeline_outreach_sent:count\w+\{{[^}}]*\}} >= {sends}\b",
                                 branch), rule["alert"]
                assert re.search(rf'channel_status:pipeline_outreach_sent:count\w+\{{[^}}]*status="\w+"\}} '
                                 rf">= {min_events}\b", branch), rule["alert"]


def test_deliverability_warnings_need_both_windows_over_the_level():
    for rule in alert_rules():
        if rule["alert"] in {"EmailBounceRateHigh", "SmsFailureRateHigh"}:
            assert ":ratio24h{" in rule["expr"] and ":ratio1h{" in rule["expr"]


def test_complaints_are_never_judged_on_the_last_hours_cohort():
    """Issue 21: complaints arrive hours after the send, so the 1 h cohort has none yet."""
    rules = [rule for rule in alert_rules() if rule["alert"] == "EmailComplaintRateHigh"]
    assert len(rules) == 2
    for rule in rules:
        assert ":ratio24h{" in rule["expr"] and "1h{" not in rule["expr"]


def test_a_small_batch_never_pages_on_the_last_hour_alone():
    """Issue 21: the bad-batch branch needs a batch where a healthy day's chance count cannot page."""
    assert PARAMETERS["batch_min_sends"] >= 100
    _named_test("outreach.yml", "three bounces in a batch of twenty page nobody")
    _named_test("outreach.yml", "complaints on yesterday's emails page although the last hour is clean")


def test_a_held_expression_whose_metric_name_changes_is_pinned():
    """The held count drops the metric name (`0 * (expr)`): LlmBudgetBurnHigh's warning returns
    one recorded series or another by branch, and a span with both failed the rule."""
    test = _named_test("cost.yml", "llm budget warning held across its two branches")
    assert {series["values"] for series in test["input_series"] if 'window="1h"' in series["series"]} == {"3x9 1x20"}


@pytest.mark.parametrize("case", sorted(RESTARTS), ids=str)
def test_each_restart_case_of_issue_21_is_pinned_by_a_named_promtool_test(case):
    test = _named_test(*RESTARTS[case])
    assert any("stale" in series["values"] for series in test["input_series"]) or case.startswith("a steady"), \
        f"{case}: the input has no staleness marker (a failed scrape)"
    assert [check for check in test["alert_rule_test"] if check.get("exp_alerts")], f"{case}: nothing fires"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_data_alerts_keep_firing_through_a_missed_scrape_for_a_bounded_time(rule):
    """keep_firing_for: longer than a restart and PipelineExporterDown's 5 m (which then mutes the
    alert), short enough that a real resolution is announced within minutes."""
    if rule["alert"] in NOT_KEPT:
        assert "keep_firing_for" not in rule, rule["alert"]
    else:
        assert 300 < duration_seconds(rule["keep_firing_for"]) <= 900, rule["alert"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_long_alerts_hold_their_span_in_the_expression(rule):
    """A `for` restarts at every missing evaluation: an exporter restarted more often than the
    `for` never lets the alert fire. The held ones count the span over stored points instead."""
    name = f"{rule['alert']}-{rule['labels']['severity']}"
    held = rule["alert"] in HELD or name in HELD
    assert ("count_over_time(" in rule["expr"]) == held, name
    if held:
        assert rule["for"] == "1m", name
        (window, step, points) = re.findall(r"\)\[(\d+m):(\d+m)\]\n\) >= (\d+)", rule["expr"])[-1]
        # One point a minute; up to 10 minutes of them may be missing (restarts, failed scrapes).
        assert step == "1m" and duration_seconds(window) == (int(points) + 10) * 60, name
        # Counted without the metric name: a name that changes with the branch is one series.
        assert "count_over_time(\n  (\n    0 * (\n" in rule["expr"], name
    else:
        assert duration_seconds(rule["for"]) <= 15 * 60, f"{name}: a long `for` restarts at every gap"


def test_no_rendered_file_names_a_grafana_by_default():
    """Issue 21: no localhost default. The alerts carry the dashboard's path; Alertmanager's
    templates prepend the one address set in alertmanager/templates/grafana.tmpl."""
    assert DEFAULT.grafana_url == ""
    for path, text in render(DEFAULT).items():
        assert "localhost" not in text, path
    for rule in alert_rules():
        assert rule["annotations"]["dashboard_url"].startswith("/d/"), rule["alert"]


def test_query_failing_reads_query_up_for_fifteen_minutes():
    (rule,) = [r for r in alert_rules() if r["alert"] == "PipelineExporterQueryFailing"]
    assert [node.name for node, _ in selectors(rule["expr"])] == ["pipeline_exporter_query_up"]
    assert rule["for"] == "15m"


# ---------------------------------------------------------------- recording rules

def documented_recording_names() -> str:
    return ALERTING_DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [rule["record"] for rule in load_rules(RECORDING_RULES)])
def test_every_recording_rule_is_documented(name):
    """Listed literally, or as a window family (`…:count<W>`, `…:count15m`, `…:count1h`)."""
    doc = documented_recording_names()
    family = re.sub(r"(15m|1h|24h|7d)$", "<W>", name)
    short = "…:" + name.rsplit(":", 1)[1]
    assert f"`{name}`" in doc or f"`{family}`" in doc or f"`{short}`" in doc, name


def test_recording_rule_names_are_unique():
    names = [rule["record"] for rule in load_rules(RECORDING_RULES)]
    assert len(names) == len(set(names)), "a recording rule is defined twice"


def test_recording_rules_keep_job_and_instance_and_at_most_their_level_labels():
    for rule in load_rules(RECORDING_RULES):
        level = rule["record"].split(":")[0]
        allowed = {"job", "instance"} | (set() if level == "job" else set(level.split("_")))
        for node, _ in walk(promql.parse(rule["expr"])):
            if isinstance(node, promql.AggregateExpr):
                assert str(node.modifier).startswith("by"), rule["record"]
                assert {"job", "instance"} <= set(node.modifier.labels) <= allowed, rule["record"]
