"""The rule files: promtool accepts them, their unit tests pass, and they match the contract."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import promql_parser as promql
import pytest
import yaml

from tests.alerts.conftest import (ALERT_RULES, ALERTS, PROMETHEUS_CONFIG, RECORDING_RULES, REPO,
                                   RULE_TESTS, RUNBOOK_BASE, RUNBOOKS, SEVERITIES, alert_rules,
                                   contract_alerts, github_anchors, load_rules, rule_files, run)

# The names the dashboards read (docs/alerting.md explains each one).
RECORDING_NAMES = {
    "channel_event:pipeline_outreach_events:increase24h",
    *(f"channel:pipeline_outreach_{event}_per_sent:{op}"
      for event in ("bounced", "complained", "delivered", "failed", "replied")
      for op in ("ratio24h", "ratio")),
    "channel:pipeline_sales_per_sent:ratio",
    "job:pipeline_sales_per_sent:ratio",
    "job:pipeline_outreach_replied_per_sent:ratio",
    "job:pipeline_llm_cost_usd_per_reply:ratio",
    "source_code:pipeline_http_errors:rate5m",
    "source_code:pipeline_http_errors:increase15m",
    "source_code:pipeline_http_errors:increase1h",
}

# Which Grafana dashboard shows each alert's problem (uids fixed by the contract).
DASHBOARD_OF = {
    "EmailBounceRateHigh": "pipeline-compliance",
    "EmailComplaintRateHigh": "pipeline-compliance",
    "SmsFailureRateHigh": "pipeline-compliance",
    "SitesStuck": "pipeline-health",
}
DEFAULT_DASHBOARD = "pipeline-system"
ANNOTATIONS = {"summary", "description", "runbook_url", "dashboard_url"}
JOB = ("job", "pipeline-exporter")
# Alerts allowed to fire at the first evaluation (`for: 0m`): their input is the result of one
# complete check that the exporter repeats on a slow schedule, so a `for` only delays the page.
IMMEDIATE_ALERTS = {"DatabaseIntegrityCheckFailed"}


def walk(node):
    """Every node of a parsed PromQL expression."""
    yield node
    children = []
    if isinstance(node, promql.Call):
        children = list(node.args)
    elif isinstance(node, promql.BinaryExpr):
        children = [node.lhs, node.rhs]
    elif isinstance(node, promql.AggregateExpr):
        children = [node.expr] + ([node.param] if node.param is not None else [])
    elif isinstance(node, (promql.ParenExpr, promql.SubqueryExpr, promql.UnaryExpr)):
        children = [node.expr]
    elif isinstance(node, promql.MatrixSelector):
        children = [node.vector_selector]
    for child in children:
        yield from walk(child)


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


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


def test_prometheus_config_scrapes_and_alerts_as_documented():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"pipeline-exporter", "prometheus", "alertmanager"}
    assert jobs["pipeline-exporter"]["static_configs"][0]["targets"] == ["exporter:9333"]
    assert jobs["alertmanager"]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    managers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert managers == ["alertmanager:9093"]


def test_promtool_unit_tests_pass(promtool):
    tests = sorted(str(p.relative_to(REPO)) for p in RULE_TESTS.glob("*.yml"))
    assert tests, "no promtool unit tests in alerts/tests/"
    result = run([promtool, "test", "rules", *tests])
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- unit-test coverage

def unit_test_cases():
    """(alertname, exp_alerts) for every alert_rule_test entry of every promtool test file."""
    for path in sorted(RULE_TESTS.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                yield case["alertname"], case.get("exp_alerts") or []


def test_every_alert_and_severity_fires_in_a_unit_test_with_its_annotations():
    fired = {(name, alert["exp_labels"]["severity"])
             for name, alerts in unit_test_cases() for alert in alerts}
    expected = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    assert expected <= fired, f"never shown firing: {sorted(expected - fired)}"
    for name, alerts in unit_test_cases():
        for alert in alerts:
            missing = ANNOTATIONS - set(alert.get("exp_annotations", {}))
            assert not missing, f"{name}: a unit test does not pin {sorted(missing)}"


def test_every_alert_has_a_silent_unit_test():
    silent = {name for name, alerts in unit_test_cases() if not alerts}
    missing = {rule["alert"] for rule in alert_rules()} - silent
    assert not missing, f"no unit test shows these alerts staying silent: {sorted(missing)}"


# ---------------------------------------------------------------- contract and annotations

def test_the_contract_was_read():
    """Guard against a vacuous pass: the parsed table must hold the contract's 15 rows."""
    alerts = contract_alerts()
    assert len(alerts) == 15
    assert ("EmailBounceRateHigh", "critical") in alerts


def test_every_contract_alert_exists_with_its_severity():
    ours = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    missing = contract_alerts() - ours
    assert not missing, f"alerts of the contract missing from {ALERT_RULES.name}: {sorted(missing)}"


def test_no_alert_outside_the_contract():
    ours = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    extra = ours - contract_alerts()
    assert not extra, f"alerts or severities the contract does not name: {sorted(extra)}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_labels_and_annotations(rule):
    name = rule["alert"]
    assert set(rule["labels"]) == {"severity"} and rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert ANNOTATIONS <= set(annotations), f"{name}: missing {sorted(ANNOTATIONS - set(annotations))}"
    assert "{{" not in annotations["summary"], f"{name}: the summary must be one fixed sentence"
    assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower()
    dashboard = DASHBOARD_OF.get(name, DEFAULT_DASHBOARD)
    assert annotations["dashboard_url"] == f"http://localhost:3000/d/{dashboard}"
    # A numeric alert shows its value, formatted, in the description and in `value`.
    if "value" in annotations:
        assert re.search(r"\$value \| humanize", annotations["description"]), name
        assert re.search(r"\$value \| humanize", annotations["value"]), name


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_for_is_set_and_at_most_one_hour(rule):
    assert "for" in rule, f"{rule['alert']}: `for` must be chosen explicitly"
    # `for: 0m` only where the input cannot flap between scrapes (one complete, slow check).
    minimum = 0 if rule["alert"] in IMMEDIATE_ALERTS else 1
    assert minimum <= duration_seconds(rule["for"]) <= 3600


def test_every_runbook_anchor_exists():
    anchors = github_anchors(RUNBOOKS.read_text(encoding="utf-8"))
    missing = {rule["annotations"]["runbook_url"].split("#", 1)[1] for rule in alert_rules()} - anchors
    assert not missing, f"docs/runbooks.md has no section for: {sorted(missing)}"


def test_critical_and_warning_twins_can_be_inhibited():
    """Both severities of one alert carry the same labels but severity, so `equal` can match."""
    by_name: dict[str, list[dict]] = {}
    for rule in alert_rules():
        by_name.setdefault(rule["alert"], []).append(rule)
    twins = {name: rules for name, rules in by_name.items() if len(rules) > 1}
    assert set(twins) == {"EmailBounceRateHigh", "EmailComplaintRateHigh"}
    for name, rules in twins.items():
        exprs = [re.sub(r">\s*[\d.]+\n", "> X\n", rule["expr"]) for rule in rules]
        assert exprs[0] == exprs[1], f"{name}: severities differ in more than the threshold"


# ---------------------------------------------------------------- selectors

@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_every_selector_picks_the_exporter_job(path):
    for rule in load_rules(path):
        for node in walk(promql.parse(rule["expr"])):
            if isinstance(node, promql.VectorSelector):
                matchers = {(m.name, m.value) for m in node.matchers.matchers
                            if str(m.op) == "MatchOp.Equal"}
                assert JOB in matchers, f"{rule.get('alert') or rule['record']}: {node.name} lacks job="


def test_recording_rule_names_are_exactly_the_documented_ones():
    names = [rule["record"] for rule in load_rules(RECORDING_RULES)]
    assert len(names) == len(set(names)), "a recording rule is defined twice"
    assert set(names) == RECORDING_NAMES


def test_recording_rules_keep_job_and_instance_and_the_labels_their_level_names():
    for rule in load_rules(RECORDING_RULES):
        level = rule["record"].split(":")[0]
        extra = set() if level == "job" else set(level.split("_"))
        for node in walk(promql.parse(rule["expr"])):
            if isinstance(node, promql.AggregateExpr):
                assert str(node.modifier).startswith("by"), rule["record"]
                assert set(node.modifier.labels) == {"job", "instance"} | extra, rule["record"]


def test_recording_rules_are_documented():
    doc = (REPO / "docs" / "alerting.md").read_text(encoding="utf-8")
    missing = {name for name in RECORDING_NAMES if f"`{name}`" not in doc}
    assert not missing, f"docs/alerting.md does not list: {sorted(missing)}"


# ---------------------------------------------------------------- the thresholds table

COLUMNS = ("alert", "severity", "selector", "condition", "guard", "for")


def thresholds_table() -> list[dict[str, str]]:
    """Rows of the comment table at the top of pipeline-alerts.yml."""
    rows = []
    for line in ALERT_RULES.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# |"):
            continue
        cells = [cell.strip() for cell in line[3:].rstrip().rstrip("|").split("|")]
        if cells[0] == "alert" or set("".join(cells)) <= {"-"}:
            continue
        assert len(cells) == len(COLUMNS), f"malformed table row: {line}"
        rows.append(dict(zip(COLUMNS, cells)))
    return rows


def normalise(expr: str) -> str:
    """PromQL without whitespace, label matchers, ranges and vector-matching modifiers."""
    expr = re.sub(r"\b(on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    return re.sub(r"\s+", "", expr)


def matchers(piece: str) -> set[str]:
    return {re.sub(r"\s+", "", m) for m in re.findall(r'\w+\s*=~?\s*"[^"]*"', piece)}


def check_piece(piece: str, tail: str, expr: str, what: str) -> None:
    """``piece`` (a selector, perhaps inside a call) followed by ``tail`` occurs in ``expr``."""
    pattern = re.escape(normalise(piece)) + r"\)*" + re.escape(normalise(tail))
    assert re.search(pattern, normalise(expr)), f"{what}: `{piece} {tail}` is not in\n{expr}"
    missing = matchers(piece) - matchers(expr)
    assert not missing, f"{what}: matchers {sorted(missing)} are not in\n{expr}"


def test_thresholds_table_matches_the_expressions():
    rows = thresholds_table()
    rules = {(rule["alert"], rule["labels"]["severity"]): rule for rule in alert_rules()}
    assert len(rules) == len(alert_rules()), "two rules share an alert name and severity"
    keys = [(row["alert"], row["severity"]) for row in rows]
    assert sorted(keys) == sorted(rules), "the table and the rules name different alerts"
    for row in rows:
        what = f"{row['alert']} {row['severity']}"
        rule = rules[(row["alert"], row["severity"])]
        assert rule["for"] == row["for"], f"{what}: for is {rule['for']}, the table says {row['for']}"
        check_piece(row["selector"], row["condition"], rule["expr"], what)
        if row["guard"] != "-":
            keyword, _, rest = row["guard"].partition(" ")
            if keyword in {"and", "or", "unless"}:
                assert re.search(rf"\b{keyword}\b", rule["expr"]), f"{what}: no `{keyword}`"
            else:
                keyword, rest = "and", row["guard"]
                assert re.search(r"\band\b", rule["expr"]), f"{what}: the guard is not and-ed"
            comparison = re.search(r"(==|!=|>=|<=|>|<)\s*\S+$", rest)
            selector = rest[:comparison.start()] if comparison else rest
            check_piece(selector, comparison.group(0) if comparison else "", rule["expr"], what)


def test_thresholds_table_catches_a_drifted_threshold():
    """The check above must fail when an expression and its row disagree."""
    rule = next(r for r in alert_rules() if r["alert"] == "SmsFailureRateHigh")
    row = next(r for r in thresholds_table() if r["alert"] == "SmsFailureRateHigh")
    with pytest.raises(AssertionError):
        check_piece(row["selector"], row["condition"], rule["expr"].replace("> 0.05", "> 0.08"), "x")
    with pytest.raises(AssertionError):
        check_piece(row["selector"], row["condition"], rule["expr"].replace('"sms"', '"email"'), "x")


def test_ratio_alerts_require_twenty_sends_in_the_window():
    for rule in alert_rules():
        if ":ratio24h" in rule["expr"]:
            assert re.search(r'increase24h\{[^}]*event="sent"[^}]*\}\s*>=\s*20', rule["expr"]), rule["alert"]
