"""One target down is one page, whatever the number of packs with derived alerts: every
``<Pack>ExporterDown`` mutes the pack symptoms of its target, the packs' ExporterDown alerts about
one target go out as one message, and PipelineExporterDown (the exporter's own rules) mutes them.

Checked on the real Alertmanager with the shipped alertmanager.yml: its API says which alerts are
inhibited and how they are grouped, so nothing here waits for a notification.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.scale.test_alertmanager_ha import write_config
from tests.support import stack
from tests.support.procs import wait_for

pytestmark = pytest.mark.e2e

WHERE = {"job": "desk", "instance": "desk-host:9333", "service": "pipeline"}


def alert(name: str, severity: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, "severity": severity, **WHERE, **labels},
            "annotations": {"summary": name}, "generatorURL": "http://prometheus.example/graph"}


def post(node: stack.Service, *alerts: dict) -> None:
    response = requests.post(f"{node.url}/api/v2/alerts", json=list(alerts), timeout=5)
    assert response.ok, response.text


def inhibited(node: stack.Service, names: set[str]) -> dict[str, bool]:
    """Each of ``names`` -> whether Alertmanager holds it inhibited ({} until it holds them all)."""
    held = {a["labels"]["alertname"]: bool(a["status"]["inhibitedBy"]) for a in node.get("/api/v2/alerts").json()}
    return held if names <= set(held) else {}


def test_every_pack_s_exporter_down_mutes_symptoms_and_goes_out_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/slack")  # a closed port: nothing is sent anywhere
    with stack.alertmanager(tmp_path, config) as node:
        post(node, alert("TicketDeskExporterDown", "critical", pack="ticket desk"),
             alert("QueueExporterDown", "critical", pack="queue"),
             alert("TicketDeskQueryFailing", "warning", pack="ticket desk", query="tickets"))
        names = {"TicketDeskExporterDown", "QueueExporterDown", "TicketDeskQueryFailing"}
        # Inhibition is applied when Alertmanager is asked: poll until the symptom shows as muted.
        state = wait_for(lambda: (s := inhibited(node, names)).get("TicketDeskQueryFailing") and s, timeout=15,
                         what="the symptom muted by a pack's ExporterDown")
        assert state == {"TicketDeskExporterDown": False, "QueueExporterDown": False, "TicketDeskQueryFailing": True}
        # The two packs' ExporterDown: one group per receiver (one page, one email, one Slack
        # message), not one each.
        groups = [g for g in node.get("/api/v2/alerts/groups").json()
                  if any(a["labels"]["alertname"].endswith("ExporterDown") for a in g["alerts"])]
        assert sorted(g["receiver"]["name"] for g in groups) == ["email", "pager", "slack"]
        assert all({a["labels"]["alertname"] for a in g["alerts"]} == {"TicketDeskExporterDown", "QueueExporterDown"}
                   for g in groups)
        # With the exporter's own rules loaded, PipelineExporterDown alone pages.
        post(node, alert("PipelineExporterDown", "critical"))
        every = names | {"PipelineExporterDown"}
        state = wait_for(lambda: (s := inhibited(node, every)).get("QueueExporterDown") and s,
                         timeout=15, what="the packs' ExporterDown muted by PipelineExporterDown")
        assert state == {"TicketDeskExporterDown": True, "QueueExporterDown": True, "TicketDeskQueryFailing": True,
                         "PipelineExporterDown": False}
