"""The rules that derive a dashboard and alerts from a pack's metric definitions (mixin/derive*.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline_exporter import packloader
from pipeline_exporter.metricnames import sample_names
from pipeline_exporter.mixin import derive
from pipeline_exporter.mixin import derive_names as names
from pipeline_exporter.mixin.config import DEFAULT
from pipeline_exporter.mixin.derive_alerts import derive_pack, stale_expr
from pipeline_exporter.mixin.render import declared, render_pack
from pipeline_exporter.packloader import Pack, load_pack, load_pack_text
from tests.support.paths import REPO

EXAMPLE = REPO / "examples" / "ticket-desk" / "ticket_desk.yaml"

# Every kind of metric: a counter with a windowed twin, one without, a single unlabelled window,
# a timestamp gauge, a histogram, an info metric, a values metric.
ALL_KINDS = """
name: all-kinds shop
queries:
  orders:
    incremental: {key: id}
    sql: |
      SELECT channel, COUNT(*) AS n, SUM(amount) AS usd, MAX(id) AS max_key
      FROM orders WHERE id > :last_key GROUP BY channel
    metrics:
      - {name: shop_orders_total, type: counter, help: Orders., labels: [channel], value: n}
      - {name: shop_revenue_usd_total, type: counter, help: Revenue., labels: [channel], value: usd}
  orders_recent:
    windows: {time: t, periods: [1h, 24h]}
    sql: SELECT channel, t FROM orders WHERE t >= :window_start
    metrics:
      - {name: shop_orders_recent, type: gauge, help: Orders lately., labels: [channel]}
  refunds_week:
    windows: {time: t, periods: [7d], label: false}
    sql: SELECT t FROM refunds WHERE t >= :window_start
    metrics:
      - {name: shop_refunds_recent, type: gauge, help: Refunds this week.}
  last_order:
    sql: SELECT MAX(t) AS t FROM orders
    metrics:
      - {name: shop_last_order_timestamp_seconds, type: gauge, help: Last order., value: t, aggregate: max}
  stock:
    sql: SELECT kind, a, b FROM stock
    metrics:
      - {name: shop_stock_items, type: gauge, help: Items in stock., labels: [kind],
         values: {label: place, columns: {shelf: a, back: b}}}
  basket:
    sql: SELECT channel, total FROM baskets
    metrics:
      - {name: shop_basket_usd, type: histogram, help: Open baskets., labels: [channel], value: total,
         buckets: [10, 50, 100]}
  version:
    sql: SELECT v FROM meta
    metrics:
      - {name: shop_schema_info, type: info, help: Schema version., labels: [v]}
"""


def load(text: str) -> Pack:
    return load_pack_text(text, "test.yaml", Path("."))


def panels(declaration: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for row in declaration["rows"] for p in row["panels"]]


def by_title(declaration: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in panels(declaration)}


def exprs(panel: dict[str, Any]) -> list[str]:
    return [q["expr"] for q in panel["queries"]]


def metric_of_sample(pack: Pack, sample: str) -> str | None:
    return next((m.name for q in pack.queries for m in q.metrics if sample in sample_names(m)), None)


@pytest.mark.parametrize("pack", [load(ALL_KINDS), load_pack(str(EXAMPLE), REPO)], ids=["all-kinds", "example"])
def test_every_metric_of_the_pack_appears_in_a_panel(pack: Pack) -> None:
    page = next(iter(derive_pack(pack).dashboards.values()))
    shown = {metric_of_sample(pack, sample) for sample in derive.metrics_in(page)}
    wanted = {m.name for q in pack.queries for m in q.metrics}
    assert wanted - shown == set()
    assert len(wanted) >= 7


@pytest.mark.parametrize("pack", [load(ALL_KINDS), load_pack(str(EXAMPLE), REPO)], ids=["all-kinds", "example"])
def test_histograms_are_never_rated_and_every_query_is_left_open_on_the_job(pack: Pack) -> None:
    page = next(iter(derive_pack(pack).dashboards.values()))
    histograms = [m.name for q in pack.queries for m in q.metrics if m.type == "histogram"]
    assert histograms
    for p in panels(page):
        for expr in exprs(p):
            for name in histograms:
                assert not re.search(rf"(rate|increase|irate)\({name}_", expr), expr
            for selector in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}", expr):
                assert "%{target}" in selector, expr


def test_a_counter_takes_its_24h_figures_from_its_window_or_says_since_exporter_start() -> None:
    page = by_title(next(iter(derive_pack(load(ALL_KINDS)).dashboards.values())))
    assert exprs(page["Orders, last 24 h"]) == ['sum (shop_orders_recent{%{target}, window="24h"})']
    assert not any("since exporter start" in t and "Orders" in t for t in page)
    # No windowed twin: Prometheus's increase, labelled as such.
    assert exprs(page["Revenue, last 24 h (since exporter start)"]) == [
        "sum (increase(shop_revenue_usd_total{%{target}}[24h]))"]
    assert page["Revenue per day (since exporter start)"]["interval"] == "1d"
    assert page["Revenue per hour by channel"]["unit"] == "currencyUSD"
    assert exprs(page["Revenue per hour by channel"]) == [
        "sum by (channel) (rate(shop_revenue_usd_total{%{target}}[$__rate_interval]) * 3600)"]


def test_windows_are_stats_per_day_bars_and_the_longest_by_label() -> None:
    page = by_title(next(iter(derive_pack(load(ALL_KINDS)).dashboards.values())))
    assert exprs(page["Orders (1h, 24h)"]) == ["sum by (window) (shop_orders_recent{%{target}})"]
    per_day = page["Orders per day"]
    assert per_day["bars"] and per_day["interval"] == "1d"
    assert exprs(per_day) == ['sum by (channel) (shop_orders_recent{%{target}, window="24h"})']
    assert exprs(page["Orders, last 24h by channel"]) == [
        'sum by (channel) (shop_orders_recent{%{target}, window="24h"})']
    # One period and no window label: no matcher, no per-day bars.
    assert exprs(page["Refunds (7d)"]) == ["sum (shop_refunds_recent{%{target}})"]
    assert "Refunds per day" not in page


def test_gauges_now_and_over_time_timestamps_as_age_values_as_a_label() -> None:
    page = by_title(next(iter(derive_pack(load(ALL_KINDS)).dashboards.values())))
    assert exprs(page["Last order: age"]) == ["time() - max (shop_last_order_timestamp_seconds{%{target}})"]
    assert page["Last order: age"]["unit"] == "s"
    assert "Last order: age over time" in page
    assert exprs(page["Stock items by kind, place"]) == ["sum by (kind, place) (shop_stock_items{%{target}})"]


def test_histograms_as_quantiles_and_distribution_from_the_buckets() -> None:
    page = by_title(next(iter(derive_pack(load(ALL_KINDS)).dashboards.values())))
    assert exprs(page["Basket: quantiles over time"]) == [
        f"histogram_quantile({q}, sum by (le) (shop_basket_usd_bucket{{%{{target}}}}))" for q in ("0.5", "0.9", "0.99")]
    distribution = page["Basket: distribution"]
    assert exprs(distribution) == [f'sum (shop_basket_usd_bucket{{%{{target}}, le="{le}"}})'
                                   for le in ("10.0", "50.0", "100.0", "+Inf")]
    assert [q["legend"] for q in distribution["queries"]][-1] == "all"
    assert page["Basket: median by channel"]["unit"] == "currencyUSD"
    assert page["Schema"]["kind"] == "table"
    assert exprs(page["Schema"]) == ["shop_schema_info{%{target}}"]


def test_names_fit_grafana_and_never_clash_between_packs() -> None:
    long_a, long_b = "a" * 60 + "_one", "a" * 60 + "_two"
    assert len(names.uid(long_a)) <= names.UID_MAX and len(names.uid(long_b)) <= names.UID_MAX
    assert names.uid(long_a) != names.uid(long_b)
    assert names.uid("ticket_desk") == "ticket-desk-overview"
    assert names.alert_prefix("ticket_desk") == "TicketDesk"
    assert names.alert_prefix("9 lives") == "Pack9Lives"
    assert names.alert_prefix("my-pack") == "MyPack"
    first = derive_pack(load(ALL_KINDS))
    second = derive_pack(load_pack(str(EXAMPLE), REPO))
    alert_names = [{r["alert"] for g in d.alerts["groups"] for r in g["rules"]} for d in (first, second)]
    assert all(len(a) == 3 for a in alert_names)
    assert not alert_names[0] & alert_names[1]
    assert {"TicketDeskQueryFailing", "TicketDeskDataStale", "TicketDeskExporterDown"} == alert_names[1]
    assert set(first.dashboards).isdisjoint(second.dashboards)


def test_stale_alert_keeps_each_query_s_own_limit() -> None:
    pack = load(ALL_KINDS.replace("  stock:\n", "  stock:\n    stale_after: 10m\n"))
    expr = stale_expr(pack.queries)
    terms = expr.strip().split("\nor\n")
    assert len(terms) == 2
    assert terms[0].endswith("> 180") and 'query=~"orders|orders_recent|' in terms[0]
    assert terms[1] == ('time() - pipeline_exporter_query_last_success_timestamp_seconds'
                        '{%{job}, query=~"stock"} > 600')


def test_titles_units_and_prefixes_from_metric_names() -> None:
    assert names.common_prefix(["desk_a_total", "desk_b"]) == "desk_"
    assert names.common_prefix(["desk_a"]) == ""
    assert names.common_prefix(["x_a", "x_a_b"]) == "x_"
    assert names.title("desk_tickets_created_total", "desk_") == "Tickets created"
    assert names.title("desk_resolution_time_seconds", "desk_") == "Resolution time"
    assert names.unit("crm_revenue_usd_recent") == "currencyUSD"
    assert names.unit("x_ratio") == "percentunit"
    assert names.unit("x_tickets") == "short"


@pytest.mark.parametrize("name", packloader.names())
def test_every_built_in_pack_could_do_without_its_declarations(name: str) -> None:
    """The derivation knows no pack: each built-in pack's metrics, derived, render and are all shown."""
    pack = load_pack(name, REPO)
    derived = derive_pack(pack)
    page = next(iter(derived.dashboards.values()))
    shown = {metric_of_sample(pack, sample) for sample in derive.metrics_in(page)}
    assert {m.name for q in pack.queries for m in q.metrics} - shown == set()
    files = render_pack(declared(name, REPO, derived.alerts, derived.dashboards), DEFAULT)
    assert len(files) == 2 and all(len(json.loads(text)["uid"]) <= 40 for path, text in files.items()
                                   if path.endswith(".json"))


def test_the_longest_window_prefers_a_fixed_one_to_the_calendar_month() -> None:
    pack = load(ALL_KINDS.replace("periods: [1h, 24h]}", "periods: [24h, month, 30d]}"))
    page = by_title(next(iter(derive_pack(pack).dashboards.values())))
    assert exprs(page["Orders, last 30d by channel"]) == [
        'sum by (channel) (shop_orders_recent{%{target}, window="30d"})']
    only_month = load(ALL_KINDS.replace("periods: [1h, 24h]}", "periods: [month]}"))
    assert "Orders, this month by channel" in by_title(next(iter(derive_pack(only_month).dashboards.values())))
