"""The dashboards follow the house rules (in the spirit of grafana/dashboard-linter)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.dashboards.conftest import DASHBOARDS, REPO, contract_uids, panels_of

DS_VARIABLE = {"type": "prometheus", "uid": "${datasource}"}
FUNNEL = ["found", "scraped", "scored", "rescored", "proposal_ready", "contacted", "replied",
          "sold", "excluded"]


def content_panels(dashboard):
    """Panels that show something (rows only group them)."""
    return [panel for panel in panels_of(dashboard) if panel["type"] != "row"]


def test_generated_json_is_committed():
    """`python grafana/generate.py --check` passes: the JSON is what the code generates."""
    result = subprocess.run([sys.executable, str(REPO / "grafana" / "generate.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_check_detects_drift(tmp_path):
    """--check is not a no-op: an edited copy of the dashboards fails it."""
    for path in DASHBOARDS.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    edited = tmp_path / "pipeline-overview.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace('"30s"', '"5s"', 1),
                      encoding="utf-8")
    result = subprocess.run([sys.executable, str(REPO / "grafana" / "generate.py"), "--check",
                             "--out", str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "pipeline-overview.json" in result.stderr


def test_uids_are_exactly_the_contracts(dashboards):
    expected = contract_uids()
    assert len(expected) == 6
    assert sorted(dashboards) == sorted(expected)
    for uid, board in dashboards.items():
        assert board["uid"] == uid, f"{uid}.json carries uid {board['uid']}"


def test_dashboard_settings(dashboard):
    assert dashboard["schemaVersion"] == 39
    assert isinstance(dashboard["version"], int)
    assert dashboard["refresh"] == "30s"
    assert dashboard["timepicker"]["refresh_intervals"] == ["30s", "1m", "5m", "10m"]
    assert "pipeline" in dashboard["tags"]
    assert dashboard["title"] and dashboard["description"]


def test_no_import_placeholders(dashboard):
    text = json.dumps(dashboard)
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert "${DS_" not in text


def test_datasource_and_instance_variables(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query"
    assert instance["definition"] == "label_values(pipeline_exporter_build_info, instance)"
    assert instance["datasource"] == DS_VARIABLE
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DS_VARIABLE, variable["name"]


def test_conversations_filter_by_channel_and_sentiment(dashboards):
    board = dashboards["pipeline-conversations"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert {"channel", "sentiment"} <= set(names)
    filtered = [t["expr"] for p in content_panels(board) for t in p.get("targets", [])]
    assert all('channel=~"$channel"' in expr for expr in filtered)
    assert sum('sentiment=~"$sentiment"' in expr for expr in filtered) >= 8


def test_every_panel_and_target_uses_the_datasource_variable(dashboard):
    for panel in content_panels(dashboard):
        assert panel.get("datasource") == DS_VARIABLE, panel["title"]
        for target in panel.get("targets", []):
            assert target.get("datasource") == DS_VARIABLE, (panel["title"], target["refId"])
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            assert annotation["datasource"] == DS_VARIABLE


def test_every_panel_has_title_description_and_unit(dashboard):
    problems = []
    for panel in content_panels(dashboard):
        title = panel.get("title", "")
        if not title:
            problems.append(f"panel {panel['id']}: no title")
        if not panel.get("description"):
            problems.append(f"{title}: no description")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{title}: no unit")
        if panel["type"] != "text" and not panel.get("targets"):
            problems.append(f"{title}: no query")
    for row in (p for p in dashboard["panels"] if p["type"] == "row"):
        if not row.get("title"):
            problems.append(f"row {row['id']}: no title")
    assert not problems, "\n".join(problems)


def test_panel_ids_are_unique_and_the_grid_has_no_overlap(dashboard):
    ids = [panel["id"] for panel in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    taken = {}
    for panel in panels_of(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_links_between_dashboards_and_to_alerts(dashboard):
    links = dashboard["links"]
    assert any(link["type"] == "dashboards" and "pipeline" in link["tags"] for link in links)
    assert any(link["type"] == "link" and link["url"].startswith("/alerting/")
               for link in links)


def test_funnel_keeps_the_status_order(dashboards):
    for uid in ("pipeline-overview", "pipeline-health"):
        funnel = next(p for p in content_panels(dashboards[uid]) if p["title"] == "Pipeline funnel")
        assert funnel["type"] == "bargauge"
        assert [t["legendFormat"] for t in funnel["targets"]] == FUNNEL + ["other"]


def test_compliance_checklists_are_text_panels(dashboards):
    texts = {p["title"]: p["options"]["content"]
             for p in content_panels(dashboards["pipeline-compliance"]) if p["type"] == "text"}
    assert "CAN-SPAM" in " ".join(texts) and "TCPA" in " ".join(texts)
    assert any("residential proxies" in p["options"]["content"]
               for p in content_panels(dashboards["pipeline-system"]) if p["type"] == "text")


def test_cron_job_table_shows_the_old_columns(dashboards):
    table = next(p for p in content_panels(dashboards["pipeline-system"])
                 if p["title"] == "Cron job status")
    organize = next(t for t in table["transformations"] if t["id"] == "organize")
    columns = set(organize["options"]["renameByName"].values())
    assert {"Job", "Description", "Last run (ago)", "Last result", "Overdue"} <= columns
