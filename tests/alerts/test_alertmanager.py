"""Alertmanager: the config is valid, routes and inhibits as documented, and renders readably."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import requests
import yaml

from tests.alerts.conftest import (ALERTMANAGER_CONFIG, DATA, REPO, TEMPLATES, alert_rules, run)
from tests.support.procs import free_port, running, wait_for

CONFIG = str(ALERTMANAGER_CONFIG.relative_to(REPO))
SECRETS_DIR = "/etc/alertmanager/secrets/"
# The labels that say where a problem is; one notification per (alert, severity, place).
WHERE = {"instance", "channel", "source", "cron_job", "status", "suite"}


def config() -> dict:
    return yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))


def test_amtool_check_config_is_clean(amtool):
    result = run([amtool, "check-config", CONFIG])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 templates" in result.stdout, result.stdout


# ---------------------------------------------------------------- routing

@pytest.mark.parametrize("labels, receivers", [
    (["severity=critical", "alertname=DatabaseIntegrityCheckFailed"], "email,slack"),
    (["severity=critical", "alertname=EmailBounceRateHigh", "channel=email"], "email,slack"),
    (["severity=warning", "alertname=EmailBounceRateHigh", "channel=email"], "slack"),
    (["severity=warning", "alertname=CronJobFailed", "cron_job=scrape"], "slack"),
    (["alertname=SomethingWithoutSeverity"], "slack"),
], ids=["critical", "critical-twin", "warning-twin", "warning", "no-severity"])
def test_routes_reach_the_right_receivers(amtool, labels, receivers):
    result = run([amtool, "config", "routes", "test", f"--config.file={CONFIG}",
                  f"--verify.receivers={receivers}", *labels])
    assert result.returncode == 0, f"{labels}: got {result.stdout.strip()!r}, want {receivers!r}"


def test_routes_test_fails_on_a_wrong_expectation(amtool):
    """The pinning above must be able to fail: a warning must not reach email."""
    result = run([amtool, "config", "routes", "test", f"--config.file={CONFIG}",
                  "--verify.receivers=email,slack", "severity=warning"])
    assert result.returncode != 0


def test_every_rule_severity_is_routed_explicitly():
    severities = {rule["labels"]["severity"] for rule in alert_rules()}
    routed = " ".join(m for route in config()["route"]["routes"] for m in route["matchers"])
    for severity in severities:
        assert severity in routed, f"no route matches severity {severity}"


def test_grouping_keeps_one_message_per_problem():
    route = config()["route"]
    assert {"alertname", "severity"} | WHERE <= set(route["group_by"])
    # Every label an alert keeps to say where (besides job) is grouped on, except `query`.
    for rule in alert_rules():
        by = re.findall(r"by \(([^)]*)\)", rule["expr"])
        for labels in by:
            extra = {l.strip() for l in labels.split(",")} - {"job"}
            assert extra <= set(route["group_by"]), f"{rule['alert']}: {extra}"
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route, f"route.{key} must be chosen explicitly"


def test_every_receiver_sends_resolved_and_uses_the_templates():
    for receiver in config()["receivers"]:
        for kind in ("email_configs", "slack_configs"):
            for entry in receiver.get(kind, []):
                assert entry.get("send_resolved") is True, f"{receiver['name']} {kind}"
                assert "pipeline." in json.dumps(entry), f"{receiver['name']} {kind}: default template"
    email = next(r for r in config()["receivers"] if r["name"] == "email")["email_configs"][0]
    assert email["html"] and email["text"], "email needs an HTML and a plain-text part"


def test_secrets_come_only_from_files():
    doc = config()
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    for forbidden in ("smtp_auth_password:", "smtp_auth_secret:", "slack_api_url:", "api_url:",
                      "hooks.slack.com", "auth_token:", "password:"):
        assert not re.search(rf"^\s*{re.escape(forbidden)}", text, flags=re.MULTILINE) \
            and "hooks.slack.com" not in text, f"inline secret setting {forbidden}"
    assert doc["global"]["smtp_auth_password_file"].startswith(SECRETS_DIR)
    for receiver in doc["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert slack["api_url_file"].startswith(SECRETS_DIR)


def test_critical_inhibits_the_warning_of_the_same_problem():
    rules = config()["inhibit_rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    assert {"alertname", "job"} | WHERE <= set(rule["equal"])


# ---------------------------------------------------------------- templates

def render(amtool: str, text: str, kind: str = "text", data: Path = DATA / "notification-bounce.json") -> str:
    result = run([amtool, "template", "render", f"--template.glob={TEMPLATES}/*.tmpl",
                  f"--template.data={data}", f"--template.type={kind}", f"--template.text={text}"])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_template_the_config_uses_is_defined(amtool):
    used = set(re.findall(r'template "([\w.]+)"', ALERTMANAGER_CONFIG.read_text(encoding="utf-8")))
    assert used >= {"pipeline.slack.title", "pipeline.slack.text", "pipeline.email.html", "pipeline.email.text"}
    for name in sorted(used):
        kind = "html" if name.endswith(".html") else "text"
        assert render(amtool, '{{ template "%s" . }}' % name, kind).strip(), f"{name} renders empty"


def test_slack_message_is_readable(amtool):
    title = render(amtool, '{{ template "pipeline.slack.title" . }}')
    assert title.strip() == "[FIRING:1] EmailBounceRateHigh (critical)"
    assert render(amtool, '{{ template "pipeline.slack.color" . }}').strip() == "danger"
    text = render(amtool, '{{ template "pipeline.slack.text" . }}')
    firing, resolved = text.split(":white_check_mark:")
    assert "*Value:* 12%" in firing and "channel=email instance=exporter:9333" in firing
    assert "Pause email outreach now" in firing
    assert "<https://github.com/333method/pipeline-exporter/blob/main/docs/runbooks.md" \
           "#emailbounceratehigh|Runbook>" in firing
    assert "<http://localhost:3000/d/pipeline-compliance|Dashboard>" in firing
    assert "Resolved at 2026-02-15 09:30 UTC" in resolved and "instance=exporter-b:9333" in resolved
    assert "severity=" not in text and "alertname=" not in text


def test_email_has_html_and_plain_text_parts(amtool):
    subject = render(amtool, '{{ template "pipeline.email.subject" . }}').strip()
    assert subject.startswith("[FIRING:1] EmailBounceRateHigh (critical) Email bounce rate")
    plain = render(amtool, '{{ template "pipeline.email.text" . }}')
    assert "<" not in plain.replace("<http", ""), "the text part must not contain HTML"
    assert "Value:     12%" in plain and "RESOLVED:" in plain
    assert "Runbook:   https://github.com/333method/pipeline-exporter" in plain
    html = render(amtool, '{{ template "pipeline.email.html" . }}', kind="html")
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert '<a href="https://github.com/333method/pipeline-exporter/blob/main/docs/runbooks.md' \
           '#emailbounceratehigh">Runbook</a>' in html
    assert '<a href="http://localhost:3000/d/pipeline-compliance">Dashboard</a>' in html
    assert "<b>12%</b>" in html


# ---------------------------------------------------------------- a real Alertmanager

@pytest.fixture
def alertmanager(alertmanager_binary, tmp_path):
    """The committed config on a loopback port, with secrets and templates in tmp_path."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp_password").write_text("not-a-real-password\n")
    # Nothing listens there: notifications fail quietly in the log, which is not under test.
    (secrets / "slack_api_url").write_text(f"http://127.0.0.1:{free_port()}/slack\n")
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8").replace(SECRETS_DIR, f"{secrets}/")
    (tmp_path / "alertmanager.yml").write_text(text)
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    port = free_port()
    args = [alertmanager_binary, f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address="]
    url = f"http://127.0.0.1:{port}"
    with running(args, tmp_path / "alertmanager.log") as proc:
        try:
            wait_for(lambda: requests.get(f"{url}/-/ready", timeout=1).ok, timeout=30,
                     what="alertmanager to be ready")
        except AssertionError:
            raise AssertionError((tmp_path / "alertmanager.log").read_text()) from None
        yield url
        assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()


def post_alert(url: str, **labels: str) -> None:
    alert = {"labels": {"job": "pipeline-exporter", **labels},
             "annotations": {"summary": "test"}}
    response = requests.post(f"{url}/api/v2/alerts", json=[alert], timeout=5)
    assert response.ok, response.text


def states(url: str) -> dict[tuple[str, str, str], str]:
    """(alertname, severity, instance) -> active / suppressed."""
    alerts = requests.get(f"{url}/api/v2/alerts", timeout=5).json()
    return {(a["labels"]["alertname"], a["labels"]["severity"], a["labels"].get("instance", "")):
            a["status"]["state"] for a in alerts}


@pytest.mark.e2e
def test_a_running_alertmanager_mutes_the_warning_twin_only(alertmanager):
    url = alertmanager
    bounce = dict(alertname="EmailBounceRateHigh", channel="email")
    post_alert(url, severity="critical", instance="a:9333", **bounce)
    post_alert(url, severity="warning", instance="a:9333", **bounce)
    # Same alert on another exporter, and another alert on the same one: not muted.
    post_alert(url, severity="warning", instance="b:9333", **bounce)
    post_alert(url, severity="warning", instance="a:9333", alertname="EmailComplaintRateHigh",
               channel="email")
    expected = {
        ("EmailBounceRateHigh", "critical", "a:9333"): "active",
        ("EmailBounceRateHigh", "warning", "a:9333"): "suppressed",
        ("EmailBounceRateHigh", "warning", "b:9333"): "active",
        ("EmailComplaintRateHigh", "warning", "a:9333"): "active",
    }
    try:
        wait_for(lambda: states(url) == expected, timeout=15,
                 what="the critical alert to mute its warning twin, and only it")
    except AssertionError:
        assert states(url) == expected  # pytest shows which alert is in the wrong state
        raise
