"""The declaration format (docs/packs/format.md) and its renderer, on a small pack of our own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin import DEFAULT, MixinConfig, load_pack, packs, render_pack
from pipeline_exporter.mixin.render.format import Values

ALERTS = {
    "format": 1,
    "parameters": {
        "stuck_rows": {"type": "integer", "default": 50, "help": "rows stuck before it warns"},
        "error_ratio": 0.1,
        "hold": {"type": "duration", "default": "15m"},
        "budget": {"type": "number", "default": None},
    },
    "recording": [{"name": "shop.recording", "rules": [
        {"record": "shop:orders:sum", "expr": "sum by (job, instance) (shop_orders{%{job}})"},
        {"record": "shop:budget", "expr": "vector(%{budget})", "if": "budget"},
        {"raw": {"record": "shop:raw", "expr": "vector(1)", "labels": {"team": "shop"}}},
    ]}],
    "groups": [{"name": "shop.alerts", "why": "The shop's alerts.", "rules": [
        {"alert": "ShopOrdersStuck", "severity": "warning",
         "expr": "shop_orders_stuck{%{job}} > %{stuck_rows}", "for": "%{hold}", "keep_firing_for": "5m",
         "summary": "Orders are stuck.", "description": "{{ $value }} orders stuck (over %{stuck_rows}).",
         "resolved": "Orders flow again.", "dashboard": "shop-home",
         "condition": "> %{stuck_rows} stuck, errors over %{error_ratio|percent}, for %{hold|human}"},
    ]}],
}
DASHBOARD = {
    "format": 1, "uid": "shop-home", "title": "Shop", "description": "The shop.",
    "variables": [{"name": "store", "label": "Store", "query": "label_values(shop_orders{%{job}}, store)"}],
    "rows": [{"title": "Now", "panels": [
        {"title": "Orders", "kind": "stat", "unit": "short", "metric": "shop_orders", "by": "store",
         "matchers": ['store=~"$store"'], "thresholds": ["green", ["%{stuck_rows}", "orange"]],
         "links": [{"runbook": "ShopOrdersStuck"}]},
        {"title": "Over time", "kind": "timeseries", "unit": "short", "bars": True, "interval": "1d",
         "queries": [{"expr": "sum(shop_orders{%{target}})", "legend": "orders"}],
         "grafana": {"options": {"tooltip": {"sort": "none"}}}},
        {"raw": {"type": "news", "title": "Raw"}, "size": [24, 3]},
    ]}],
}


def write_pack(folder: Path, alerts: dict, dashboard: dict) -> Path:
    (folder / "dashboards").mkdir(parents=True)
    (folder / "alerts.yaml").write_text(yaml.safe_dump(alerts, sort_keys=False), encoding="utf-8")
    (folder / "dashboards" / f"{dashboard['uid']}.yaml").write_text(yaml.safe_dump(dashboard), encoding="utf-8")
    return folder


def render(tmp_path: Path, config: MixinConfig = DEFAULT, alerts: dict = ALERTS,
           dashboard: dict = DASHBOARD) -> dict[str, str]:
    return render_pack(load_pack(write_pack(tmp_path / "shop", alerts, dashboard)), config)


def test_rules_fill_the_job_and_the_parameters(tmp_path):
    files = render(tmp_path, MixinConfig(job="mine"))
    rules = yaml.safe_load(files["alerts/packs/shop/shop-alerts.yml"])["groups"][0]["rules"][0]
    assert rules["expr"] == 'shop_orders_stuck{job="mine"} > 50\n'
    assert rules["for"] == "15m" and rules["keep_firing_for"] == "5m"
    assert rules["labels"] == {"severity": "warning", "service": "pipeline"}
    assert rules["annotations"]["dashboard_url"] == "/d/shop-home?orgId=1"  # a path: no Grafana URL set
    assert rules["annotations"]["runbook_url"].endswith("/docs/packs/shop.md#shopordersstuck")
    recording = yaml.safe_load(files["alerts/packs/shop/shop-recording-rules.yml"])["groups"][0]["rules"]
    assert [rule["record"] for rule in recording] == ["shop:orders:sum", "shop:raw"]  # budget unset
    assert recording[1]["labels"] == {"team": "shop"}



def with_rule(**changes) -> dict:
    """ALERTS with the alert changed (None removes a key) and the group's keep_firing_for set."""
    rule = {**ALERTS["groups"][0]["rules"][0], **changes}
    rule = {key: value for key, value in rule.items() if value is not None}
    group = {**ALERTS["groups"][0], "keep_firing_for": "10m", "rules": [rule]}
    return {**ALERTS, "groups": [group]}


def test_a_held_alert_counts_its_span_inside_the_expression(tmp_path):
    files = render(tmp_path, alerts=with_rule(hold="%{hold}", keep_firing_for=None, **{"for": None}))
    rule = yaml.safe_load(files["alerts/packs/shop/shop-alerts.yml"])["groups"][0]["rules"][0]
    assert rule["for"] == "1m" and rule["keep_firing_for"] == "10m"  # the group's
    assert rule["expr"] == ('(\n  shop_orders_stuck{job="pipeline-exporter"} > 50\n)\nand\ncount_over_time(\n'
                            '  (\n    0 * (\n      shop_orders_stuck{job="pipeline-exporter"} > 50\n'
                            '    )\n  )[25m:1m]\n) >= 15\n')


def test_a_rule_opts_out_of_its_groups_keep_firing_for(tmp_path):
    files = render(tmp_path, alerts=with_rule(keep_firing_for="0s"))
    rule = yaml.safe_load(files["alerts/packs/shop/shop-alerts.yml"])["groups"][0]["rules"][0]
    assert "keep_firing_for" not in rule and rule["for"] == "15m"


@pytest.mark.parametrize("changes, message", [
    ({"hold": "1h"}, "takes `hold` or `for`, not both"),
    ({"hold": "90s", "for": None}, "whole minutes"),
    ({"hold": "soon", "for": None}, "Prometheus duration"),
])
def test_a_wrong_hold_is_refused(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        render(tmp_path, alerts=with_rule(**changes))

def test_parameters_are_overridden_by_name_and_checked(tmp_path):
    files = render(tmp_path, MixinConfig(parameters={"stuck_rows": 80, "hold": "1h30m", "budget": 300}))
    text = files["alerts/packs/shop/shop-alerts.yml"]
    assert "> 80\n" in text and "for: 1h30m" in text
    assert "vector(300)" in files["alerts/packs/shop/shop-recording-rules.yml"]
    with pytest.raises(ConfigError, match="parameters.stuck_rows: must be an integer"):
        render(tmp_path / "b", MixinConfig(parameters={"stuck_rows": 1.5}))
    with pytest.raises(ConfigError, match="parameters.hold.*duration"):
        render(tmp_path / "c", MixinConfig(parameters={"hold": "soon"}))


def test_dashboard_panels_layout_and_escape_hatches(tmp_path):
    board = json.loads(render(tmp_path)["grafana/packs/shop/shop-home.json"])
    assert board["uid"] == "shop-home" and "pipeline" in board["tags"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "instance", "store"]
    row, stat, series, raw = board["panels"]
    assert row["type"] == "row" and [p["id"] for p in (row, stat, series, raw)] == [1, 2, 3, 4]
    assert stat["targets"][0]["expr"] == \
        'sum by (store) (shop_orders{job="pipeline-exporter", instance=~"$instance", store=~"$store"})'
    assert stat["targets"][0]["instant"] is True
    assert stat["fieldConfig"]["defaults"]["thresholds"]["steps"][1] == {"color": "orange", "value": 50}
    assert stat["links"][0]["url"].endswith("/docs/packs/shop.md#shopordersstuck")
    assert series["targets"][0]["instant"] is False and series["interval"] == "1d"
    assert series["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars"
    assert series["options"]["tooltip"] == {"mode": "multi", "sort": "none"}   # the grafana: patch
    assert raw["type"] == "news" and raw["gridPos"] == {"h": 3, "w": 24, "x": 0, "y": 9}


def test_a_file_without_a_known_format_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"alerts\.yaml: format"):
        render(tmp_path, alerts={**ALERTS, "format": 7})
    with pytest.raises(ConfigError, match="shop-home.yaml: format"):
        render(tmp_path / "b", dashboard={key: value for key, value in DASHBOARD.items() if key != "format"})


def test_an_unknown_placeholder_or_filter_names_the_file(tmp_path):
    bad = {**DASHBOARD, "description": "%{nope}"}
    with pytest.raises(ConfigError, match=r"shop-home\.yaml: description: unknown placeholder %\{nope\}"):
        render(tmp_path, dashboard=bad)
    values = Values(MixinConfig(), {"x": 0.5}, "f.yaml")
    assert values.text("%{x|times} / %{x|percent} / %{x:.0%} / %%{x}") == "half / 50 % / 50% / %{x}"
    with pytest.raises(ConfigError, match="unknown filter"):
        values.text("%{x|loud}")


def test_the_built_in_packs_are_found_by_their_folders():
    assert set(packs()) == {"method333", "botflow", "crm", "scraper"}
    for pack in packs().values():
        assert pack.dashboards and pack.alerts.get("groups")
        assert all(len(uid) <= 40 for uid in pack.dashboards)


@pytest.mark.parametrize(("spec", "key", "problem"), [
    ({"type": "number", "default": -1, "min": 0}, "parameters.x.default", "must be at least 0, got -1"),
    ({"type": "integer", "default": 5, "max": 4}, "parameters.x.default", "must be at most 4, got 5"),
    ({"type": "duration", "default": "30s", "min": "1m"}, "parameters.x.default", "must be at least 1m, got 30s"),
    ({"type": "number", "default": 1, "min": 2, "max": 1}, "parameters.x.max", "must be at least min (2), got 1"),
    ({"type": "string", "default": "a", "min": 0}, "parameters.x.min", "only a number, integer or duration"),
])
def test_a_declared_bound_is_checked_naming_the_file(tmp_path, spec, key, problem):
    alerts = {**ALERTS, "parameters": {**ALERTS["parameters"], "x": spec}}
    with pytest.raises(ConfigError) as caught:
        render(tmp_path, alerts=alerts)
    assert str(caught.value).startswith(f"{tmp_path / 'shop' / 'alerts.yaml'}: {key}: {problem}"), str(caught.value)


def test_an_override_outside_a_bound_names_the_config(tmp_path):
    alerts = {**ALERTS, "parameters": {**ALERTS["parameters"], "stuck_rows": {"type": "integer", "default": 50,
                                                                              "min": 1}}}
    with pytest.raises(ConfigError, match="parameters.stuck_rows: must be at least 1, got 0"):
        render(tmp_path, MixinConfig(parameters={"stuck_rows": 0}), alerts=alerts)


def test_the_mixin_types_parameters_as_the_exporter_does():
    """One type system (pipeline_exporter/parameters.py, durations): a boolean is no string, a
    duration is any PromQL duration, and a value PromQL cannot read is refused where it goes."""
    from pipeline_exporter.mixin.render.format import check, parameter

    with pytest.raises(ConfigError, match=r"a\.yaml: parameters\.paging: true/false is not a parameter type"):
        parameter("paging", True, "a.yaml")
    assert parameter("window", "1y", "a.yaml").type == "duration"       # every Prometheus unit
    assert parameter("window", "500ms", "a.yaml").type == "duration"
    assert parameter("label", "90", "a.yaml").type == "string"           # PromQL reads no bare number as a range
    hold = parameter("hold", {"type": "duration", "default": "5m"}, "a.yaml")
    with pytest.raises(ConfigError, match="parameters.hold: must be a Prometheus duration"):
        check(hold, "1.5h", "c.yml", "parameters.hold")                  # the exporter takes it, PromQL does not
    rows = parameter("rows", {"type": "list", "default": [1, 2]}, "a.yaml")
    with pytest.raises(ConfigError, match="item 0 must be a number or a string"):
        check(rows, [None], "c.yml", "parameters.rows")


def _period_board(tmp_path: Path, panel: dict, config: MixinConfig = DEFAULT) -> dict:
    dashboard = {**DASHBOARD, "rows": [{"title": "Days", "panels": [panel]}]}
    return json.loads(render(tmp_path, config, dashboard=dashboard)["grafana/packs/shop/shop-home.json"])


def test_a_counter_period_panel_draws_calendar_days_so_far(tmp_path):
    """``counter:`` + ``period: 1d``: bars of the counter's last sample in each day minus its last one
    before it, one step a day, the panel's own range from a midnight 7 days back, drawn after the
    day's start; a label set new in the day counts from 0 only when the counter was there before."""
    board = _period_board(tmp_path, {"title": "Orders per day", "counter": "shop_orders_total", "by": "store",
                                     "matchers": ['store=~"$store"'], "legend": "{{store}}", "period": "1d",
                                     "stack": True})
    _, bars = board["panels"]
    sel = 'shop_orders_total{job="pipeline-exporter", instance=~"$instance", store=~"$store"}'
    assert bars["targets"][0]["expr"] == (
        f"sum by (store) (\n  last_over_time({sel}[1d] offset -1d)\n  - (\n"
        f"    last_over_time({sel}[1d])\n    or\n"
        f"    last_over_time({sel}[1d] offset -1d) * 0\n"
        f"    and on (job, instance) group by (job, instance) (last_over_time({sel}[1d]))\n  )\n)")
    assert bars["targets"][0]["legendFormat"] == "{{store}}" and bars["targets"][0]["range"] is True
    assert (bars["type"], bars["interval"], bars["timeFrom"]) == ("timeseries", "1d", "now-7d/d")
    custom = bars["fieldConfig"]["defaults"]["custom"]
    assert (custom["drawStyle"], custom["barAlignment"], custom["stacking"]["mode"]) == ("bars", 1, "normal")
    assert board["timezone"] == "utc"


def test_period_panels_per_hour_from_a_window_and_their_errors(tmp_path):
    hourly = _period_board(tmp_path / "a", {"title": "Orders per hour", "counter": "shop_orders_total",
                                            "period": "1h", "history": "48h"})["panels"][1]
    assert hourly["interval"] == "1h" and hourly["timeFrom"] == "now-48h/h"
    assert hourly["targets"][0]["expr"].startswith("sum (\n  last_over_time(shop_orders_total{")
    window = _period_board(tmp_path / "b", {"title": "Orders per day", "period": "1d", "queries": [
        'sum(shop_orders_recent{%{target}, window="24h"})']})["panels"][1]
    assert window["fieldConfig"]["defaults"]["custom"]["barAlignment"] == -1   # the day that ENDS there
    assert window["timeFrom"] == "now-7d/d"
    for index, (bad, message) in enumerate([
            ({"period": "1w", "counter": "x_total"}, "period: must be one of 1d, 1h"),
            ({"period": "1d", "counter": "x_total", "kind": "stat"}, "kind: a period: panel is a timeseries"),
            ({"period": "1d"}, "period: needs counter:"),
            ({"period": "1d", "counter": "x_total", "queries": ["x"]}, "give counter: or queries:, not both")]):
        with pytest.raises(ConfigError, match=message):
            _period_board(tmp_path / f"e{index}", {"title": "Bad", **bad})


def test_the_dashboards_time_zone_is_utc_unless_configured(tmp_path):
    assert _period_board(tmp_path / "a", {"title": "T", "kind": "text"},
                         MixinConfig(timezone="Europe/Paris"))["timezone"] == "Europe/Paris"
    assert _period_board(tmp_path / "b", {"title": "T", "kind": "text"},
                         MixinConfig(timezone=""))["timezone"] == ""
    from pipeline_exporter.mixin.config import load
    with pytest.raises(ConfigError, match="timezone: must be"):
        load(timezone="Mars/Olympus")
    assert load(timezone="America/New_York").timezone == "America/New_York"


def test_no_value_is_said_by_every_kind_never_drawn_as_healthy():
    """The renderer's defaults (docs/packs/format.md, ``unknown``): a kind that colours a value maps
    null/NaN to a grey UNKNOWN; a table says UNKNOWN; a chart says it has no data."""
    from pipeline_exporter.mixin.render.panels import Links, panel

    def defaults(**decl):
        body = panel({"title": "t", "queries": ["x"], **decl}, Links(lambda name: name), "here").body
        return body["fieldConfig"]["defaults"]

    for kind in ("stat", "gauge", "bargauge"):
        got = defaults(kind=kind, thresholds=["green"], mappings={0: ["OK", "green"], 1: ["BAD", "red"]})
        assert got["noValue"] == "UNKNOWN", kind
        assert got["mappings"][-1] == {"type": "special", "options": {
            "match": "null+nan", "result": {"text": "UNKNOWN", "color": "grey", "index": 2}}}, kind
        opted_out = defaults(kind=kind, unknown=False)
        assert "noValue" not in opted_out and opted_out["mappings"] == [], kind
    assert defaults(kind="table")["noValue"] == "UNKNOWN"
    for kind in ("timeseries", "state-timeline", "barchart", "piechart"):
        got = defaults(kind=kind)
        assert got["noValue"] == "No data \u2014 exporter not scraped?", kind
        assert not [m for m in got["mappings"] if m["type"] == "special"], kind
