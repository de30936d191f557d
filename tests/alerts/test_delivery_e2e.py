"""Issue 3, end to end: a shipped alert fires unchanged and reaches Slack and email, then resolves.

The real stack on loopback: the exporter on a small demo database (integrity check every 1 s),
Prometheus with the shipped prometheus.yml and rule files (tests/support/stack.py), and
Alertmanager with the SHIPPED alertmanager.yml and templates. Only what must differ on
loopback is changed in Alertmanager's copy (see ``alertmanager_config``). Receivers are real
servers in this process: an aiosmtpd SMTP sink and a Slack-compatible HTTP endpoint.

The path under test: corrupt the SQLite file the exporter reads -> quick_check fails ->
``pipeline_database_integrity_ok`` 0 -> DatabaseIntegrityCheckFailed (critical, ``for: 0m``)
-> Alertmanager routes critical to email and Slack -> restore the file -> both receive the
resolved notification. Exactly one firing and one resolved message per receiver.
"""

from __future__ import annotations

import email
import json
import shutil
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from exporter.demo import build_demo
from tests.alerts.conftest import ALERTMANAGER_CONFIG, RUNBOOKS, TEMPLATES, alert_rules, github_anchors
from tests.support import stack
from tests.support.receivers import SlackReceiver
from tests.support.procs import free_port, require_binary, wait_for

pytestmark = pytest.mark.e2e

ALERT = "DatabaseIntegrityCheckFailed"
SITES = 2000
# Generous deadlines; the whole test normally takes about 15 s.
FIRE_DEADLINE = 30.0
RESOLVE_DEADLINE = 30.0
# Shortened in the test copy only, so that notifications arrive in seconds.
GROUP_WAIT, GROUP_INTERVAL = "1s", "2s"


# ---------------------------------------------------------------- receivers

class SmtpSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd, no TLS, no AUTH) keeping every message parsed."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's naming
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    @contextmanager
    def running(self) -> Iterator["SmtpSink"]:
        from aiosmtpd.controller import Controller

        controller = Controller(self, hostname="127.0.0.1", port=self.port)
        controller.start()
        try:
            yield self
        finally:
            controller.stop()


# ---------------------------------------------------------------- configuration

def alertmanager_config(tmp: Path, smtp_address: str, slack_url: str) -> Path:
    """The shipped alertmanager.yml with ONLY what must differ on loopback changed.

    Routes, receivers, matchers, inhibit rules, grouping labels, repeat intervals and the
    templates are the shipped ones. Changed: the SMTP smarthost (the sink; no STARTTLS on
    loopback), the secret files (written in tmp: the same file settings, other paths), the
    templates glob (absolute, same files), and group_wait / group_interval (30s / 5m shipped)
    shortened so that firing and resolved notifications arrive in seconds.
    smtp_auth_username stays: the sink offers no AUTH, and Alertmanager then skips auth.
    """
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    secrets = tmp / "secrets"
    secrets.mkdir()
    (secrets / "smtp_password").write_text("not-a-real-password\n")
    (secrets / "slack_api_url").write_text(slack_url + "\n")

    glob = config["global"]
    assert glob["smtp_auth_password_file"] and glob["smtp_require_tls"] is True  # shipped values
    glob["smtp_smarthost"] = smtp_address
    glob["smtp_require_tls"] = False
    glob["smtp_auth_password_file"] = str(secrets / "smtp_password")

    assert config["templates"] == ["templates/*.tmpl"]
    config["templates"] = [str(TEMPLATES / "*.tmpl")]

    slack_configs = [s for r in config["receivers"] for s in r.get("slack_configs", [])]
    assert slack_configs, "the shipped config has no Slack receiver"
    for slack in slack_configs:
        slack["api_url_file"] = str(secrets / "slack_api_url")

    config["route"]["group_wait"] = GROUP_WAIT
    config["route"]["group_interval"] = GROUP_INTERVAL
    for route in config["route"].get("routes", []):
        # Child routes inherit both timers; the shipped ones must not override them.
        assert "group_wait" not in route and "group_interval" not in route, route

    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def exporter_config(tmp: Path) -> Path:
    path = tmp / "exporter.yml"
    path.write_text("checks: {integrity_interval: 1s}\n")
    return path


# ---------------------------------------------------------------- the database

def corrupt(db: Path) -> None:
    """Overwrite the SQLite header in place: the next quick_check fails ("not a database")."""
    with open(db, "r+b") as f:
        f.write(b"corrupted by test_delivery_e2e!!" * 3 + b"\xff" * 4)  # the first 100 bytes
        f.flush()


def restore(db: Path, original: Path) -> None:
    """Put the original bytes back in place (the exporter keeps reading the same path)."""
    with open(original, "rb") as src, open(db, "r+b") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate()
        dst.flush()


# ---------------------------------------------------------------- helpers

def value(prom: stack.Service, expr: str) -> float | None:
    result = stack.query(prom, expr)
    return float(result[0]["value"][1]) if result else None


def prom_alerts(prom: stack.Service) -> list[dict[str, Any]]:
    return prom.get("/api/v1/alerts").json()["data"]["alerts"]


def ours(attachment: dict[str, Any]) -> bool:
    return f"] {ALERT} (" in attachment.get("title", "")


def slack_with(sink: SlackReceiver, status: str) -> list[dict[str, Any]]:
    prefix = "[FIRING" if status == "firing" else "[RESOLVED]"
    return [a for a in sink.attachments() if ours(a) and a["title"].startswith(prefix)]


def emails_with(sink: SmtpSink, status: str) -> list[tuple[str, list[str], EmailMessage]]:
    prefix = "[FIRING" if status == "firing" else "[RESOLVED]"
    return [m for m in list(sink.messages) if m[2]["Subject"].startswith(prefix) and f"] {ALERT} (" in m[2]["Subject"]]


def parts(message: EmailMessage) -> dict[str, str]:
    """content type -> decoded text of every leaf part."""
    return {part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()}


def notifications(am: stack.Service) -> dict[str, float]:
    """Alertmanager's own count of notifications sent and failed, per integration (slack, email, ...)."""
    counts: dict[str, float] = {}
    for (name, labels), count in am.samples().items():
        if name in ("alertmanager_notifications_total", "alertmanager_notifications_failed_total"):
            key = dict(labels)["integration"] + (" failed" if "failed" in name else "")
            counts[key] = counts.get(key, 0) + count
    return counts


def logs(*services: stack.Service) -> str:
    return "\n".join(f"--- {s.log.name} ---\n{s.log.read_text(errors='replace')[-2500:]}" for s in services)


# ---------------------------------------------------------------- the test

def test_a_shipped_alert_reaches_slack_and_email_and_resolves(tmp_path, record_property):
    started = time.monotonic()
    require_binary("prometheus")  # before building anything: fails under CI=true, skips locally
    require_binary("prometheus-alertmanager")

    rule = next(r for r in alert_rules() if r["alert"] == ALERT)
    assert rule["for"] == "0m" and rule["labels"]["severity"] == "critical", "the test relies on these"
    summary = rule["annotations"]["summary"]
    runbook = rule["annotations"]["runbook_url"]
    dashboard = rule["annotations"]["dashboard_url"]
    anchor = runbook.split("#", 1)[1]
    assert anchor == ALERT.lower() and anchor in github_anchors(RUNBOOKS.read_text(encoding="utf-8"))
    assert dashboard == "http://localhost:3000/d/pipeline-system"

    demo = tmp_path / "demo"
    db = demo / "db" / "sites.db"
    build_demo(db, sites=SITES, seed=333, now=datetime.now(timezone.utc).replace(microsecond=0), files_dir=demo)
    original = tmp_path / "sites.db.original"
    shutil.copyfile(db, original)
    timings: dict[str, float] = {}
    seen: dict[str, Any] = {}  # printed at the end (pytest -s shows it)

    with ExitStack() as stack_:
        slack = stack_.enter_context(SlackReceiver().running())
        smtp = stack_.enter_context(SmtpSink().running())
        exporter = stack_.enter_context(stack.exporter(
            tmp_path, db, coverage=demo / "coverage" / "coverage-summary.json",
            e2e_report=demo / "test-results" / "e2e-junit.xml", config=exporter_config(tmp_path)))
        am = stack_.enter_context(stack.alertmanager(tmp_path, alertmanager_config(tmp_path, smtp.address, slack.url)))
        prom = stack_.enter_context(stack.prometheus(tmp_path, exporter.address, am.address))

        # 1. Healthy: scraped, the integrity check passed, nothing has fired on the demo data,
        #    and Prometheus knows the Alertmanager.
        try:
            stack.wait_for_scrapes(prom, count=2, timeout=30)
            wait_for(lambda: value(prom, 'pipeline_database_integrity_ok{job="pipeline-exporter"}') == 1,
                     timeout=15, what="a passing integrity check in Prometheus")
            wait_for(lambda: prom.get("/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"],
                     timeout=15, what="Prometheus to discover the Alertmanager")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{logs(exporter, prom)}") from None
        instance = stack.query(prom, 'up{job="pipeline-exporter"}')[0]["metric"]["instance"]
        firing_before = [a for a in prom_alerts(prom) if a["state"] == "firing"]
        assert not firing_before, f"alerts already firing on the demo data: {firing_before}"
        assert not slack.messages and not smtp.messages
        timings["stack ready"] = time.monotonic() - started

        def both_notified(status: str, deadline: float) -> None:
            """Wait for the ``status`` message in Slack and by email; on timeout show what did arrive."""
            try:
                wait_for(lambda: slack_with(slack, status) and emails_with(smtp, status),
                         timeout=deadline, interval=0.2, what=f"the {status} {ALERT} in Slack and by email")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nslack: {slack.messages}\nemails: {len(smtp.messages)}\n"
                                     f"prometheus alerts: {prom_alerts(prom)}\n{logs(exporter, prom, am)}") from None

        # 2. Corrupt the database: one critical alert, to Slack AND email (critical routes to both).
        corrupt(db)
        corrupted_at = time.monotonic()
        both_notified("firing", FIRE_DEADLINE)
        timings["corrupt -> both notified"] = time.monotonic() - corrupted_at
        assert value(prom, f'ALERTS{{alertname="{ALERT}", alertstate="firing"}}') == 1

        # Slack: the shipped template's title, colour, links and text.
        (fired,) = slack_with(slack, "firing")
        seen["slack firing"] = fired
        assert fired["title"] == f"[FIRING:1] {ALERT} (critical)"
        assert fired["color"] == "danger"
        assert fired["title_link"] == dashboard
        assert fired["fallback"] == fired["title"]
        text = fired["text"]
        assert f":rotating_light: *{summary}*" in text
        assert "*Severity:* critical" in text
        assert f"*Where:* instance={instance}" in text
        assert "SQLite quick_check" in text  # the description
        assert f"<{runbook}|Runbook>" in text and f"<{dashboard}|Dashboard>" in text
        assert "|Prometheus>" in text and "*Since:*" in text

        # Email: to the on-call address, subject with the summary, both parts.
        mail_from, rcpt_tos, message = emails_with(smtp, "firing")[0]
        shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
        to = next(r["email_configs"][0]["to"] for r in shipped["receivers"] if r["name"] == "email")
        assert rcpt_tos == [to] and message["To"] == to
        assert mail_from in shipped["global"]["smtp_from"]
        assert message["Subject"] == f"[FIRING:1] {ALERT} (critical) {summary}"
        body = parts(message)
        seen["email firing"] = {"subject": message["Subject"], "text/plain": body.get("text/plain")}
        assert message.get_content_type() == "multipart/alternative"
        assert set(body) == {"text/plain", "text/html"}, set(body)
        plain, html = body["text/plain"], body["text/html"]
        assert plain.startswith(f"[FIRING:1] {ALERT} (critical)")
        assert f"FIRING: {summary}" in plain
        assert "  Severity:  critical" in plain
        assert f"  Where:     instance={instance}" in plain
        assert f"  Runbook:   {runbook}" in plain and f"  Dashboard: {dashboard}" in plain
        assert "What to do: The latest integrity check" in plain
        assert f"FIRING: {summary}" in html and f'<a href="{runbook}">Runbook</a>' in html
        assert f'<a href="{dashboard}">Dashboard</a>' in html and "#c62828" in html  # critical red

        # 3. Restore the file: the next check passes and both receivers get the resolution.
        restore(db, original)
        restored_at = time.monotonic()
        both_notified("resolved", RESOLVE_DEADLINE)
        timings["restore -> both resolved"] = time.monotonic() - restored_at
        assert value(prom, 'pipeline_database_integrity_ok{job="pipeline-exporter"}') == 1

        (resolved,) = slack_with(slack, "resolved")
        seen["slack resolved"] = resolved
        assert resolved["title"] == f"[RESOLVED] {ALERT} (critical)"
        assert resolved["color"] == "good"
        assert f":white_check_mark: *{summary}*" in resolved["text"]
        assert "_Resolved at " in resolved["text"] and f"<{runbook}|Runbook>" in resolved["text"]
        _, _, resolved_mail = emails_with(smtp, "resolved")[0]
        assert resolved_mail["Subject"] == f"[RESOLVED] {ALERT} (critical) {summary}"
        resolved_parts = parts(resolved_mail)
        assert set(resolved_parts) == {"text/plain", "text/html"}
        assert f"RESOLVED: {summary}" in resolved_parts["text/plain"]
        assert "  Resolved:  " in resolved_parts["text/plain"]
        seen["email resolved"] = {"subject": resolved_mail["Subject"], "text/plain": resolved_parts["text/plain"]}

        # 4. No duplicates and nothing unrelated: Alertmanager's own counters say it sent two
        #    notifications per integration, none failed, and the receivers hold exactly those
        #    two, both about this alert: one firing and one resolved per receiver.
        expected = {"slack": 2, "email": 2}
        sent = wait_for(lambda: (n := notifications(am)) and all(n.get(k) == v for k, v in expected.items()) and n,
                        timeout=RESOLVE_DEADLINE, what=f"Alertmanager counting {expected} notifications")
        assert sent.get("slack failed", 0) == 0 and sent.get("email failed", 0) == 0, sent
        titles = [a.get("title") for a in slack.attachments()]
        subjects = [m[2]["Subject"] for m in smtp.messages]
        assert len(slack.messages) == 2 and all(ours(a) for a in slack.attachments()), titles
        assert len(slack_with(slack, "firing")) == 1 and len(slack_with(slack, "resolved")) == 1, titles
        assert len(smtp.messages) == 2 and len(emails_with(smtp, "firing")) == 1 \
            and len(emails_with(smtp, "resolved")) == 1, subjects
        assert {m["path"] for m in slack.messages} == {"/services/T000/B000/XXXX"}
        still_firing = [a["labels"]["alertname"] for a in prom_alerts(prom) if a["state"] == "firing"]
        assert not still_firing, still_firing
        pending = sorted({a["labels"]["alertname"] for a in prom_alerts(prom) if a["state"] == "pending"})

    # Timings are reported (pytest -s, and the junit XML's properties), never asserted on.
    timings["total"] = time.monotonic() - started
    for name, seconds in timings.items():
        record_property(f"seconds: {name}", round(seconds, 1))
    print("\n" + json.dumps({"timings (s)": {k: round(v, 1) for k, v in timings.items()},
                             "pending, not firing, on the demo data": pending, **seen}, indent=2))
