"""Every dashboard query parses, names only served or recorded series, selects the exporter's job
and $instance, uses a proper range, and never applies rate() or increase() to a counter derived
from the database (per-period panels read the windowed gauges instead)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import promql_parser as promql
import pytest

from pipeline_exporter.mixin import DEFAULT
from tests.dashboards.conftest import RANGE_OK, panels_of, queries_of, recording_rules, served_metrics, substitute
from tests.support.promql import selectors as promql_selectors
from tests.support.promql import walk

# Series that are not exporter metrics but always exist in a Prometheus that scrapes it.
PROMETHEUS_SERIES = {"up", "ALERTS"}
RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta", "resets", "deriv"}
# The exporter's own bookkeeping counters are not derived from the database.
OWN_COUNTERS = ("pipeline_exporter_",)


def selectors(expr: str) -> Iterator[tuple[promql.VectorSelector, tuple[str, ...]]]:
    return promql_selectors(substitute(expr))


def all_queries(dashboards):
    return [(uid, where, expr) for uid, board in dashboards.items()
            for where, expr in queries_of(board)]


def test_every_query_parses(dashboards):
    failures = []
    for uid, where, expr in all_queries(dashboards):
        try:
            promql.parse(substitute(expr))
        except Exception as exc:
            failures.append(f"{uid} {where}: {exc}\n    {expr}")
    assert not failures, "\n".join(failures)


def test_queries_name_only_served_or_recorded_series(dashboards):
    known = served_metrics() | recording_rules() | PROMETHEUS_SERIES
    unknown = [f"{uid} {where}: {node.name}"
               for uid, where, expr in all_queries(dashboards)
               for node, _ in selectors(expr) if node.name not in known]
    assert not unknown, "series neither served by the exporter nor recorded:\n" + "\n".join(unknown)


def test_the_metric_docs_and_rules_were_read():
    """Guard against a vacuous pass: the name sets above must be the real, Version 2 ones."""
    served = served_metrics()
    assert {"pipeline_sites", "pipeline_outreach_events_total", "pipeline_outreaches",
            "pipeline_outreach_sent_recent", "pipeline_llm_budget_usd", "pipeline_exporter_query_up",
            "pipeline_site_status_age_seconds_bucket", "pipeline_host_disk_total_bytes"} <= served
    assert "channel:pipeline_outreach_bounced_per_sent:ratio24h" in recording_rules()


def test_every_selector_selects_the_job_and_the_instance_variable(dashboards):
    """Exporter series carry the configured job; ALERTS carries service="pipeline" instead."""
    missing = []
    for uid, board in dashboards.items():
        for where, expr in queries_of(board):
            for node, _ in selectors(expr):
                matchers = {(m.name, m.value) for m in node.matchers.matchers}
                if node.name == "ALERTS":
                    if ("service", "pipeline") not in matchers:
                        missing.append(f"{uid} {where}: ALERTS without service=pipeline")
                elif ("job", DEFAULT.job) not in matchers:
                    missing.append(f"{uid} {where}: {node.name} without job=\"{DEFAULT.job}\"")
                if where.startswith("variable instance"):
                    continue  # the variable that lists the instances
                if ("instance", ".*") not in matchers:
                    missing.append(f"{uid} {where}: {node.name} without $instance")
    assert not missing, "\n".join(missing)


def test_every_range_is_rate_interval_or_explicit(dashboards):
    bad = []
    for uid, where, expr in all_queries(dashboards):
        for window in re.findall(r"\[([^\]]*)\]", expr):
            if not RANGE_OK.match(window.strip()):
                bad.append(f"{uid} {where}: [{window}]")
        for node, _ in walk(promql.parse(substitute(expr))):
            if isinstance(node, promql.Call) and node.func.name in RANGE_FUNCTIONS:
                arg = node.args[0]
                if not isinstance(arg, (promql.MatrixSelector, promql.SubqueryExpr)):
                    bad.append(f"{uid} {where}: {node.func.name} without a range")
    assert not bad, "\n".join(bad)


def test_no_panel_applies_rate_or_increase_to_a_counter_from_the_database(dashboards):
    """A prune or a restart lowers such a counter; increase() would count it all again."""
    bad = [f"{uid} {where}: {sorted(RANGE_FUNCTIONS & set(inside))}({node.name})"
           for uid, where, expr in all_queries(dashboards) for node, inside in selectors(expr)
           if RANGE_FUNCTIONS & set(inside) and node.name.endswith("_total")
           and not node.name.startswith(OWN_COUNTERS)]
    assert not bad, "\n".join(bad)


def test_the_rate_check_catches_an_increase_over_a_database_counter():
    """Guard against a vacuous pass: the check above must flag this."""
    expr = 'sum(increase(pipeline_opt_outs_total{instance=~"$instance"}[1d]))'
    assert [node.name for node, inside in selectors(expr) if "increase" in inside] == ["pipeline_opt_outs_total"]


def removed_label_uses(expr: str) -> list[str]:
    """Selectors of labels Version 2 removed: outreach states as events, sentiment on messages."""
    bad = []
    for node, _ in selectors(expr):
        for matcher in node.matchers.matchers:
            if node.name == "pipeline_outreach_events_total" and matcher.name == "event" \
                    and re.search("bounced|failed|complained", matcher.value):
                bad.append(f'{node.name}{{event="{matcher.value}"}}')
            if node.name == "pipeline_conversation_messages_total" and matcher.name == "sentiment":
                bad.append(f"{node.name}{{sentiment=...}}")
    return bad


def test_no_query_selects_a_label_version_2_removed(dashboards):
    bad = [f"{uid} {where}: {use}" for uid, where, expr in all_queries(dashboards)
           for use in removed_label_uses(expr)]
    assert not bad, "\n".join(bad)
    assert removed_label_uses('pipeline_conversation_messages_total{sentiment=~"$sentiment"}')


@pytest.mark.parametrize("title, levels", [
    ("Bounce rate", [0.05, 0.10]),
    ("Complaint rate", [0.001, 0.005]),
    ("SMS failure rate", [0.05]),
    ("Line coverage", [0.70, 0.80]),
    ("Coverage breakdown", [0.70, 0.80]),
])
def test_alert_levels_are_drawn_as_thresholds(dashboards, title, levels):
    """The old page's alert levels colour the panels that show those rates."""
    panels = [panel for board in dashboards.values() for panel in panels_of(board)
              if panel["title"].lower().startswith(title.lower())
              or panel["title"].lower().startswith(f"email {title.lower()}")]
    assert panels, f"no panel titled {title!r}"
    for panel in panels:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        values = [step["value"] for step in steps if step["value"] is not None]
        if steps[0]["color"] == "grey":  # no value is UNKNOWN (grey); the colours start at 0
            assert values[0] == 0, panel["title"]
            values = values[1:]
        assert values == levels, f"{panel['title']}: thresholds {values}, expected {levels}"
