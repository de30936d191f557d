"""Issue 21's pack panel defects stay fixed: quantile legends, ratios of sums, economics from
parameters, no rate() on a counter built from the database, and no data that looks healthy."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_exporter import demowriter as demos
from tests.dashboards.conftest import REPO, panels_of, substitute
from tests.support import stack
from tests.support.procs import require_binary, wait_for

PACKS = ("botflow", "crm", "scraper")
QUANTILE = re.compile(r"histogram_quantile\(\s*([0-9.]+)")
LEGEND_QUANTILE = re.compile(r"\bp(\d+)\b")
RATE = re.compile(r"\b(rate|irate|increase)\(\s*([a-zA-Z_:][\w:]*)")
OK_COLOURS = {"green", "blue", "semi-dark-green", "dark-green", "light-green", "super-light-green"}
# The one fallback allowed: a 0 only while the query that would export the series succeeds.
HONEST_ZERO = re.compile(r' or on\(\) \(0 \* max\(pipeline_exporter_query_up\{[^}]*query="\w+"\} == 1\)\)')


def dashboards(root: Path = REPO / "grafana" / "packs") -> Iterator[tuple[str, dict[str, Any]]]:
    for pack in PACKS:
        for path in sorted((root / pack).glob("*.json")):
            yield path.stem, json.loads(path.read_text(encoding="utf-8"))


def content(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels_of(dashboard) if p["type"] != "row"]


def panel(uid: str, title: str, root: Path = REPO / "grafana" / "packs") -> dict[str, Any]:
    (found,) = [p for u, d in dashboards(root) if u == uid for p in content(d) if p["title"] == title]
    return found


def test_quantile_legends_name_the_quantile() -> None:
    checked = 0
    for uid, dashboard in dashboards():
        for p in content(dashboard):
            for target in p.get("targets", []):
                quantile = QUANTILE.search(target["expr"])
                legend = LEGEND_QUANTILE.search(target.get("legendFormat", ""))
                if quantile and legend:
                    checked += 1
                    assert legend[0] == f"p{float(quantile[1]) * 100:g}", (uid, p["title"], legend[0], quantile[1])
    legends = [t["legendFormat"] for t in panel("crm-enhanced-analytics",
                                                "First-contact time percentiles (24 h)")["targets"]]
    assert legends == ["p50", "p90"] and checked >= 4


def test_outcome_rates_are_ratios_of_sums_guarded_per_bot() -> None:
    (over_time,) = panel("botflow-bot-performance", "Outcome rates over time (24 h)")["targets"]
    expr = over_time["expr"]
    assert "conversation_outcome_ratio" not in expr  # a sum of per-bot ratios is not a rate
    numerator, denominator = expr.split(" / on() group_left() ")
    assert numerator.startswith("sum by (outcome) (botflow_conversations_finished_recent{")
    assert denominator.startswith("(sum(botflow_conversations_finished_recent{") and denominator.endswith(" > 0)")
    table = panel("botflow-bot-performance", "Bot performance (last 24 h)")["targets"]
    for target in table[1:]:
        assert re.search(r'outcome="\w+"\}\)\s*/ \(sum by \(bot\) \(botflow_conversations_finished_recent\{[^}]*'
                         r'window="24h"\}\) > 0\)$', target["expr"]), target["expr"]


def declared_queries(pack: str) -> Iterator[tuple[str, str, str]]:
    for path in sorted((REPO / "pipeline_exporter" / "packs" / pack / "dashboards").glob("*.yaml")):
        for row in yaml.safe_load(path.read_text(encoding="utf-8"))["rows"]:
            for p in row["panels"]:
                for query in p.get("queries", []):
                    yield path.stem, p["title"], query if isinstance(query, str) else query["expr"]


def test_no_literal_money_in_the_packs_promql() -> None:
    for pack in PACKS:
        for uid, title, expr in declared_queries(pack):
            assert not re.search(r"vector\(\s*[1-9]", expr), (uid, title, expr)
    economics = {title: expr for uid, title, expr in declared_queries("scraper") if uid == "scraper-overview"}
    assert "%{competitor_usd_per_month}" in economics["Saved per month"]
    assert "%{infrastructure_usd_per_month}" in economics["Saved per month"]
    parameters = yaml.safe_load((REPO / "pipeline_exporter/packs/scraper/alerts.yaml").read_text())["parameters"]
    for name in ("competitor_usd_per_month", "infrastructure_usd_per_month"):
        assert parameters[name]["type"] in ("integer", "number") and parameters[name]["help"].strip()


def test_a_users_economics_appear_in_the_rendered_panels(tmp_path: Path) -> None:
    config = tmp_path / "mixin.yml"
    config.write_text("parameters: {infrastructure_usd_per_month: 73, competitor_usd_per_month: 911}\n")
    run = subprocess.run([sys.executable, "-m", "pipeline_exporter", "mixin", "--out", str(tmp_path), "--pack",
                          "scraper", "--config", str(config)], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    root = tmp_path / "grafana" / "packs"
    assert panel("scraper-overview", "Saved per month", root)["targets"][0]["expr"] == "vector(911 - 73)"
    ours = "Our cost per 1,000 jobs (7 d)"
    assert "(73 * 12 / 365 * 7)" in panel("scraper-overview", ours, root)["targets"][0]["expr"]
    assert "(911 * 12 / 365 * 7)" in panel("scraper-overview", "A service's cost per 1,000 jobs (7 d)",
                                           root)["targets"][0]["expr"]
    assert "(73 * 12 / 365 * 7)" in panel("scraper-insights", ours, root)["targets"][0]["expr"]


def database_counters() -> set[str]:
    """The counters the three packs build from their databases."""
    names = set()
    for pack in PACKS:
        document = yaml.safe_load((REPO / "pipeline_exporter" / "packs" / pack / "pack.yaml").read_text())
        for query in document["queries"].values():
            names |= {m["name"] for m in query.get("metrics", []) if m.get("type") == "counter"}
    return names


def test_no_rate_on_a_counter_built_from_the_database() -> None:
    counters = database_counters()
    assert "scraper_jobs_scraped_total" in counters
    for uid, dashboard in dashboards():
        for p in content(dashboard):
            for target in p.get("targets", []):
                for function, metric in RATE.findall(target["expr"]):
                    assert metric not in counters, (uid, p["title"], f"{function}({metric})")


def test_missing_data_is_never_a_healthy_zero() -> None:
    stats = 0
    for uid, dashboard in dashboards():
        for p in content(dashboard):
            for target in p.get("targets", []):
                rest = HONEST_ZERO.sub("", target["expr"])
                assert "vector(0)" not in rest and " or " not in rest, (uid, p["title"], target["expr"])
            defaults = p["fieldConfig"]["defaults"]
            if p["type"] in ("timeseries", "state-timeline", "barchart", "piechart"):
                assert defaults.get("noValue") == "No data \u2014 exporter not scraped?", (uid, p["title"])
            if p["type"] == "table":
                assert defaults.get("noValue") == "UNKNOWN", (uid, p["title"])
            if p["type"] not in ("stat", "gauge", "bargauge"):
                continue
            stats += 1
            assert defaults.get("noValue") == "UNKNOWN", (uid, p["title"])
            special = [m for m in defaults["mappings"] if m["type"] == "special"
                       and m["options"]["match"] in ("null", "null+nan")]
            assert special and special[0]["options"]["result"]["color"] not in OK_COLOURS, (uid, p["title"])
            assert special[0]["options"]["result"]["text"] == "UNKNOWN", (uid, p["title"])
            assert special[0]["options"]["result"]["color"] == "grey", (uid, p["title"])
    assert stats >= 20


@pytest.mark.parametrize("uid, title", [("scraper-overview", "Active sessions"),
                                        ("crm-home", "Leads waiting for a first contact"),
                                        ("botflow-realtime", "Active conversations")])
def test_a_state_count_falls_back_to_zero_only_on_its_own_query(uid: str, title: str) -> None:
    (target,) = panel(uid, title)["targets"]
    match = HONEST_ZERO.search(target["expr"])
    assert match and target["expr"].endswith(match[0])
    query = re.search(r'query="(\w+)"', match[0])[1]  # type: ignore[index]
    pack = uid.split("-")[0]
    document = yaml.safe_load((REPO / "pipeline_exporter" / "packs" / pack / "pack.yaml").read_text())
    metric = re.match(r"sum\((\w+)\{", target["expr"])[1]  # type: ignore[index]
    assert metric in {m["name"] for m in document["queries"][query]["metrics"]}


@pytest.mark.e2e
def test_outcome_rates_live_are_shares_and_an_idle_bot_is_no_nan(tmp_path: Path) -> None:
    """On the BotFlow demo plus a bot whose only conversation is 3 days old (0 in the 24 h window):
    the overall outcome shares add up to 1 and no per-bot rate is NaN."""
    require_binary("prometheus")
    db = tmp_path / "botflow.db"
    demos.build("botflow", db)
    with sqlite3.connect(db) as con:  # the demo rows are ours: the exporter only reads them
        con.execute("INSERT INTO bots (id, organization_id, name, status, created_at) "
                    "SELECT 99, organization_id, 'idle-bot', 'active', created_at FROM bots WHERE id = 1")
        (count,) = con.execute("SELECT COUNT(*) FROM conversation_metrics").fetchone()
        con.execute("INSERT INTO conversation_metrics SELECT (SELECT MAX(id) + 1 FROM conversation_metrics), "
                    "conversation_id, 99, organization_id, outcome, message_count, knowledge_base_hits, tokens_used, "
                    "estimated_cost_usd, duration_seconds, satisfaction_score, created_at FROM conversation_metrics "
                    "ORDER BY id LIMIT 1 OFFSET ?", (count // 2,))
    with stack.exporter(tmp_path, db, extra=["--pack", "botflow", "--no-collector.host"]) as exporter, \
            stack.prometheus(tmp_path, exporter.address) as prom:
        stack.wait_for_scrapes(prom, 3)
        seen = 'botflow_conversations_finished_recent{bot="idle-bot", window="7d"}'
        wait_for(lambda: stack.query(prom, seen) or None, timeout=30, what="the idle bot's 7-day series")
        idle = stack.query(prom, 'sum(botflow_conversations_finished_recent{bot="idle-bot", window="24h"})')
        assert idle and float(idle[0]["value"][1]) == 0  # the case the old per-bot ratio drew as NaN
        (over_time,) = panel("botflow-bot-performance", "Outcome rates over time (24 h)")["targets"]
        shares = stack.query(prom, substitute(over_time["expr"]))
        values = [float(s["value"][1]) for s in shares]
        assert len(values) >= 3 and not any(math.isnan(v) for v in values)
        assert math.isclose(sum(values), 1, rel_tol=1e-9), values  # summed per-bot ratios add to ~#bots
        for target in panel("botflow-bot-performance", "Bot performance (last 24 h)")["targets"][1:]:
            rows = stack.query(prom, substitute(target["expr"]))
            assert rows and all(not math.isnan(float(r["value"][1])) for r in rows), target["expr"]
            assert "idle-bot" not in {r["metric"].get("bot") for r in rows}


@pytest.mark.e2e
@pytest.mark.parametrize("pack", PACKS)
def test_a_dead_exporter_leaves_every_stat_without_data(pack: str, tmp_path: Path) -> None:
    """Kill the exporter under a real Prometheus; at the kill time plus two scrape intervals (a query
    at that evaluation time, not a wait on the clock) no stat of the pack has a value to colour."""
    require_binary("prometheus")
    db = tmp_path / f"{pack}.db"
    demos.build(pack, db)
    rules = [str(p) for p in sorted((REPO / "alerts" / "packs" / pack).glob("*.yml"))]
    stats = [(uid, p["title"], substitute(t["expr"])) for uid, d in dashboards() if uid.startswith(pack)
             for p in content(d) if p["type"] == "stat" for t in p.get("targets", [])
             if re.search(r"[a-z_:]+\{", t["expr"])]  # a constant (the configured saving) reads no target
    assert stats
    with stack.exporter(tmp_path, db, extra=["--pack", pack, "--no-collector.host"]) as exporter, \
            stack.prometheus(tmp_path, exporter.address, overrides={"rule_files": rules}) as prom:
        stack.wait_for_scrapes(prom, 3)
        wait_for(lambda: all(stack.query(prom, expr) for _, _, expr in stats) or None, timeout=60,
                 what="every stat with data while the exporter is up")
        assert exporter.proc is not None
        exporter.proc.terminate()
        exporter.proc.wait(timeout=30)
        killed = time.time()  # Prometheus runs on this machine: its clock is ours
        # Two scrape intervals (1 s) after the kill, plus the one rule evaluation (1 s) a recording
        # rule's output needs to go stale after the failed scrape: Prometheus's lag, not the panel's.
        at = killed + 3
        # `at` must be past for Prometheus too (an @ in the future reads the latest samples).
        down = (f'max_over_time(up{{job="pipeline-exporter"}}[10s] @ {at}) == 1'
                f' and on() (up{{job="pipeline-exporter"}} @ {at} == 0)')
        wait_for(lambda: time.time() > at + 1 and stack.query(prom, down) or None, timeout=30,
                 what="a failed scrape recorded after the kill")
        shown = []
        for uid, title, expr in stats:
            body = prom.get("/api/v1/query", query=expr, time=str(at)).json()
            assert body["status"] == "success", body
            if body["data"]["result"]:
                shown.append(f"{uid} / {title}: {expr} = {body['data']['result']}")
        assert not shown, "\n".join(shown)
