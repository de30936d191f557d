"""A user's own pack, end to end, as README.md's "Your own pack" tells it: a pack file written
outside the repository, with no dashboard and no alert section, gets from `pipeline-exporter mixin
--pack PATH --job JOB` a dashboard showing every metric of the pack whose every query returns data
from a real Prometheus scraping the exporter under that job, and rules promtool accepts, one of
whose derived alerts fires in a promtool unit test."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_exporter.metricnames import sample_names
from pipeline_exporter.packloader import load_pack
from tests.dashboards.conftest import LABEL_VALUES, panels_of, substitute
from tests.support import stack
from tests.support.paths import REPO
from tests.support.procs import require_binary, wait_for

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "examples" / "ticket-desk"
JOB = "desk-job"  # the user's own scrape job name, not the default
SLUG = "ticket-desk"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture
def own(tmp_path: Path) -> dict[str, Any]:
    """The README's steps in a folder of the user's: the schema and rows, the pack, `mixin`."""
    home = tmp_path / "my-desk"
    shutil.copytree(EXAMPLE, home)
    pack = home / "ticket_desk.yaml"
    text = pack.read_text(encoding="utf-8")
    assert not re.search(r"^(dashboards|alerts):", text, re.M), "the pack must declare no dashboard or alert"
    run(sys.executable, "fill.py", "desk.db", cwd=home)
    checked = run(sys.executable, "-m", "pipeline_exporter", "--pack", "./ticket_desk.yaml", "--database.url",
                  "sqlite:///desk.db", "--config.check", cwd=home)
    assert "columns checked for 7" in checked.stdout + checked.stderr
    out = tmp_path / "out"
    result = run(sys.executable, "-m", "pipeline_exporter", "mixin", "--pack", "ticket_desk.yaml", "--job", JOB,
                 "--out", str(out), cwd=home)
    assert "wrote" in result.stdout
    boards = sorted((out / "grafana" / "packs" / SLUG).glob("*.json"))
    rules = sorted((out / "alerts" / "packs" / SLUG).glob("*.yml"))
    assert boards and rules, sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    return {"home": home, "pack": pack, "db": home / "desk.db", "boards": boards, "rules": rules}


def metric_names(pack: Path) -> dict[str, set[str]]:
    """Each metric of the pack -> the sample names it puts on /metrics."""
    loaded = load_pack(str(pack), pack.parent)
    return {m.name: sample_names(m) for q in loaded.queries for m in q.metrics}


def test_the_rules_pass_promtool_and_the_derived_alerts_fire(own: dict[str, Any], tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    for path in own["rules"]:
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    target = {"job": JOB, "instance": "desk:9333"}
    other = {"job": "another-job", "instance": "other:9333"}
    document = {"rule_files": [str(p) for p in own["rules"]], "evaluation_interval": "1m", "tests": [{
        "name": "a query of the pack fails for 15 minutes on the user's job",
        "interval": "1m",
        "input_series": [
            {"series": f'up{{job="{JOB}", instance="{target["instance"]}"}}', "values": "1x30"},
            {"series": f'pipeline_exporter_query_up{{job="{JOB}", instance="{target["instance"]}", '
                       'query="open_tickets"}', "values": "1x5 0x25"},
            {"series": f'pipeline_exporter_query_up{{job="{other["job"]}", instance="{other["instance"]}", '
                       'query="open_tickets"}', "values": "0x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "TicketDeskQueryFailing", "exp_alerts": []},
            {"eval_time": "25m", "alertname": "TicketDeskQueryFailing", "exp_alerts": [{
                "exp_labels": {**target, "query": "open_tickets", "severity": "warning", "service": "pipeline",
                               "pack": "ticket_desk"},
                "exp_annotations": None}]},
            {"eval_time": "25m", "alertname": "TicketDeskExporterDown", "exp_alerts": []},
        ],
    }]}
    # promtool compares every annotation; read them back from the generated rule instead of copying.
    alert = next(rule for path in own["rules"] for group in yaml.safe_load(path.read_text())["groups"]
                 for rule in group["rules"] if rule.get("alert") == "TicketDeskQueryFailing")
    annotations = {key: value.replace("{{ $labels.query }}", "open_tickets")
                   .replace("{{ $labels.instance }}", target["instance"])
                   for key, value in alert["annotations"].items()}
    document["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]["exp_annotations"] = annotations
    firing = 'ALERTS{{alertname="{}", alertstate="firing"}}'
    document["tests"].append({
        "name": "a query stops succeeding (its data goes stale), then the exporter goes down",
        "interval": "1m",
        "input_series": [
            {"series": f'up{{job="{JOB}", instance="{target["instance"]}"}}', "values": "1x20 0x20"},
            # The last success follows the clock for 10 minutes, then stops at 600 s.
            {"series": f'pipeline_exporter_query_last_success_timestamp_seconds{{job="{JOB}", '
                       f'instance="{target["instance"]}", query="replies"}}', "values": "0+60x10 600x30"},
        ],
        "promql_expr_test": [
            {"expr": firing.format("TicketDeskDataStale"), "eval_time": "8m", "exp_samples": []},
            {"expr": firing.format("TicketDeskDataStale"), "eval_time": "19m", "exp_samples": [{
                "labels": firing.format("TicketDeskDataStale")[:-1] + f', instance="{target["instance"]}", '
                          f'job="{JOB}", pack="ticket_desk", query="replies", service="pipeline", '
                          'severity="warning"}', "value": 1}]},
            {"expr": firing.format("TicketDeskExporterDown"), "eval_time": "19m", "exp_samples": []},
            {"expr": firing.format("TicketDeskExporterDown"), "eval_time": "30m", "exp_samples": [{
                "labels": firing.format("TicketDeskExporterDown")[:-1] + f', instance="{target["instance"]}", '
                          f'job="{JOB}", pack="ticket_desk", service="pipeline", severity="critical"}}',
                "value": 1}]},
        ]})
    test_file = tmp_path / "own-pack-test.yml"
    test_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_panel_query_returns_data_from_prometheus_scraping_the_user_s_job(
        own: dict[str, Any], tmp_path: Path) -> None:
    require_binary("prometheus")
    boards = [json.loads(path.read_text(encoding="utf-8")) for path in own["boards"]]
    exprs = [(board["uid"], panel["title"], target["expr"]) for board in boards
             for panel in panels_of(board) for target in panel.get("targets", [])]
    # Every metric of the pack is on the dashboard.
    shown = {name for _, _, expr in exprs for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr)}
    missing = [name for name, samples in metric_names(own["pack"]).items() if not samples & shown]
    assert not missing, missing
    assert all(f'job="{JOB}"' in expr for _, _, expr in exprs if "{" in expr)
    scrape = {"job_name": JOB, "scrape_interval": "1s", "static_configs": [{"targets": []}]}
    with stack.exporter(tmp_path, own["db"], extra=["--pack", str(own["pack"]), "--no-collector.host"]) as exporter:
        scrape["static_configs"] = [{"targets": [exporter.address]}]
        overrides = {"scrape_configs": [scrape], "rule_files": [str(p) for p in own["rules"]]}
        with stack.prometheus(tmp_path, None, overrides=overrides) as prom:
            wait_for(lambda: stack.query(prom, f'sum(count_over_time(up{{job="{JOB}"}}[5m])) >= 5'),
                     timeout=60, what=f"5 scrapes of job {JOB}")
            # The derived rules are loaded and evaluate without error; none fires on a healthy exporter.
            rules = wait_for(lambda: [r for g in prom.get("/api/v1/rules").json()["data"]["groups"]
                                      for r in g["rules"] if r.get("lastEvaluation", "").startswith("2")
                                      and not r["lastEvaluation"].startswith("0001")] or None,
                             timeout=30, what="the derived rules evaluated")
            assert {r["name"] for r in rules} == {"TicketDeskQueryFailing", "TicketDeskDataStale",
                                                  "TicketDeskExporterDown"}
            assert all(r["health"] == "ok" and r["state"] == "inactive" for r in rules), rules
            empty = [f"{uid} / {title}: {expr}" for uid, title, expr in exprs
                     if not stack.query(prom, substitute(expr))]
            assert not empty, "\n".join(empty)
            for board in boards:
                for variable in board["templating"]["list"]:
                    if variable["type"] == "query":
                        match = LABEL_VALUES.match(variable["definition"])
                        assert match, variable
                        values = prom.get("/api/v1/label/" + match["label"] + "/values",
                                          **{"match[]": match["selector"]}).json()["data"]
                        assert values == [exporter.address], variable["name"]
