"""Every dashboard query parses, names only served or recorded series, filters on $instance,
uses a proper range in rate()/increase(), and reads counters through them (or is allowed)."""

from __future__ import annotations

import re
from typing import Any, Iterator

import promql_parser as promql
import pytest

from tests.dashboards.conftest import RANGE_OK, panels_of, queries_of, recording_rules, served_metrics, substitute

# Series that are not exporter metrics but always exist in a Prometheus that scrapes it.
PROMETHEUS_SERIES = {"up", "ALERTS"}
RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta", "resets"}
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}

# Panels that read a counter's plain value on purpose: the whole-history total IS the answer
# (the old dashboard showed totals since the pipeline began, and the exporter's counters count
# database rows, so their value is that total). (dashboard uid, panel title) -> reason.
WHOLE_HISTORY = {
    ("pipeline-overview", "Outreach sent"): "all messages ever sent, as the old homepage card",
    ("pipeline-overview", "Sales"): "all sales ever made, as the old homepage card",
    ("pipeline-overview", "Sales by channel"): "distribution of all sales over channels",
    ("pipeline-outreach", "Outreach sent"): "all messages ever sent (old page's key metric)",
    ("pipeline-outreach", "Sales"): "all sales ever made (old page's key metric)",
    ("pipeline-outreach", "Revenue"): "all revenue ever made (old page's key metric)",
    ("pipeline-outreach", "Response distribution"): "distribution of all replies over channels",
    ("pipeline-outreach", "Revenue by channel"): "distribution of all revenue over channels",
    ("pipeline-outreach", "Delivery funnel by channel"): "rows per delivery step, all history",
    ("pipeline-outreach", "LLM cost"): "all LLM spend (old page's cost analysis)",
    ("pipeline-outreach", "Cost by stage"): "distribution of all LLM spend over stages",
    ("pipeline-outreach", "Cost by provider and model"): "all LLM spend per provider/model",
    ("pipeline-outreach", "Tokens by stage"): "all tokens per stage and type",
    ("pipeline-conversations", "Inbound replies"): "all inbound messages (old page's count)",
    ("pipeline-conversations", "Sentiment distribution"): "distribution of all inbound messages",
    ("pipeline-conversations", "Sentiment breakdown"): "all inbound messages per sentiment and "
                                                       "their share",
    ("pipeline-conversations", "Sentiment by channel"): "all inbound messages per channel",
    ("pipeline-conversations", "Inbound replies today"): "total now less total 24 h ago: the "
                                                         "unclassified series goes down, so no "
                                                         "increase()",
    ("pipeline-compliance", "Email opt-outs"): "all email opt-outs (old page's key metric)",
    ("pipeline-compliance", "SMS opt-outs"): "all SMS opt-outs (old page's key metric)",
    ("pipeline-compliance", "Total opt-outs"): "all opt-outs (old page's key metric)",
    ("pipeline-system", "HTTP errors by source and code (all time)"): "all HTTP errors logged",
    ("pipeline-system", "Rate-limit errors by API and stage"): "all 429s per API and stage "
                                                               "(next to the last 24 h)",
}


def walk(node: Any, inside: tuple[str, ...] = ()) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """Every node of a parsed expression with the names of the functions around it."""
    yield node, inside
    if isinstance(node, promql.Call):
        for arg in node.args:
            yield from walk(arg, (*inside, node.func.name))
    elif isinstance(node, promql.BinaryExpr):
        yield from walk(node.lhs, inside)
        yield from walk(node.rhs, inside)
    elif isinstance(node, promql.AggregateExpr):
        yield from walk(node.expr, inside)
        if node.param is not None:
            yield from walk(node.param, inside)
    elif isinstance(node, (promql.ParenExpr, promql.SubqueryExpr, promql.UnaryExpr)):
        yield from walk(node.expr, inside)
    elif isinstance(node, promql.MatrixSelector):
        yield from walk(node.vector_selector, inside)


def selectors(expr: str) -> Iterator[tuple[promql.VectorSelector, tuple[str, ...]]]:
    for node, inside in walk(promql.parse(substitute(expr))):
        if isinstance(node, promql.VectorSelector):
            yield node, inside


def all_queries(dashboards):
    return [(uid, where, expr) for uid, board in dashboards.items()
            for where, expr in queries_of(board)]


def test_every_query_parses(dashboards):
    failures = []
    for uid, where, expr in all_queries(dashboards):
        try:
            promql.parse(substitute(expr))
        except Exception as exc:  # noqa: BLE001 - the parser raises plain exceptions
            failures.append(f"{uid} {where}: {exc}\n    {expr}")
    assert not failures, "\n".join(failures)


def test_queries_name_only_served_or_recorded_series(dashboards):
    known = served_metrics() | recording_rules() | PROMETHEUS_SERIES
    unknown = [f"{uid} {where}: {node.name}"
               for uid, where, expr in all_queries(dashboards)
               for node, _ in selectors(expr) if node.name not in known]
    assert not unknown, "series neither served by the exporter nor recorded:\n" + "\n".join(unknown)


def test_the_contract_and_rules_were_read():
    """Guard against a vacuous pass: the name sets above must be the real ones."""
    served = served_metrics()
    assert {"pipeline_sites", "pipeline_outreach_events_total",
            "pipeline_site_status_age_seconds_bucket", "pipeline_host_disk_total_bytes"} <= served
    assert "channel:pipeline_outreach_bounced_per_sent:ratio24h" in recording_rules()


def test_every_selector_filters_on_the_instance_variable(dashboards):
    missing = []
    for uid, board in dashboards.items():
        for where, expr in queries_of(board):
            if where.startswith("variable instance"):
                continue  # the variable that lists the instances
            for node, _ in selectors(expr):
                if not any(m.name == "instance" and m.value == ".*"
                           for m in node.matchers.matchers):
                    missing.append(f"{uid} {where}: {node.name}")
            if "$instance" not in expr and "${instance}" not in expr:
                missing.append(f"{uid} {where}: no $instance")
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


def test_counters_are_read_through_rate_or_increase(dashboards):
    bare = set()
    for uid, board in dashboards.items():
        for panel in panels_of(board):
            for target in panel.get("targets", []):
                for node, inside in selectors(target["expr"]):
                    if node.name.endswith("_total") and not COUNTER_FUNCTIONS & set(inside):
                        bare.add((uid, panel["title"]))
    unexpected = sorted(bare - WHOLE_HISTORY.keys())
    assert not unexpected, ("counters read without rate()/increase(); add to WHOLE_HISTORY "
                            f"with a reason only if the total is the answer: {unexpected}")
    stale = sorted(WHOLE_HISTORY.keys() - bare)
    assert not stale, f"WHOLE_HISTORY entries that no longer read a bare counter: {stale}"


# Counter series that go DOWN: rows leave that label value (a run finishes, a message gets
# classified). rate()/increase() would read each decrease as a counter reset and over-count, so
# a selector of these inside them must exclude the value. metric -> (label, value).
DECREASING = {
    "pipeline_cron_job_runs_total": ("status", "running"),
    "pipeline_conversation_messages_total": ("sentiment", "unclassified"),
}


def admits(matcher: Any, value: str) -> bool:
    """Whether a label matcher lets a series with this label value through."""
    op = matcher.op
    if op == promql.MatchOp.Equal:
        return value == matcher.value
    if op == promql.MatchOp.NotEqual:
        return value != matcher.value
    matched = re.fullmatch(matcher.value, value) is not None
    return matched if op == promql.MatchOp.Re else not matched


def test_series_that_go_down_are_never_read_through_rate_or_increase(dashboards):
    bad = []
    for uid, where, expr in all_queries(dashboards):
        for node, inside in selectors(expr):
            if node.name in DECREASING and COUNTER_FUNCTIONS & set(inside):
                label, value = DECREASING[node.name]
                if all(admits(m, value) for m in node.matchers.matchers if m.name == label):
                    bad.append(f'{uid} {where}: {node.name} without excluding {label}="{value}"')
    assert not bad, "\n".join(bad)


def test_the_decreasing_series_check_catches_an_unfiltered_selector():
    """Guard against a vacuous pass: the check above must flag these."""
    for expr in ('increase(pipeline_cron_job_runs_total{instance=~"$instance"}[1h])',
                 'rate(pipeline_conversation_messages_total{sentiment=~"$sentiment"}[5m])'):
        flagged = [node for node, inside in selectors(expr)
                   if all(admits(m, DECREASING[node.name][1]) for m in node.matchers.matchers
                          if m.name == DECREASING[node.name][0])]
        assert flagged, expr


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
              or f"email {title.lower()}" == panel["title"].lower()]
    assert panels, f"no panel titled {title!r}"
    for panel in panels:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        values = [step["value"] for step in steps if step["value"] is not None]
        assert values == levels, f"{panel['title']}: thresholds {values}, expected {levels}"
