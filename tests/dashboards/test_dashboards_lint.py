"""The dashboards follow the house rules (in the spirit of grafana/dashboard-linter) and issue 11."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from pipeline_exporter.mixin import DEFAULT
from tests.dashboards.conftest import DASHBOARDS, REPO, alert_names, documented_uids, panels_of

DS_VARIABLE = {"type": "prometheus", "uid": "${datasource}"}
FUNNEL = ["found", "scraped", "scored", "rescored", "proposal_ready", "contacted", "replied",
          "sold", "excluded"]
# Fixed by the contract (alerts-and-dashboards.md): one dashboard per page of the old app.
UIDS = ["pipeline-overview", "pipeline-health", "pipeline-outreach", "pipeline-conversations",
        "pipeline-compliance", "pipeline-system"]
PERIODS = {"per hour": ("1h", "1h"), "per day": ("24h", "1d")}
# Alerts about the alerting pipeline itself read Prometheus's and Alertmanager's own metrics,
# which the pipeline dashboards do not show; the Watchdog has no panel.
NO_PANEL = {"Watchdog", "PrometheusRuleFailures", "PrometheusNotConnectedToAlertmanagers",
            "AlertmanagerFailedToSendAlerts"}


def content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels that show something (rows only group them)."""
    return [panel for panel in panels_of(dashboard) if panel["type"] != "row"]


def panel(dashboards: dict[str, Any], uid: str, title: str) -> dict[str, Any]:
    (found,) = [p for p in content_panels(dashboards[uid]) if p["title"] == title]
    return found


def mixin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline_exporter", "mixin", *args], cwd=REPO,
                          capture_output=True, text=True, check=False)


# ---------------------------------------------------------------- generated from one config

def test_generated_json_is_committed():
    """`pipeline-exporter mixin --out . --check` passes: every committed rule file, dashboard and
    docs table is what the packs' declarations render (CI runs this)."""
    # --kubernetes: deploy/kubernetes/mixin/<pack>/ too (PrometheusRules, dashboard ConfigMaps).
    result = subprocess.run([sys.executable, "-m", "pipeline_exporter", "mixin", "--out", str(REPO), "--check",
                             "--kubernetes"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_check_detects_drift(tmp_path):
    """--check is not a no-op: an edited copy of a generated dashboard fails it, naming the file."""
    assert mixin("--out", str(tmp_path)).returncode == 0
    assert mixin("--out", str(tmp_path), "--check").returncode == 0
    edited = tmp_path / "grafana" / "dashboards" / "pipeline-overview.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace('"1m"', '"5s"', 1), encoding="utf-8")
    result = mixin("--out", str(tmp_path), "--check")
    assert result.returncode == 1
    assert "pipeline-overview.json" in result.stderr


def test_another_job_name_and_grafana_url_regenerate_everything(tmp_path):
    """A user whose scrape job is not pipeline-exporter runs one command and loses nothing."""
    result = mixin("--job", "my-pipeline", "--grafana-url", "https://grafana.example.com",
                   "--runbook-url", "https://wiki.example.com/runbooks", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    generated = [*tmp_path.glob("alerts/*.yml"), *tmp_path.glob("grafana/dashboards/*.json")]
    assert len(generated) == 8
    for path in generated:
        text = path.read_text(encoding="utf-8")
        assert 'job=\\"pipeline-exporter\\"' not in text and 'job="pipeline-exporter"' not in text, path.name
        assert "localhost:3000" not in text and "github.com/333method" not in text, path.name
    rules = (tmp_path / "alerts" / "pipeline-alerts.yml").read_text(encoding="utf-8")
    assert 'up{job="my-pipeline"} == 0' in rules
    assert "https://grafana.example.com/d/pipeline-compliance?orgId=1" in rules
    assert "https://wiki.example.com/runbooks#emailbounceratehigh" in rules
    board = (tmp_path / "grafana" / "dashboards" / "pipeline-health.json").read_text(encoding="utf-8")
    assert 'job=\\"my-pipeline\\"' in board


def test_a_bad_config_key_exits_2_naming_it(tmp_path):
    config = tmp_path / "mixin.yml"
    config.write_text("thresholds:\n  bounce_rate: {warning: 0.05, critcal: 0.1}\n")
    result = mixin("--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "parameters.bounce_rate_critcal" in result.stderr and str(config) in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_config_file_sets_thresholds_old_and_new_keys(tmp_path):
    config = tmp_path / "mixin.yml"
    config.write_text("thresholds: {sites_stuck: 80, sms_failure_rate: 0.07}\n"
                      "parameters: {min_sends: 40}\n")
    assert mixin("--config", str(config), "--out", str(tmp_path)).returncode == 0
    rules = (tmp_path / "alerts" / "pipeline-alerts.yml").read_text(encoding="utf-8")
    assert "> 80" in rules and 'channel="sms"} > 0.07' in rules
    assert ">= 40\n" in rules and ">= 20\n" not in rules


def test_a_parameter_of_the_wrong_type_exits_2_naming_it(tmp_path):
    config = tmp_path / "mixin.yml"
    config.write_text("parameters: {min_sends: lots}\n")
    result = mixin("--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "parameters.min_sends" in result.stderr and "must be an integer" in result.stderr
    assert str(config) in result.stderr and "Traceback" not in result.stderr


def test_the_windows_are_parameters_old_key_and_new(tmp_path):
    config = tmp_path / "mixin.yml"
    config.write_text("windows: {fast: 15m}\n")
    assert mixin("--config", str(config), "--out", str(tmp_path)).returncode == 0
    rules = (tmp_path / "alerts" / "pipeline-alerts.yml").read_text(encoding="utf-8")
    assert "ratio15m{" in rules and "ratio1h{" not in rules
    config.write_text("parameters: {window_slow: 2h}\n")
    result = mixin("--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "window_slow" in result.stderr and "15m, 1h, 24h, 7d" in result.stderr


# ---------------------------------------------------------------- settings

def test_uids_are_exactly_the_contracts(dashboards):
    assert sorted(dashboards) == sorted(UIDS)
    assert sorted(documented_uids()) == sorted(UIDS)
    for uid, board in dashboards.items():
        assert board["uid"] == uid, f"{uid}.json carries uid {board['uid']}"


def test_dashboard_settings(dashboard):
    assert dashboard["schemaVersion"] == 39
    assert isinstance(dashboard["version"], int)
    assert dashboard["refresh"] == "1m"
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
    assert instance["definition"] == f'label_values(pipeline_exporter_build_info{{{DEFAULT.selector}}}, instance)'
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DS_VARIABLE, variable["name"]


def test_conversations_filter_by_channel_and_sentiment(dashboards):
    board = dashboards["pipeline-conversations"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert {"channel", "sentiment"} <= set(names)
    # The Conversations total counts distinct sites over every channel (pipeline_conversation_sites
    # has no channel label: per-channel distinct counts summed would count a site once per channel).
    filtered = [t["expr"] for p in content_panels(board) if p["title"] != "Conversations" for t in p.get("targets", [])]
    assert all('channel=~"$channel"' in expr for expr in filtered)
    assert sum('sentiment=~"$sentiment"' in expr for expr in filtered) >= 8


def test_every_panel_and_target_uses_the_datasource_variable(dashboard):
    for item in content_panels(dashboard):
        assert item.get("datasource") == DS_VARIABLE, item["title"]
        for target in item.get("targets", []):
            assert target.get("datasource") == DS_VARIABLE, (item["title"], target["refId"])
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            assert annotation["datasource"] == DS_VARIABLE


def test_every_panel_has_title_description_and_unit(dashboard):
    problems = []
    for item in content_panels(dashboard):
        title = item.get("title", "")
        if not title:
            problems.append(f"panel {item['id']}: no title")
        if not item.get("description"):
            problems.append(f"{title}: no description")
        if not item.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{title}: no unit")
        if item["type"] != "text" and not item.get("targets"):
            problems.append(f"{title}: no query")
    for row in (p for p in dashboard["panels"] if p["type"] == "row"):
        if not row.get("title"):
            problems.append(f"row {row['id']}: no title")
    assert not problems, "\n".join(problems)


def _overlaps(panels: list[dict[str, Any]]) -> list[str]:
    taken: dict[tuple[int, int], str] = {}
    problems = []
    for item in panels:
        pos = item["gridPos"]
        if pos["x"] + pos["w"] > 24:
            problems.append(f"{item['title']} is wider than the grid")
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                if (x, y) in taken:
                    problems.append(f"{item['title']} overlaps {taken[(x, y)]}")
                taken[(x, y)] = item["title"]
    return problems


def test_panel_ids_are_unique_and_the_grid_has_no_overlap(dashboard):
    ids = [item["id"] for item in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    # What is on screen with every row as it opens, and each collapsed row's panels once opened.
    assert not _overlaps(dashboard["panels"])
    for row in dashboard["panels"]:
        assert not _overlaps(row.get("panels", [])), row["title"]


def test_links_between_dashboards_and_to_the_pipelines_alerts(dashboard):
    links = dashboard["links"]
    assert any(link["type"] == "dashboards" and "pipeline" in link["tags"] for link in links)
    alert_links = [link for link in links if link["type"] == "link" and link["url"].startswith("/alerting/")]
    assert any("label:service=pipeline" in link["url"] for link in alert_links)


def test_alert_annotations_and_counts_show_only_the_pipelines_alerts(dashboards):
    for uid, board in dashboards.items():
        for annotation in board["annotations"]["list"]:
            if "expr" in annotation:
                assert 'service="pipeline"' in annotation["expr"], uid
        for item in content_panels(board):
            for target in item.get("targets", []):
                if "ALERTS{" in target["expr"]:
                    assert all('service="pipeline"' in selector for selector in
                               re.findall(r"ALERTS\{[^}]*\}", target["expr"])), (uid, item["title"])


# ---------------------------------------------------------------- issue 11's panels

def all_boards() -> dict[str, dict[str, Any]]:
    """The main dashboards and the packs' (grafana/packs/<pack>/*.json), by uid."""
    boards = {path.stem: json.loads(path.read_text(encoding="utf-8"))
              for path in sorted(DASHBOARDS.glob("*.json"))}
    boards.update({path.stem: json.loads(path.read_text(encoding="utf-8"))
                   for path in sorted((REPO / "grafana" / "packs").glob("*/*.json"))})
    return boards


# Per-day panels without a counter that has their labels: the windowed gauge at each midnight,
# completed days only (no today so far).
NO_COUNTER = {("scraper-insights", "Jobs per day, by location"): "scraper_jobs_scraped_recent"}
COUNTER_BAR = re.compile(
    r"^sum(?P<by> by \([^)]*\))? \(\n"
    r"  last_over_time\((?P<sel>(?P<name>\w+_total)\{[^}]*\})\[(?P<p>1[dh])\] offset -(?P=p)\)\n"
    r"  - \(\n    last_over_time\((?P=sel)\[(?P=p)\]\)\n    or\n"
    r"    last_over_time\((?P=sel)\[(?P=p)\] offset -(?P=p)\) \* 0\n"
    r"    and on \(job, instance\) group by \(job, instance\) \(last_over_time\((?P=sel)\[(?P=p)\]\)\)\n"
    r"  \)\n\)$")


def test_per_period_panels_show_calendar_periods_from_a_counter():
    """"per day" / "per hour" (issue 21): one bar per calendar period of the dashboard's time zone, the
    current one so far last: the step is the period, the panel's own range starts at a period
    boundary (now-7d/d, now-24h/h), and each bar is the counter's last sample in the period minus
    its last one before it (drawn after its timestamp, the period's start). The one panel whose
    labels no counter has reads the windowed gauge at the period's end (drawn before it)."""
    found, by_counter = 0, 0
    for uid, board in all_boards().items():
        assert board["timezone"] == "utc", f"{uid}: days in UTC unless the user renders another zone"
        for item in content_panels(board):
            for words, (window, interval) in PERIODS.items():
                if words not in item["title"] or item["type"] != "timeseries":
                    continue
                found += 1
                where = f"{uid} / {item['title']}"
                unit = interval[-1]
                assert item["interval"] == interval and item["maxDataPoints"] >= 10000, where
                assert re.fullmatch(rf"now-\d+[{unit}dw]/{unit}", item.get("timeFrom", "")), where
                custom = item["fieldConfig"]["defaults"]["custom"]
                assert custom["drawStyle"] == "bars", where
                (target,) = item["targets"]
                expr = target["expr"]
                assert not re.search(r"\b(increase|rate|delta)\(", expr), where
                if (uid, item["title"]) in NO_COUNTER:
                    assert re.search(rf'{NO_COUNTER[(uid, item["title"])]}\{{[^}}]*window="{window}"', expr), where
                    assert custom["barAlignment"] == -1, where
                    continue
                match = COUNTER_BAR.match(expr)
                assert match and match["p"] == interval, f"{where}: not the counter formula:\n{expr}"
                assert custom["barAlignment"] == 1, where
                by_counter += 1
    assert found >= 16 and by_counter >= 15, "fewer per-period panels than the dashboards should have"


def test_the_counter_formula_check_catches_an_increase_and_a_window_gauge():
    """Guard against a vacuous pass: the pattern refuses what the panels drew before issue 21."""
    assert not COUNTER_BAR.match('sum by (channel) (increase(pipeline_opt_outs_total{job="x"}[1d]))')
    assert not COUNTER_BAR.match('sum by (channel) (pipeline_opt_outs_recent{job="x", window="24h"})')


def test_overview_opens_with_the_status_row_and_data_as_of(dashboards):
    board = dashboards["pipeline-overview"]
    first_row = board["panels"][0]
    assert first_row["type"] == "row" and first_row["title"] == "Status"
    status = [item for item in board["panels"][1:] if item["gridPos"]["y"] < board["panels"][1]["gridPos"]["y"] + 3]
    titles = [item["title"] for item in status]
    assert titles == ["Deliverability", "Pipeline flow", "Conversations", "System", "Exporter", "Data as of"]
    targets = {"Deliverability": "pipeline-compliance", "Pipeline flow": "pipeline-health",
               "Conversations": "pipeline-conversations", "System": "pipeline-system",
               "Exporter": "pipeline-system"}
    for item in status[:5]:
        assert item["links"][0]["url"].startswith(f"/d/{targets[item['title']]}?"), item["title"]
        steps = [step["value"] for step in item["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        assert steps == [None, 0, 1, 2], item["title"]
        assert item["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["color"] == "grey", item["title"]
        assert "ALERTS{" in item["targets"][0]["expr"]
        # OK (0) only while the exporter's target is up: a dead target is no data, UNKNOWN.
        assert "(min(up{" in item["targets"][0]["expr"], item["title"]
    assert "pipeline_exporter_query_last_success_timestamp_seconds" in status[5]["targets"][0]["expr"]
    # Each query's age against its own configured interval (the exporter's gauge, right from a fresh
    # Prometheus and after a reload), not the oldest query's age: the hourly integrity check is not
    # late at 50 minutes.
    expr = status[5]["targets"][0]["expr"]
    assert ") / pipeline_exporter_query_interval_seconds{" in expr and expr.startswith("max((time() - ")
    assert "rate(" not in expr
    steps = [(step["value"], step["color"]) for step in status[5]["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [(None, "grey"), (0, "green"), (1.5, "orange"), (3, "red")]


def test_every_alert_of_the_overview_is_in_one_area(dashboards):
    board = dashboards["pipeline-overview"]
    named = set()
    for item in content_panels(board)[:5]:
        named |= set(re.search(r'alertname=~"([^"]+)"', item["targets"][0]["expr"])[1].split("|"))
    assert named == alert_names() - {"Watchdog"}


def test_health_shows_the_longest_wait_per_error_type_and_history(dashboards):
    longest = panel(dashboards, "pipeline-health", "Longest-stuck site per error type")
    assert "max by (error_type)" in longest["targets"][0]["expr"]
    assert "pipeline_sites_stuck_oldest_age_seconds" in longest["targets"][0]["expr"]
    for title in ("Active errors over time by error type", "Sites per processing status over time"):
        assert panel(dashboards, "pipeline-health", title)["type"] == "timeseries"


def test_system_shows_cron_runs_as_a_state_timeline_and_e2e_by_result(dashboards):
    timeline = panel(dashboards, "pipeline-system", "Cron job results over time")
    assert timeline["type"] == "state-timeline"
    texts = {option["text"] for option in timeline["fieldConfig"]["defaults"]["mappings"][0]["options"].values()}
    assert texts == {"success", "failed", "disabled"}
    e2e = panel(dashboards, "pipeline-system", "E2E results by suite")
    colours = {o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
               for o in e2e["fieldConfig"]["overrides"]}
    assert colours == {"passed": "green", "failed": "red", "skipped": "text"}


def test_system_rows_below_the_first_are_collapsed(dashboards):
    rows = [item for item in dashboards["pipeline-system"]["panels"] if item["type"] == "row"]
    assert not rows[0]["collapsed"] and rows[0]["title"] == "Cron jobs"
    assert all(row["collapsed"] and row["panels"] for row in rows[1:]), [r["title"] for r in rows]
    assert len(rows) >= 5


def test_outreach_shows_this_months_llm_cost_against_the_budget(dashboards):
    history = panel(dashboards, "pipeline-outreach", "This month's LLM cost against the budget")
    exprs = " ".join(target["expr"] for target in history["targets"])
    for rule in ("provider:pipeline_llm_cost_usd_month_to_date:sum",
                 "provider:pipeline_llm_cost_usd:projected_month_end", "provider:pipeline_llm_budget_usd:max"):
        assert rule in exprs


def test_every_panel_that_names_an_alert_links_to_its_runbook(dashboards):
    names = alert_names()
    linked: set[str] = set()
    problems = []
    for uid, board in dashboards.items():
        for item in content_panels(board):
            urls = [link["url"] for link in item.get("links", [])]
            linked |= {name for name in names if DEFAULT.runbook(name) in urls}
            if item["type"] == "text":
                continue
            for name in names:
                if re.search(rf"\b{name}\b", item.get("description", "")) and DEFAULT.runbook(name) not in urls:
                    problems.append(f"{uid} / {item['title']}: names {name} without its runbook")
    assert not problems, "\n".join(problems)
    assert names - NO_PANEL <= linked, f"no panel links the runbook of {sorted(names - NO_PANEL - linked)}"


def test_every_all_time_stat_says_so(dashboards):
    """Stats and distributions of counters' plain values say "(all time)" in their title (a per-period
    panel's difference of two samples, COUNTER_BAR, is no plain value)."""
    for uid, board in dashboards.items():
        for item in content_panels(board):
            for target in item.get("targets", []):
                bare = re.findall(r"\b(pipeline_(?!exporter_)\w+_total)\{", target["expr"])
                plain = not re.search(r"\b(increase|rate)\(", target["expr"]) and not COUNTER_BAR.match(target["expr"])
                if bare and plain:
                    assert "(all time)" in item["title"], f"{uid} / {item['title']}: {bare}"


def test_funnel_keeps_the_status_order(dashboards):
    for uid in ("pipeline-overview", "pipeline-health"):
        funnel = panel(dashboards, uid, "Pipeline funnel")
        assert funnel["type"] == "bargauge"
        assert [t["legendFormat"] for t in funnel["targets"]] == FUNNEL + ["other"]


def test_compliance_checklists_are_text_panels(dashboards):
    texts = {p["title"]: p["options"]["content"]
             for p in content_panels(dashboards["pipeline-compliance"]) if p["type"] == "text"}
    assert "CAN-SPAM" in " ".join(texts) and "TCPA" in " ".join(texts)
    assert any("residential proxies" in p["options"]["content"]
               for p in content_panels(dashboards["pipeline-system"]) if p["type"] == "text")


def test_cron_job_table_shows_the_old_columns(dashboards):
    table = panel(dashboards, "pipeline-system", "Cron job status")
    organize = next(t for t in table["transformations"] if t["id"] == "organize")
    columns = set(organize["options"]["renameByName"].values())
    assert {"Job", "Description", "Last run (ago)", "Last result", "Overdue"} <= columns


def test_the_generated_files_are_the_ones_on_disk():
    """Guard against a vacuous pass: the files the tests read exist, one per uid."""
    assert sorted(path.stem for path in DASHBOARDS.glob("*.json")) == sorted(UIDS)


def test_no_value_is_unknown_never_a_healthy_zero(dashboards):
    """No ``or vector(0)``: missing data is no data. Every panel that colours a value (stat, gauge, bar
    gauge) maps no value (null, NaN) to UNKNOWN in grey and says UNKNOWN when its query returns
    nothing; tables say UNKNOWN; charts say they have no data rather than look calm."""
    coloured = 0
    for uid in UIDS:
        for item in content_panels(dashboards[uid]):
            where = f"{uid}: {item['title']}"
            for target in item.get("targets", []):
                assert "vector(0)" not in target["expr"], where
            defaults = item.get("fieldConfig", {}).get("defaults", {})
            if item["type"] in ("timeseries", "state-timeline", "barchart", "piechart"):
                assert defaults.get("noValue") == "No data \u2014 exporter not scraped?", where
            if item["type"] == "table":
                assert defaults.get("noValue") == "UNKNOWN", where
            if item["type"] not in ("stat", "gauge", "bargauge"):
                continue
            coloured += 1
            texts = [option["text"] for mapping in defaults.get("mappings", []) if mapping["type"] == "value"
                     for option in mapping["options"].values()]
            assert defaults.get("noValue") == "UNKNOWN", where
            special = [m for m in defaults["mappings"] if m["type"] == "special"]
            assert special and special[0]["options"]["match"] == "null+nan", where
            assert special[0]["options"]["result"] == {"text": "UNKNOWN", "color": "grey",
                                                       "index": len(texts)}, where
    assert coloured >= 60


def test_true_numbers_read_the_exact_gauges(dashboards):
    """Conversations counts distinct sites; medians and p90s read SQL's percentiles, not histogram buckets."""
    assert "pipeline_conversation_sites{" in panel(dashboards, "pipeline-conversations", "Conversations")[
        "targets"][0]["expr"]
    reply = panel(dashboards, "pipeline-outreach", "Time to first reply (median)")["targets"][0]["expr"]
    assert 'pipeline_outreach_reply_delay_percentile_seconds{' in reply and 'percentile="50"' in reply
    waits = [t["expr"] for t in
             panel(dashboards, "pipeline-health", "How long sites have waited, by status")["targets"]]
    assert any('pipeline_site_status_age_percentile_seconds{' in e and 'percentile="90"' in e for e in waits)
    cron = panel(dashboards, "pipeline-system", "Run duration (90th percentile)")["targets"][0]["expr"]
    assert 'pipeline_cron_job_duration_percentile_seconds{' in cron and 'window="24h"' in cron
    for uid in ("pipeline-outreach", "pipeline-health"):
        for item in content_panels(dashboards[uid]):
            assert all("histogram_quantile" not in t["expr"] for t in item.get("targets", [])), item["title"]


def test_projected_month_end_is_coloured_against_the_budget(dashboards):
    """Green below 80 % of pipeline_llm_budget_usd, orange from 80 %, red from 100 %, never always green."""
    item = panel(dashboards, "pipeline-outreach", "Projected at month end")
    defaults = item["fieldConfig"]["defaults"]
    assert defaults["thresholds"]["mode"] == "percentage"
    assert [(s["value"], s["color"]) for s in defaults["thresholds"]["steps"]] == [
        (None, "grey"), (0, "green"), (80, "orange"), (100, "red")]
    budget = item["targets"][1]
    assert budget["refId"] == "B" and "pipeline_llm_budget_usd" in budget["expr"]
    (config,) = [t for t in item["transformations"] if t["id"] == "configFromData"]
    assert config["options"]["configRefId"] == "B"
    assert config["options"]["mappings"] == [{"fieldName": "budget", "handlerKey": "max"}]


def test_system_has_the_fast_path_row(dashboards):
    """How many queries are on their exact path (no data without the exporter), and each query's path over time."""
    count = panel(dashboards, "pipeline-system", "Queries on their exact path")
    expr = count["targets"][0]["expr"]
    assert "count(pipeline_exporter_query_fast_path{" in expr and "== 0)" in expr
    assert "* 0)" in expr and "vector(" not in expr
    assert count["fieldConfig"]["defaults"]["noValue"] == "UNKNOWN"
    timeline = panel(dashboards, "pipeline-system", "Fast path by query")
    assert timeline["type"] == "state-timeline"
    assert timeline["targets"][0]["expr"].startswith("min by (query) (pipeline_exporter_query_fast_path{")


def test_tile_links_land_on_the_alerts_panel(dashboards):
    """LlmBudgetBurnHigh, OutreachStalled and ReplyRateDropped link to the panel that shows them (viewPanel=id)."""
    tiles = {item["title"]: item for item in content_panels(dashboards["pipeline-overview"])[:5]}
    expected = {"LlmBudgetBurnHigh": ("Pipeline flow", "Projected at month end"),
                "OutreachStalled": ("Pipeline flow", "Queue by channel"),
                "ReplyRateDropped": ("Conversations", "Reply rate, last 24h and 7d")}
    for alert, (tile, title) in expected.items():
        (link,) = [link for link in tiles[tile]["links"] if link["title"].startswith(f"{alert}:")]
        view = re.search(r"^/d/pipeline-outreach\?viewPanel=(\d+)&", link["url"])
        assert view, link["url"]
        (target,) = [p for p in panels_of(dashboards["pipeline-outreach"]) if p["id"] == int(view[1])]
        assert target["title"] == title, alert


def test_compliance_opens_with_rates_and_all_time_below(dashboards):
    """An alert's link lands on the windowed rates: the first line is rates, all-time figures lie below it."""
    board = dashboards["pipeline-compliance"]
    first = [p for p in board["panels"] if p["type"] != "row" and p["gridPos"]["y"] == 1]
    assert first and all(re.search(r"rate \((1h|24h)\)$", p["title"]) for p in first), [p["title"] for p in first]
    for item in content_panels(board):
        if "(all time)" in item["title"]:
            assert item["gridPos"]["y"] > 1, item["title"]
