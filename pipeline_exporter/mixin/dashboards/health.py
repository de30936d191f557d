"""Pipeline Health: totals, errors, stuck sites and how long, the funnel and errors over time, throughput."""

from __future__ import annotations

from typing import Any

from pipeline_exporter.mixin.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Context,
    Row,
    bargauge,
    dashboard,
    funnel,
    now,
    over_time,
    override,
    per_period,
    stat,
    steps,
    table,
    table_query,
    text,
    timeseries,
)
from pipeline_exporter.mixin.promql import or_zero

DAY = 86400
PROCESSING = "found|scraped|scored|rescored|proposal_ready"


# Buckets of pipeline_site_status_age_seconds (metrics.md). client_python writes a bound as
# Go's strconv.FormatFloat(f, 'g', -1, 64) does, and Prometheus 3 normalises le the same way:
# "86400.0", but "2.592e+06" from seven integer digits on. Other clients write "86400".
def _le_regex(seconds: int) -> str:
    """A PromQL regex (escaped for a double-quoted string) matching the le label of a bound."""
    forms = [f"{seconds}(\\\\.0)?"]
    digits = str(seconds)
    if len(digits) > 6:
        mantissa = f"{digits[0]}.{digits[1:]}".rstrip("0").rstrip(".")
        forms.append(f"{mantissa}e+{len(digits) - 1:02d}".replace(".", "\\\\.")
                     .replace("+", "\\\\+"))
    return "|".join(forms)


def _older_than(ctx: Context, seconds: int) -> str:
    bucket = ctx.total("pipeline_site_status_age_seconds_bucket", f'le=~"{_le_regex(seconds)}"',
                       by="status")
    return f"{ctx.total('pipeline_site_status_age_seconds_count', by='status')} - {bucket}"


def _age_quantile(ctx: Context, quantile: float) -> str:
    return (f"histogram_quantile({quantile}, "
            f"{ctx.total('pipeline_site_status_age_seconds_bucket', by='status, le')})")


def key_metrics(ctx: Context) -> Row:
    return Row("Key metrics", [
        stat("Total sites in pipeline", "Sites in the database, whatever their status.",
             [now(ctx.total("pipeline_sites"))], width=6),
        stat("Active errors", "Sites whose error_type is set: the pipeline could not process "
             "them and will retry or needs a fix.",
             [now(or_zero(ctx.total("pipeline_site_errors")))], width=6,
             thresholds=steps(GREEN, (1, ORANGE))),
        stat("Stuck sites (> 1 day)", "Sites in a processing status (found … proposal_ready) "
             "whose status has not changed for longer than the stuck threshold (default 24 h). "
             "The SitesStuck alert watches the same number per status.",
             [now(or_zero(ctx.total("pipeline_sites_stuck")))], width=6,
             thresholds=steps(GREEN, (1, ORANGE)), links=ctx.runbook_links("SitesStuck")),
        stat("Keywords", "Search keywords that find new sites.",
             [now(ctx.total("pipeline_keywords"))], width=6, thresholds=steps(BLUE)),
    ])


def funnel_and_errors(ctx: Context) -> Row:
    return Row("Status funnel and most common errors", [
        funnel(ctx),
        bargauge("Most common errors", "Sites with an active error, by error type (http_403, "
                 "http_429, timeout, parse_error, llm_error, …), most frequent first. Which "
                 "error types affect the most sites?",
                 [now(or_zero(f"sort_desc({ctx.total('pipeline_site_errors', by='error_type')})"),
                      "{{error_type}}")], height=9, thresholds=steps(ORANGE)),
    ])


def stuck_sites(ctx: Context) -> Row:
    limit = ctx.config.thresholds.sites_stuck
    return Row("Stuck sites", [
        table("Stuck sites by error type", "Sites stuck in a processing status for longer than "
              "the stuck threshold, by status and error type (none = stuck without an error, a "
              "capacity or scheduling problem rather than a failure), with how long the "
              f"longest-waiting one has waited. SitesStuck fires above {limit} in one status.",
              [table_query(ctx.total("pipeline_sites_stuck", by="status, error_type")),
               table_query(f"max by (status, error_type) ({ctx.sel('pipeline_sites_stuck_oldest_age_seconds')})")],
              width=12, height=9, sort_by="Stuck sites",
              rename={"status": "Status", "error_type": "Error type", "Value #A": "Stuck sites",
                      "Value #B": "Longest wait"},
              overrides=[override("Longest wait", unit="dtdurations")],
              links=ctx.runbook_links("SitesStuck")),
        bargauge("Longest-stuck site per error type", "For each error type, how long its "
                 "longest-stuck site has waited in its processing status (none = stuck without "
                 "an error). A long bar is a site nobody will pick up again without a fix.",
                 [now(or_zero(f"sort_desc(max by (error_type) "
                              f"({ctx.sel('pipeline_sites_stuck_oldest_age_seconds')}))"),
                      "{{error_type}}")], "dtdurations", width=12, height=9,
                 thresholds=steps(GREEN, (DAY, ORANGE), (7 * DAY, RED)),
                 links=ctx.runbook_links("SitesStuck")),
        table("How long sites have waited, by status", "For each processing status: sites "
              "waiting longer than 1, 3, 7 and 30 days (from the status age histogram), and "
              "the median and 90th percentile of the time since their status last changed.",
              [table_query(_older_than(ctx, DAY)), table_query(_older_than(ctx, 3 * DAY)),
               table_query(_older_than(ctx, 7 * DAY)), table_query(_older_than(ctx, 30 * DAY)),
               table_query(_age_quantile(ctx, 0.5)), table_query(_age_quantile(ctx, 0.9))],
              width=24, height=8,
              rename={"status": "Status", "Value #A": "> 1 day", "Value #B": "> 3 days",
                      "Value #C": "> 7 days", "Value #D": "> 30 days",
                      "Value #E": "Median wait", "Value #F": "90th percentile wait"},
              overrides=[override("Median wait", unit="dtdurations"),
                         override("90th percentile wait", unit="dtdurations"),
                         override("> 1 day", custom__cellOptions={"type": "color-text"},
                                  thresholds=steps(GREEN, (1, ORANGE)))]),
    ])


def over_time_row(ctx: Context) -> Row:
    return Row("Errors and the funnel over time", [
        timeseries("Active errors over time by error type", "Sites with an active error, by "
                   "error type, as Prometheus sampled them: did a failure mode start or stop?",
                   [over_time(ctx.total("pipeline_site_errors", by="error_type"), "{{error_type}}")],
                   "short", width=12, height=9),
        timeseries("Sites per processing status over time", "Sites in each processing status "
                   "(the funnel's working stages) over time: a stage whose line only grows is "
                   "not keeping up.",
                   [over_time(ctx.total("pipeline_sites", f'status=~"{PROCESSING}"', by="status"),
                              "{{status}}")], "short", width=12, height=9),
        timeseries("Stuck sites over time by status", "Stuck sites per processing status "
                   f"over time, against the SitesStuck level ({ctx.config.thresholds.sites_stuck}).",
                   [over_time(ctx.total("pipeline_sites_stuck", by="status"), "{{status}}")],
                   "short", width=24, height=7, threshold_lines=True,
                   thresholds=steps(GREEN, (ctx.config.thresholds.sites_stuck, ORANGE)),
                   links=ctx.runbook_links("SitesStuck")),
    ])


def throughput(ctx: Context) -> Row:
    windows = ctx.config.windows
    return Row("Throughput", [
        per_period(ctx, "Status changes", "Sites that reached each status (rows of "
                   "site_status_history): the pipeline's daily processing capacity.",
                   "pipeline_site_transitions_recent", windows.slow, by="to_status",
                   legend="{{to_status}}", width=12, height=9),
        per_period(ctx, "Status changes", "Sites that reached each status, hour by hour.",
                   "pipeline_site_transitions_recent", windows.fast, by="to_status",
                   legend="{{to_status}}", width=12, height=9),
        text("Reading this page", "What to do about errors and stuck sites.", """
**Errors** are per site (`sites.error_type`): a bar that grows means one failure mode is
spreading. `http_403` / `http_429` come from the sites or APIs blocking the scraper — see
*Pipeline / System* for the HTTP error history by source and consider residential proxies.

**Stuck sites** sit in a processing status (found … proposal_ready) longer than the stuck
threshold (default 24 h). Stuck *with* an error type: fix or clear the error. Stuck with
error type `none`: the stage is not keeping up — check the cron jobs on *Pipeline / System*.

**Status changes per day / per hour** count status changes in each period, from the rows' own
timestamps; a drop to zero for a stage means its cron job stopped.
""", width=24, height=6),
    ])


def build(ctx: Context) -> dict[str, Any]:
    return dashboard(
        ctx, "pipeline-health", "Pipeline / Health",
        "Pipeline progress and bottlenecks: errors, stuck sites and how long, the funnel and "
        "errors over time, throughput (the old dashboard's page 1, Pipeline Health & Error "
        "Analysis).",
        [key_metrics(ctx), funnel_and_errors(ctx), stuck_sites(ctx), over_time_row(ctx),
         throughput(ctx)],
        extra_tags=["health"], time_from="now-7d")
