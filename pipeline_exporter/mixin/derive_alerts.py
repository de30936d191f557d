"""Default declarations for a pack that declares no dashboard and no alert: its page (derived
from its metrics, ``derive``), a row of the exporter's health for its queries, and three alerts
(a query failing, its data stale, the exporter down) named after the pack so that the alerts of
several packs loaded together never clash (docs/packs/format.md, format 1)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pipeline_exporter.mixin import derive
from pipeline_exporter.mixin import derive_names as names
from pipeline_exporter.model import QuerySpec
from pipeline_exporter.packloader import Pack

JOB = "%{job}"
UP_MAPPINGS = {0: ["FAILED", "red"], 1: ["OK", "green"]}


@dataclass(frozen=True)
class Derived:
    """A pack's default declarations: one dashboard (by uid) and its alerts file."""

    dashboards: dict[str, dict[str, Any]]
    alerts: dict[str, Any]


def queries_matcher(queries: tuple[QuerySpec, ...]) -> str:
    """``query=~"a|b"``: the pack's queries among the exporter's self-metrics (names are identifiers)."""
    return f'query=~"{"|".join(q.name for q in queries)}"'


def health_row(pack: Pack) -> dict[str, Any]:
    """The exporter's own health for the pack's queries (docs/metrics.md, the exporter itself),
    linked to the derived alerts' runbook sections."""
    queries = pack.queries
    mine = queries_matcher(queries)
    s = derive.sel
    prefix = names.alert_prefix(pack.name)
    # A query's metrics disappear past its stale_after: red from the soonest of them.
    stale = min(q.stale_after for q in queries)
    return {"title": "Exporter health (this pack's queries)", "panels": [
        derive.panel("Exporter scraped", "stat", "Whether Prometheus scrapes the exporter (up).", "none",
                     [derive.query(f"min ({s('up')})")], (4, 6), mappings=UP_MAPPINGS, color_mode="background",
                     thresholds=["red", [1, "green"]], links=[{"runbook": f"{prefix}ExporterDown"}]),
        derive.panel("Query status", "state-timeline", "Each query's latest run: OK or FAILED "
                     "(pipeline_exporter_query_up). A failed query's metrics keep their last values until "
                     "they are stale, then disappear.", "none",
                     [derive.query(f"min by (query) ({s('pipeline_exporter_query_up', mine)})", "{{query}}",
                                   instant=False)], (20, 6), mappings=UP_MAPPINGS,
                     links=[{"runbook": f"{prefix}QueryFailing"}]),
        derive.panel("Time since each query's last success", "bargauge", "Now minus "
                     "pipeline_exporter_query_last_success_timestamp_seconds: a query's metrics disappear once "
                     "this passes its stale_after.", "s",
                     [derive.query("time() - max by (query) "
                                   f"({s('pipeline_exporter_query_last_success_timestamp_seconds', mine)})",
                                   "{{query}}")], (8, 8), thresholds=["green", [stale, "red"]],
                     links=[{"runbook": f"{prefix}DataStale"}]),
        derive.panel("Query errors per hour", "timeseries", "Failed runs of each query "
                     "(increase of pipeline_exporter_query_errors_total over an hour).", "short",
                     [derive.query("sum by (query) (increase("
                                   f"{s('pipeline_exporter_query_errors_total', mine)}[1h]))", "{{query}}")],
                     (8, 8)),
        derive.panel("Query duration p95", "timeseries", "95th percentile of each query's run time "
                     "(pipeline_exporter_query_duration_seconds, the exporter's own histogram of every run).", "s",
                     [derive.query("histogram_quantile(0.95, sum by (le, query) (rate("
                                   f"{s('pipeline_exporter_query_duration_seconds_bucket', mine)}"
                                   "[$__rate_interval])))", "{{query}}")], (8, 8)),
    ]}


def dashboard(pack: Pack) -> dict[str, Any]:
    """The pack's derived page: a row per query, then the exporter's health for them."""
    uid = names.uid(pack.name)
    shown = names.plain(pack.name)
    return {"format": derive.FORMAT, "uid": uid, "title": f"{shown} (derived)",
            "description": f"Derived by `pipeline-exporter mixin` from the metric definitions of pack {shown} "
                           "(it declares no dashboard): every metric by its type and labels, and the exporter's "
                           "health for the pack's queries.",
            "tags": [names.slug(pack.name), "derived"],
            "rows": [*derive.query_rows(pack.queries), health_row(pack)]}


def stale_expr(queries: tuple[QuerySpec, ...]) -> str:
    """Time since a query's last success beyond its own stale_after (one term per limit)."""
    by_limit: dict[float, list[str]] = defaultdict(list)
    for q in queries:
        by_limit[q.stale_after].append(q.name)
    terms = [f"time() - pipeline_exporter_query_last_success_timestamp_seconds"
             f'{{{JOB}, query=~"{"|".join(group)}"}} > {limit:g}' for limit, group in sorted(by_limit.items())]
    return "\nor\n".join(terms) + "\n"


def alerts(pack: Pack, dashboard_uid: str) -> dict[str, Any]:
    """The alerts file: thresholds as parameters (a mixin config overrides them), three alerts."""
    prefix = names.alert_prefix(pack.name)
    mine = queries_matcher(pack.queries)
    shown = names.safe(pack.name)
    common = {"dashboard": dashboard_uid, "area": shown, "labels": {"pack": shown}}
    slug = names.slug(pack.name)
    limits = ", ".join(sorted({f"{q.stale_after:g} s" for q in pack.queries}))
    rules = [
        {"alert": f"{prefix}QueryFailing", "severity": "warning",
         "expr": f"pipeline_exporter_query_up{{{JOB}, {mine}}} == 0\n", "for": "%{query_failing_for}",
         "keep_firing_for": "10m",
         "summary": f"A query of pack {shown} keeps failing.",
         "description": f"The latest run of query {{{{ $labels.query }}}} (pack {shown}) on "
                        "{{ $labels.instance }} failed and no run has succeeded since. Its metrics keep their last "
                        "values until they are stale, then disappear. The exporter's log names the error (a "
                        "changed schema, a missing table, a locked or unreachable database).",
         "resolved": "The query's latest run succeeded.",
         "condition": "`pipeline_exporter_query_up == 0` for one of the pack's queries, for %{query_failing_for}",
         "why": "query_up holds the latest run's result until the next run, so a slow query does not flap.",
         **common},
        {"alert": f"{prefix}DataStale", "severity": "warning", "expr": stale_expr(pack.queries),
         "for": "%{stale_for}", "keep_firing_for": "10m",
         "summary": f"Metrics of pack {shown} are stale: a query has not succeeded for too long.",
         "description": f"Query {{{{ $labels.query }}}} (pack {shown}) on {{{{ $labels.instance }}}} last "
                        "succeeded {{ $value | humanizeDuration }} ago, longer than its stale_after: its metrics "
                        "have disappeared from /metrics and the dashboard shows no data for them.",
         "resolved": "The query succeeded again: its metrics are fresh.",
         "condition": f"time since a query's last success > its stale_after ({limits}), for %{{stale_for}}",
         "why": "Each query's own staleness limit (stale_after), one term per limit.", **common},
        {"alert": f"{prefix}ExporterDown", "severity": "critical",
         "expr": f"up{{{JOB}}} == 0\nor\nabsent(up{{{JOB}}})\n", "for": "%{exporter_down_for}",
         "summary": f"Prometheus cannot scrape the exporter of pack {shown}.",
         "description": "{{ if $labels.instance }}Prometheus has failed to scrape {{ $labels.instance }} (job "
                        "{{ $labels.job }}){{ else }}Prometheus has no target for job {{ $labels.job }}{{ end }}: "
                        f"every metric and alert of pack {shown} is blind. Check that the exporter runs, its "
                        "/-/healthy endpoint and log, and the scrape config (Status > Targets).",
         "resolved": "Prometheus scrapes the exporter again.",
         "condition": "`up == 0`, or no such target at all (`absent`), for %{exporter_down_for}",
         "why": "Two ways to be blind in one rule: the target is down, or there is none.", **common},
    ]
    return {
        "format": derive.FORMAT,
        "title": shown,
        "note": "derived from the pack's metric definitions: it declares no alert",
        "headers": {"alerts": f"Alerts of pack {shown}, derived from its metric definitions "
                              f"({names.safe(pack.origin)}; docs/packs/derived.md)."},
        # The derived alerts are explained on one page, the same for every pack.
        "runbook": "packs/derived.md",
        "output": {"alerts": f"alerts/packs/{slug}/{slug}-alerts.yml",
                   "recording": f"alerts/packs/{slug}/{slug}-recording-rules.yml",
                   "dashboards": f"grafana/packs/{slug}"},
        "parameters": {
            "query_failing_for": {"type": "duration", "default": "15m",
                                  "help": "how long a query fails before its alert fires"},
            "stale_for": {"type": "duration", "default": "5m",
                          "help": "how long a query's data is stale before its alert fires"},
            "exporter_down_for": {"type": "duration", "default": "5m",
                                  "help": "how long the exporter is down before its alert fires"},
        },
        "recording": [],
        "groups": [{"name": f"{slug}.derived-alerts",
                    "why": f"Default alerts of pack {shown}, derived from its queries (it declares none).",
                    "rules": rules}],
    }


def derive_pack(pack: Pack) -> Derived:
    """The default declarations of a pack that declares none."""
    page = dashboard(pack)
    return Derived(dashboards={page["uid"]: page}, alerts=alerts(pack, page["uid"]))
