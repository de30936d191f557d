"""Alertmanager: the config is valid, routes and inhibits as documented, and renders readably.

Notifications must work from a phone: a dashboard link with the alert's instance and the hour
around it, a silence link, the runbook from the configured base, and resolved messages that say
the value is back."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import requests
import yaml

from pipeline_exporter.mixin import DEFAULT
from tests.alerts.conftest import ALERTMANAGER_CONFIG, DATA, REPO, TEMPLATES, alert_rules, run
from tests.support.procs import free_port, running, wait_for
from tests.support.receivers import SlackReceiver

CONFIG = str(ALERTMANAGER_CONFIG.relative_to(REPO))
SECRETS_DIR = "/etc/alertmanager/secrets/"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"  # a made-up PagerDuty integration key
# The labels that say where a problem is; one notification per (alert, severity, place).
WHERE = {"instance", "channel", "source", "cron_job", "status", "suite", "provider", "path",
         "integration", "rule_group"}


def config() -> dict:
    return yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))


def test_amtool_check_config_is_clean(amtool):
    result = run([amtool, "check-config", CONFIG])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 templates" in result.stdout, result.stdout


# ---------------------------------------------------------------- routing

@pytest.mark.parametrize("labels, receivers", [
    (["severity=critical", "alertname=DatabaseIntegrityCheckFailed"], "pager,email,slack"),
    (["severity=critical", "alertname=EmailBounceRateHigh", "channel=email"], "pager,email,slack"),
    (["severity=critical", "alertname=PipelineExporterDown", "instance=a:9333"], "pager,email,slack"),
    (["severity=warning", "alertname=EmailBounceRateHigh", "channel=email"], "slack"),
    (["severity=warning", "alertname=CronJobFailed", "cron_job=scrape"], "slack"),
    (["severity=none", "alertname=Watchdog", "service=pipeline"], "watchdog"),
    (["severity=warning", "alertname=CodeCoverageLow", "service=pipeline"], "slack"),
    (["severity=warning", "alertname=E2ETestsFailing", "suite=Email"], "slack"),
    (["alertname=SomethingWithoutSeverity"], "slack"),
], ids=["critical", "critical-twin", "exporter-down", "warning-twin", "warning", "watchdog", "coverage",
        "e2e", "no-severity"])
def test_routes_reach_the_right_receivers(amtool, labels, receivers):
    result = run([amtool, "config", "routes", "test", f"--config.file={CONFIG}",
                  f"--verify.receivers={receivers}", *labels])
    assert result.returncode == 0, f"{labels}: got {result.stdout.strip()!r}, want {receivers!r}"


def test_routes_test_fails_on_a_wrong_expectation(amtool):
    """The pinning above must be able to fail: a warning must not reach email or the pager, and
    critical must not skip the pager."""
    for receivers, labels in (("email,slack", "severity=warning"), ("pager,email,slack", "severity=warning"),
                              ("email,slack", "severity=critical")):
        result = run([amtool, "config", "routes", "test", f"--config.file={CONFIG}",
                      f"--verify.receivers={receivers}", labels])
        assert result.returncode != 0, (receivers, labels)


def test_every_rule_severity_is_routed_explicitly():
    severities = {rule["labels"]["severity"] for rule in alert_rules()}
    assert severities == {"critical", "warning", "none"}
    routed = " ".join(m for route in config()["route"]["routes"] for m in route["matchers"])
    for severity in severities:
        assert severity in routed, f"no route matches severity {severity}"


def route_for(matcher: str) -> dict:
    (route,) = [r for r in config()["route"]["routes"] if matcher in r["matchers"]]
    return route


def test_the_watchdog_goes_alone_and_often_to_the_dead_mans_switch():
    route = route_for('severity="none"')
    assert route["receiver"] == "watchdog" and "continue" not in route
    assert route["group_by"] == ["alertname"] and route["group_wait"] == "0s"
    assert route["repeat_interval"] == "5m"
    first = config()["route"]["routes"][0]
    assert first["matchers"] == ['severity="none"'], "first, so no other route sees the Watchdog"
    (receiver,) = [r for r in config()["receivers"] if r["name"] == "watchdog"]
    (hook,) = receiver["webhook_configs"]
    assert hook["send_resolved"] is False and hook["url"].startswith("http")


def test_coverage_and_e2e_go_to_a_low_noise_route():
    route = route_for('alertname=~"CodeCoverageLow|E2ETestsFailing"')
    assert route["receiver"] == "slack"
    assert route["repeat_interval"] == "96h" and route["group_interval"] == "1h"
    assert set(route["group_by"]) == {"alertname", "instance"}
    names = {rule["alert"] for rule in alert_rules()}
    assert {"CodeCoverageLow", "E2ETestsFailing"} <= names
    assert all(rule["labels"]["severity"] == "warning" for rule in alert_rules()
               if rule["alert"] in {"CodeCoverageLow", "E2ETestsFailing"}), "never critical: no email"


def test_grouping_keeps_one_message_per_problem():
    route = config()["route"]
    assert {"alertname", "severity"} | WHERE <= set(route["group_by"])
    # Every label an alert keeps to say where (besides job) is grouped on, except `query`.
    for rule in alert_rules():
        by = re.findall(r"by \(([^)]*)\)", rule["expr"])
        for labels in by:
            extra = {label.strip() for label in labels.split(",")} - {"job"}
            assert extra <= set(route["group_by"]), f"{rule['alert']}: {extra}"
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route, f"route.{key} must be chosen explicitly"


def test_every_receiver_for_people_sends_resolved_and_uses_the_templates():
    for receiver in config()["receivers"]:
        for kind in ("email_configs", "slack_configs"):
            for entry in receiver.get(kind, []):
                assert entry.get("send_resolved") is True, f"{receiver['name']} {kind}"
                assert "pipeline." in json.dumps(entry), f"{receiver['name']} {kind}: default template"
    email = next(r for r in config()["receivers"] if r["name"] == "email")["email_configs"][0]
    assert email["html"] and email["text"], "email needs an HTML and a plain-text part"
    (pager,) = next(r for r in config()["receivers"] if r["name"] == "pager")["pagerduty_configs"]
    assert pager["send_resolved"] is True and "pipeline.pager.description" in pager["description"]
    assert [link["text"] for link in pager["links"]] == ["Runbook", "Dashboard"]


def test_secrets_come_only_from_files():
    doc = config()
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    for forbidden in ("smtp_auth_password:", "smtp_auth_secret:", "slack_api_url:", "api_url:",
                      "hooks.slack.com", "auth_token:", "password:", "routing_key:", "service_key:",
                      "api_key:"):
        assert not re.search(rf"^\s*{re.escape(forbidden)}", text, flags=re.MULTILINE) \
            and "hooks.slack.com" not in text, f"inline secret setting {forbidden}"
    assert doc["global"]["smtp_auth_password_file"].startswith(SECRETS_DIR)
    for receiver in doc["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert slack["api_url_file"].startswith(SECRETS_DIR)
        for pager in receiver.get("pagerduty_configs", []):
            assert pager["routing_key_file"].startswith(SECRETS_DIR)
    assert any(r.get("pagerduty_configs") for r in doc["receivers"]), "no pager receiver"


def test_critical_inhibits_the_warning_of_the_same_problem():
    rules = config()["inhibit_rules"]
    assert len(rules) == 4
    rule = rules[0]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    assert {"alertname", "job", "query"} | WHERE <= set(rule["equal"])


def test_an_exporter_that_is_down_mutes_its_symptoms():
    by_instance, whole_job, packs = config()["inhibit_rules"][1:]
    for rule in (by_instance, whole_job):
        # Any pack's derived <Pack>ExporterDown too (tests/alerts/test_exporter_down_inhibition.py).
        assert 'alertname=~".+ExporterDown"' in rule["source_matchers"]
        assert rule["target_matchers"] == ['service="pipeline"', 'alertname!~".+ExporterDown|Watchdog"']
    assert by_instance["equal"] == ["job", "instance"]
    assert 'instance=""' in whole_job["source_matchers"] and whole_job["equal"] == ["job"]
    assert packs["source_matchers"] == ['alertname="PipelineExporterDown"'] and packs["equal"] == ["job", "instance"]


# ---------------------------------------------------------------- templates

def render(amtool: str, text: str, kind: str = "text", data: Path = DATA / "notification-bounce.json",
           templates: Path = TEMPLATES) -> str:
    result = run([amtool, "template", "render", f"--template.glob={templates}/*.tmpl",
                  f"--template.data={data}", f"--template.type={kind}", f"--template.text={text}"])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_template_the_config_uses_is_defined(amtool):
    used = set(re.findall(r'template "([\w.]+)"', ALERTMANAGER_CONFIG.read_text(encoding="utf-8")))
    assert used >= {"pipeline.slack.title", "pipeline.slack.text", "pipeline.email.html", "pipeline.email.text"}
    for name in sorted(used):
        kind = "html" if name.endswith(".html") else "text"
        assert render(amtool, f'{{{{ template "{name}" . }}}}', kind).strip(), f"{name} renders empty"


RUNBOOK = DEFAULT.runbook("EmailBounceRateHigh")
# The rules' dashboard_url is a path; no Grafana address is set in the shipped grafana.tmpl.
DASHBOARD = "/d/pipeline-compliance?orgId=1&var-instance="
HINT = " (a path on your Grafana: set Grafana's address once in alertmanager/templates/grafana.tmpl)"
GENERATOR = "http://prometheus:9090/graph?g0.expr=bounce"
# startsAt 2026-02-15T10:00Z minus one hour, in milliseconds; the resolved one started at 08:00
# and ended at 09:30, so its range is 07:00 to 10:30.
FIRING_RANGE = "&from=1771146000000&to=now"
RESOLVED_RANGE = "&from=1771138800000&to=1771151400000"
SILENCE = ("http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22EmailBounceRateHigh%22"
           "%2Cchannel%3D%22email%22%2Cjob%3D%22pipeline-exporter%22%2Cservice%3D%22pipeline%22"
           "%2Cseverity%3D%22critical%22%7D")


def test_slack_message_is_readable(amtool):
    title = render(amtool, '{{ template "pipeline.slack.title" . }}')
    assert title.strip() == "[FIRING:1] EmailBounceRateHigh (critical)"
    assert render(amtool, '{{ template "pipeline.slack.color" . }}').strip() == "danger"
    text = render(amtool, '{{ template "pipeline.slack.text" . }}')
    firing, resolved = text.split(":white_check_mark:")
    assert "*Value:* 12%" in firing and "channel=email instance=exporter:9333" in firing
    assert "Pause email outreach now" in firing
    assert f"<{RUNBOOK}|Runbook>" in firing
    assert f"<{DASHBOARD}exporter:9333{FIRING_RANGE}|Dashboard>{HINT}" in firing
    assert "Resolved at 2026-02-15 09:30 UTC" in resolved and "instance=exporter-b:9333" in resolved
    assert "severity=" not in text and "alertname=" not in text and "service=" not in text


def test_the_dashboard_link_carries_the_instance_and_the_hour_around_the_alert(amtool):
    link = render(amtool, '{{ template "pipeline.dashboard_link" (index .Alerts 0) }}').strip()
    assert link == f"{DASHBOARD}exporter:9333{FIRING_RANGE}"
    text = render(amtool, '{{ template "pipeline.slack.text" . }}')
    assert f"<{DASHBOARD}exporter-b:9333{RESOLVED_RANGE}|Dashboard>" in text


def grafana_set(tmp_path: Path, address: str) -> Path:
    """The shipped templates with Grafana's address set where a user sets it, once."""
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    grafana = tmp_path / "templates" / "grafana.tmpl"
    text = grafana.read_text(encoding="utf-8")
    assert text.count('$grafana := ""') == 1, "grafana.tmpl must define the address on one line"
    grafana.write_text(text.replace('$grafana := ""', f'$grafana := "{address}"'), encoding="utf-8")
    return tmp_path / "templates"


def test_without_a_grafana_address_links_are_paths_with_a_hint(amtool):
    """No localhost anywhere: the path and where to set the address; where a link must be
    absolute (Slack's title, PagerDuty's links) the alert's Prometheus query instead."""
    for name in ("pipeline.slack.text", "pipeline.email.text", "pipeline.email.html"):
        text = render(amtool, f'{{{{ template "{name}" . }}}}', "html" if name.endswith("html") else "text")
        assert "localhost" not in text and text.count("alertmanager/templates/grafana.tmpl") == 2, name
    assert render(amtool, '{{ template "pipeline.slack.title_link" . }}').strip() == GENERATOR
    assert render(amtool, '{{ template "pipeline.pager.dashboard" . }}').strip() == GENERATOR


def test_one_grafana_address_set_in_grafana_tmpl_completes_every_link(amtool, tmp_path):
    templates = grafana_set(tmp_path, "https://grafana.example.com")
    url = f"https://grafana.example.com{DASHBOARD}exporter:9333{FIRING_RANGE}"
    assert render(amtool, '{{ template "pipeline.slack.title_link" . }}', templates=templates).strip() == url
    assert render(amtool, '{{ template "pipeline.pager.dashboard" . }}', templates=templates).strip() == url
    text = render(amtool, '{{ template "pipeline.slack.text" . }}', templates=templates)
    assert f"<{url}|Dashboard>  |" in text and "grafana.tmpl" not in text
    assert f"<https://grafana.example.com{DASHBOARD}exporter-b:9333{RESOLVED_RANGE}|Dashboard>" in text
    plain = render(amtool, '{{ template "pipeline.email.text" . }}', templates=templates)
    assert f"Dashboard: {url}\n" in plain


def test_a_rule_rendered_with_a_grafana_url_keeps_its_own(amtool, tmp_path):
    """`mixin --grafana-url URL` writes full URLs: used as they are, with no hint, whatever grafana.tmpl says."""
    data = json.loads((DATA / "notification-bounce.json").read_text(encoding="utf-8"))
    for alert in data["alerts"]:
        alert["annotations"]["dashboard_url"] = "https://grafana.other.example" + alert["annotations"]["dashboard_url"]
    (tmp_path / "data.json").write_text(json.dumps(data), encoding="utf-8")
    for templates in (TEMPLATES, grafana_set(tmp_path, "https://grafana.example.com")):
        text = render(amtool, '{{ template "pipeline.slack.text" . }}', data=tmp_path / "data.json",
                      templates=templates)
        assert f"<https://grafana.other.example{DASHBOARD}exporter:9333{FIRING_RANGE}|Dashboard>  |" in text
        assert "grafana.tmpl" not in text and "grafana.example.com" not in text


def test_notifications_carry_a_silence_link(amtool):
    assert f"<{SILENCE}|Silence these alerts>" in render(amtool, '{{ template "pipeline.slack.text" . }}')
    assert f"Silence:   {SILENCE}" in render(amtool, '{{ template "pipeline.email.text" . }}')
    html = render(amtool, '{{ template "pipeline.email.html" . }}', kind="html")
    assert f'<a href="{SILENCE}">Silence these alerts</a>' in html


def test_a_resolved_message_says_the_value_is_back(amtool):
    """Not the firing summary ("above 10 %"): the alert's `resolved` sentence, and the last value."""
    text = render(amtool, '{{ template "pipeline.slack.text" . }}')
    resolved = text.split(":white_check_mark:")[1]
    assert resolved.lstrip().startswith("*Email bounce rate is back under 10 %")
    assert "above 10 %" not in resolved.split("\n")[0]
    assert "*Last value while firing:* 11%" in resolved
    plain = render(amtool, '{{ template "pipeline.email.text" . }}')
    assert "RESOLVED: Email bounce rate is back under 10 %" in plain
    assert "Last value: 11%" in plain


def test_email_has_html_and_plain_text_parts(amtool):
    subject = render(amtool, '{{ template "pipeline.email.subject" . }}').strip()
    assert subject.startswith("[FIRING:1] EmailBounceRateHigh (critical) Email bounce rate")
    plain = render(amtool, '{{ template "pipeline.email.text" . }}')
    assert "<" not in plain.replace("<http", ""), "the text part must not contain HTML"
    assert "Value:     12%" in plain and "RESOLVED:" in plain
    assert f"Runbook:   {RUNBOOK}" in plain and f"Dashboard: {DASHBOARD}exporter:9333{FIRING_RANGE}{HINT}" in plain
    html = render(amtool, '{{ template "pipeline.email.html" . }}', kind="html")
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert f'<a href="{RUNBOOK}">Runbook</a>' in html
    # The whole link is one string in the HTML template: every & is escaped (valid HTML).
    assert '<a href="/d/pipeline-compliance?orgId=1&amp;var-instance=exporter:9333' \
           f'{FIRING_RANGE.replace("&", "&amp;")}">Dashboard</a>{HINT}' in html
    assert "<b>12%</b>" in html


# ---------------------------------------------------------------- a real Alertmanager

@pytest.fixture
def pagerduty():
    """A PagerDuty Events API v2 stand-in on loopback: records each POSTed event."""
    with SlackReceiver().running() as sink:
        yield sink


@pytest.fixture
def alertmanager(alertmanager_binary, tmp_path, pagerduty):
    """The committed config on a loopback port, with secrets and templates in tmp_path, the pager
    receiver's Events API at ``pagerduty`` and the root's group_wait at 1 s."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "smtp_password").write_text("not-a-real-password\n")
    # Nothing listens there: notifications fail quietly in the log, which is not under test.
    (secrets / "slack_api_url").write_text(f"http://127.0.0.1:{free_port()}/slack\n")
    (secrets / "pagerduty_routing_key").write_text(f"{ROUTING_KEY}\n")
    text = ALERTMANAGER_CONFIG.read_text(encoding="utf-8").replace(SECRETS_DIR, f"{secrets}/")
    assert text.count("      - routing_key_file:") == 1 and text.count("  group_wait: 30s") == 1
    text = text.replace("      - routing_key_file:", f"      - url: {pagerduty.url}\n        routing_key_file:")
    text = text.replace("  group_wait: 30s", "  group_wait: 1s")
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


def post_alert(url: str, annotations: dict[str, str] | None = None, **labels: str) -> None:
    alert = {"labels": {"job": "pipeline-exporter", "service": "pipeline", **labels},
             "annotations": {"summary": "test", **(annotations or {})},
             "generatorURL": "http://prometheus.example/graph?g0.expr=test"}
    response = requests.post(f"{url}/api/v2/alerts", json=[alert], timeout=5)
    assert response.ok, response.text


def states(url: str) -> dict[tuple[str, str, str], str]:
    """(alertname, severity, instance) -> active / suppressed."""
    alerts = requests.get(f"{url}/api/v2/alerts", timeout=5).json()
    return {(a["labels"]["alertname"], a["labels"].get("severity", ""), a["labels"].get("instance", "")):
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


@pytest.mark.e2e
def test_a_running_alertmanager_mutes_the_symptoms_of_an_exporter_that_is_down(alertmanager):
    """Same job and instance muted; another exporter, the Watchdog and the down alert itself not."""
    url = alertmanager
    post_alert(url, alertname="PipelineExporterDown", severity="critical", instance="a:9333")
    post_alert(url, alertname="SitesStuck", severity="warning", instance="a:9333", status="scraped")
    post_alert(url, alertname="PipelineExporterQueryFailing", severity="warning", instance="a:9333",
               query="sites")
    post_alert(url, alertname="SitesStuck", severity="warning", instance="b:9333", status="scraped")
    post_alert(url, alertname="Watchdog", severity="none", job="")
    expected = {
        ("PipelineExporterDown", "critical", "a:9333"): "active",
        ("SitesStuck", "warning", "a:9333"): "suppressed",
        ("PipelineExporterQueryFailing", "warning", "a:9333"): "suppressed",
        ("SitesStuck", "warning", "b:9333"): "active",
        ("Watchdog", "none", ""): "active",
    }
    try:
        wait_for(lambda: states(url) == expected, timeout=15,
                 what="PipelineExporterDown to mute its own exporter's symptoms only")
    except AssertionError:
        assert states(url) == expected
        raise


@pytest.mark.e2e
def test_a_missing_target_mutes_the_whole_jobs_symptoms(alertmanager):
    """absent(up) has no instance: every pipeline alert of the job is a symptom."""
    url = alertmanager
    post_alert(url, alertname="PipelineExporterDown", severity="critical")
    post_alert(url, alertname="SitesStuck", severity="warning", instance="a:9333", status="scraped")
    post_alert(url, alertname="SitesStuck", severity="warning", instance="b:9333", status="scraped")
    expected = {
        ("PipelineExporterDown", "critical", ""): "active",
        ("SitesStuck", "warning", "a:9333"): "suppressed",
        ("SitesStuck", "warning", "b:9333"): "suppressed",
    }
    try:
        wait_for(lambda: states(url) == expected, timeout=15, what="the job's symptoms to be muted")
    except AssertionError:
        assert states(url) == expected
        raise


@pytest.mark.e2e
def test_a_critical_alert_pages_through_the_events_api_with_the_key_from_its_file(alertmanager, pagerduty):
    """Critical -> an Events API v2 trigger with the routing key read from the secrets file, the
    headline as title, the runbook and dashboard as links; a warning never pages."""
    url = alertmanager
    links = {"runbook_url": DEFAULT.runbook("DatabaseIntegrityCheckFailed"),
             "dashboard_url": "/d/pipeline-system?orgId=1&var-instance=a:9333"}
    post_alert(url, links, alertname="DatabaseIntegrityCheckFailed", severity="critical", instance="a:9333")
    post_alert(url, alertname="CronJobFailed", severity="warning", instance="a:9333", cron_job="scrape")
    wait_for(lambda: pagerduty.messages, timeout=30, what="a PagerDuty event")
    (event,) = [m["json"] for m in pagerduty.messages]
    assert event["routing_key"] == ROUTING_KEY and event["event_action"] == "trigger"
    assert event["payload"]["summary"].startswith("[FIRING:1] DatabaseIntegrityCheckFailed (critical)")
    assert event["payload"]["severity"] == "critical"
    assert [link["text"] for link in event["links"]] == ["Runbook", "Dashboard"]
    assert event["links"][0]["href"] == links["runbook_url"]
    # No Grafana address in the shipped grafana.tmpl: PagerDuty takes absolute links only, so the
    # alert's Prometheus query stands in for the dashboard.
    assert event["links"][1]["href"] == "http://prometheus.example/graph?g0.expr=test"
    assert "FIRING: test" in event["payload"]["custom_details"]["alerts"]  # the plain-text message
    assert "CronJobFailed" not in json.dumps([m["json"] for m in pagerduty.messages])
