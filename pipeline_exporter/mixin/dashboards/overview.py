"""Homepage: the status row, key metrics, pipeline funnel, response rates, top errors, sales."""

from __future__ import annotations

from typing import Any

from pipeline_exporter.mixin import alerts
from pipeline_exporter.mixin.config import seconds
from pipeline_exporter.mixin.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Context,
    Panel,
    Row,
    bargauge,
    dashboard,
    firing_alerts_stat,
    funnel,
    last_period,
    now,
    per_period,
    piechart,
    response_rate_by_channel,
    stat,
    steps,
    value_map,
)
from pipeline_exporter.mixin.promql import or_zero

# Overview areas: title, the dashboard the stat links to, and what it watches.
AREAS = {
    "deliverability": ("Deliverability", "pipeline-compliance", "Email bounces and complaints, SMS failures."),
    "flow": ("Pipeline flow", "pipeline-health", "Stuck sites, stalled outreach, the LLM budget."),
    "conversations": ("Conversations", "pipeline-conversations", "The reply rate against its own 7-day rate."),
    "system": ("System", "pipeline-system", "Cron jobs, HTTP errors, coverage, e2e tests, database, disk."),
    "exporter": ("Exporter", "pipeline-system", "The exporter, its queries, Prometheus and Alertmanager."),
}
STATE = value_map({0: ("OK", GREEN), 1: ("WARNING", ORANGE), 2: ("CRITICAL", RED)})


def area_alert_names(ctx: Context, area: str) -> list[str]:
    """The alerts of one area, from the same definitions the rules are generated from."""
    return sorted({alert.name for group in alerts.groups(ctx.config) for alert in group.alerts
                   if alert.area == area})


def area_status(ctx: Context, area: str) -> Panel:
    """2 while one of the area's alerts fires critical, 1 while one fires warning, else 0."""
    title, uid, watches = AREAS[area]
    names = area_alert_names(ctx, area)
    matchers = ('alertstate="firing"', f'alertname=~"{"|".join(names)}"')
    critical = ctx.alerts(*matchers, 'severity="critical"')
    warning = ctx.alerts(*matchers, 'severity="warning"')
    expr = f"max({critical}) * 2\nor max({warning})"
    return stat(title, f"{watches} Red while one of {', '.join(names)} fires critical, orange "
                "while one fires warning. Click through to the dashboard.",
                [now(or_zero(expr))], "none", width=4, height=3, color_mode="background",
                thresholds=steps(GREEN, (1, ORANGE), (2, RED)), mappings=STATE,
                links=ctx.dashboard_link(uid, f"Pipeline / {uid.split('-', 1)[1].capitalize()}")
                + ctx.runbook_links(*names))


def data_as_of(ctx: Context) -> Panel:
    """How old the stalest query's data is: everything on the dashboards is at least this fresh."""
    held = ctx.config.thresholds.query_failing_for
    return stat("Data as of", "Age of the oldest data the exporter serves: the time since the "
                "query that succeeded longest ago last succeeded. The slowest queries run every 5 "
                f"minutes: orange after 10 minutes, red after {held} (PipelineExporterQueryFailing).",
                [now(f"time() - min({ctx.sel('pipeline_exporter_query_last_success_timestamp_seconds')})")],
                "dtdurations", width=4, height=3, color_mode="background",
                thresholds=steps(GREEN, (600, ORANGE), (max(seconds(held), 900), RED)),
                links=ctx.runbook_links("PipelineExporterQueryFailing"))


def status_row(ctx: Context) -> Row:
    return Row("Status", [*(area_status(ctx, area) for area in AREAS), data_as_of(ctx)])


def key_metrics(ctx: Context) -> Row:
    slow = ctx.config.windows.slow
    return Row("Key metrics", [
        stat("Total sites", "Sites in the database, whatever their status.",
             [now(ctx.total("pipeline_sites"))], "short", width=4),
        stat("Outreach sent (all time)", "Outreach messages handed to a provider (sent_at set), "
             "all channels, every row the exporter has counted.",
             [now(ctx.total("pipeline_outreach_events_total", 'event="sent"'))], "short", width=4),
        last_period(ctx, "Outreach sent", "Outreach messages sent, all channels.",
                    "pipeline_outreach_sent_recent", slow, width=4),
        stat("Response rate (all time)", "Replies divided by messages sent, all channels (recording "
             "rule job:pipeline_outreach_replied_per_sent:ratio).",
             [now(ctx.sel("job:pipeline_outreach_replied_per_sent:ratio"))], "percentunit",
             width=4, decimals=1),
        stat("Sales (all time)", "Sales recorded, all channels.",
             [now(ctx.total("pipeline_sales_total"))], "short", width=4),
        firing_alerts_stat(ctx, width=4),
    ])


def activity(ctx: Context) -> Row:
    slow = ctx.config.windows.slow
    return Row("Activity", [
        per_period(ctx, "Outreach sent", "Outreach messages sent, by channel.",
                   "pipeline_outreach_sent_recent", slow, by="channel", legend="{{channel}}"),
        per_period(ctx, "Replies", "Outreach messages that got their first reply, by channel.",
                   "pipeline_outreach_replies_recent", slow, by="channel", legend="{{channel}}"),
    ])


def errors_and_sales(ctx: Context) -> Row:
    return Row("Top errors and sales", [
        bargauge("Top errors", "The ten error types that affect the most sites right now "
                 "(sites.error_type of sites with an active error). Details on Pipeline / Health.",
                 [now(or_zero(f"topk(10, {ctx.total('pipeline_site_errors', by='error_type')})"),
                      "{{error_type}}")], "short", thresholds=steps(BLUE)),
        piechart("Sales by channel (all time)", "Sales credited to each channel.",
                 [now(ctx.total("pipeline_sales_total", by="channel"), "{{channel}}")],
                 "short", width=12),
    ])


def build(ctx: Context) -> dict[str, Any]:
    return dashboard(
        ctx, "pipeline-overview", "Pipeline / Overview",
        "Executive summary of the 333 Method pipeline (the old dashboard's homepage): the status "
        "of each area first.",
        [status_row(ctx), key_metrics(ctx),
         Row("Pipeline funnel and response rates", [funnel(ctx), response_rate_by_channel(ctx, height=9)]),
         activity(ctx), errors_and_sales(ctx)],
        extra_tags=["overview"])
