"""Alertmanager high availability: two clustered nodes deliver ONE notification per alert.

Two real Alertmanagers gossip on loopback (each with the other as --cluster.peer) and run the
shipped alertmanager.yml (templates, routes, Slack receiver) with short timings; its Slack
webhook points at a local HTTP server that records every POST. The alert is posted to both
nodes' /api/v2/alerts exactly as Prometheus does when it lists both (prometheus/examples/
alertmanager-ha.yml). Proves: both nodes hold the alert, exactly one Slack message arrives and
no second one follows for more than a group interval, and the node that stayed quiet counts
the notification as deduplicated, not failed. The control runs two nodes WITHOUT clustering
at the same time and must receive two messages, so the test can tell the difference.

Reliable flags (tests/support/stack.py alertmanager_cluster): --cluster.peer-timeout=1s (the
second node waits this long before sending, so the first node's notification-log entry can
arrive over gossip first; it must stay below group_interval, 5s here),
--cluster.gossip-interval=100ms, --cluster.pushpull-interval=1s, and waiting until both nodes
report a settled ("ready") cluster of two before posting.
"""

from __future__ import annotations

import re
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
import yaml

from tests.support import stack
from tests.support.paths import REPO
from tests.support.procs import wait_for
from tests.support.receivers import SlackReceiver

pytestmark = pytest.mark.e2e

SECRETS_DIR = "/etc/alertmanager/secrets/"
GROUP_WAIT, GROUP_INTERVAL = "1s", "5s"
PEER_TIMEOUT = "1s"
ALERT = "ScaleTestHaDedup"
# After the first message, watch this long for a duplicate: longer than a group interval plus
# the second node's peer-timeout wait, so a node that missed the gossip would have sent by then.
WATCH = 5 + 1 + 2


def write_config(tmp: Path, slack_url: str) -> Path:
    """The shipped alertmanager.yml with secrets in tmp, Slack at ``slack_url``, PagerDuty on a
    closed port and short timings."""
    secrets = tmp / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "smtp_password").write_text("not-a-real-password\n")
    (secrets / "slack_api_url").write_text(slack_url + "\n")
    (secrets / "pagerduty_routing_key").write_text("R0UT1NGKEY0000000000000000000000\n")
    doc = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
                         .replace(SECRETS_DIR, f"{secrets}/"))
    for receiver in doc["receivers"]:  # the pager on a closed loopback port, never the internet
        for pager in receiver.get("pagerduty_configs", []):
            pager["url"] = "http://127.0.0.1:9/v2/enqueue"
    doc["route"].update(group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL, repeat_interval="1h")
    shutil.copytree(REPO / "alertmanager" / "templates", tmp / "templates")
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def post_alert(nodes: list[stack.Service]) -> None:
    """What Prometheus sends to every Alertmanager it lists (a warning goes to Slack only)."""
    alert = {"labels": {"alertname": ALERT, "severity": "warning", "job": "pipeline-exporter",
                        "instance": "outreach-uk"},
             "annotations": {"summary": "HA dedup test", "description": "one message, not two"},
             "generatorURL": "http://prometheus.example/graph"}
    for node in nodes:
        response = requests.post(f"{node.url}/api/v2/alerts", json=[alert], timeout=5)
        assert response.ok, response.text


def slack_notifications(node: stack.Service) -> dict[str, float]:
    """alertmanager_notifications_total / _failed_total for Slack on one node."""
    out = {}
    for line in node.get("/metrics").text.splitlines():
        match = re.match(r'(alertmanager_notifications(?:_failed)?_total)\{[^}]*integration="slack"[^}]*\} (\S+)', line)
        if match:
            out[match.group(1)] = out.get(match.group(1), 0) + float(match.group(2))
    return out


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """Start the HA pair and the unclustered control pair, post the alert to all four, and
    record what each Slack stand-in receives until WATCH seconds after the HA pair's first."""
    tmp = tmp_path_factory.mktemp("am-ha")
    with ExitStack() as stack_:
        slack_ha = SlackReceiver().start()
        stack_.callback(slack_ha.stop)
        slack_control = SlackReceiver().start()
        stack_.callback(slack_control.stop)
        ha = stack_.enter_context(stack.alertmanager_cluster(
            tmp / "ha", write_config(tmp / "ha", slack_ha.url), nodes=2, peer_timeout=PEER_TIMEOUT,
            gossip_interval="100ms", pushpull_interval="1s"))
        control_config = write_config(tmp / "control", slack_control.url)
        control = []
        for index in range(2):
            home = tmp / "control" / f"node-{index}"
            home.mkdir()
            control.append(stack_.enter_context(stack.alertmanager(home, control_config)))
        posted = time.monotonic()
        post_alert(ha)
        post_alert(control)
        # Both nodes hold the alert: the cluster does not forward alerts, Prometheus sends to each.
        for node in ha:
            wait_for(lambda: any(a["labels"]["alertname"] == ALERT for a in node.get("/api/v2/alerts").json()),
                     timeout=10, what=f"the alert on {node.address}")
        first = wait_for(lambda: slack_ha.about(ALERT), timeout=20, interval=0.1,
                         what="the first Slack message from the HA pair")[0]["at"]
        wait_for(lambda: len(slack_control.about(ALERT)) >= 2, timeout=20, interval=0.1,
                 what="two Slack messages from the unclustered control pair")
        time.sleep(max(0.0, first + WATCH - time.monotonic()))
        yield {"ha": slack_ha.about(ALERT), "control": slack_control.about(ALERT), "posted": posted,
               "counters": [slack_notifications(node) for node in ha], "nodes": ha}


def test_the_cluster_delivers_exactly_one_notification(delivered):
    messages = delivered["ha"]
    assert len(messages) == 1, (
        f"{len(messages)} Slack messages for one alert from the HA pair, at "
        f"{[round(m['at'] - delivered['posted'], 2) for m in messages]} s after posting")
    # It is the shipped Slack template, firing, for the alert posted.
    text = str(messages[0]["json"])
    assert f"[FIRING:1] {ALERT} (warning)" in text and "instance=outreach-uk" in text, text[:500]


def test_one_node_sent_and_the_other_deduplicated(delivered):
    counters = delivered["counters"]
    sent = sorted(c.get("alertmanager_notifications_total", 0) for c in counters)
    assert sent == [0, 1], f"Slack notifications per node: {counters}"
    assert all(c.get("alertmanager_notifications_failed_total", 0) == 0 for c in counters), counters


def test_the_nodes_share_one_cluster(delivered):
    for node in delivered["nodes"]:
        cluster = node.get("/api/v2/status").json()["cluster"]
        assert cluster["status"] == "ready" and len(cluster["peers"]) == 2, cluster


def test_control_without_clustering_sends_twice(delivered):
    """Without gossip each node notifies on its own: what the cluster prevents."""
    assert len(delivered["control"]) == 2, len(delivered["control"])
