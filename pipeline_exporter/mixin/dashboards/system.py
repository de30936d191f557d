"""System Health: cron jobs, coverage, e2e tests, IP burnout, rate limits, database, host, exporter."""

from __future__ import annotations

from typing import Any

from pipeline_exporter.mixin.config import seconds
from pipeline_exporter.mixin.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    TEXT,
    YELLOW,
    Context,
    Row,
    barchart,
    bargauge,
    dashboard,
    firing_alerts_stat,
    fixed_colour,
    gauge,
    now,
    over_time,
    override,
    per_period,
    stat,
    state_timeline,
    steps,
    table,
    table_query,
    text,
    timeseries,
    value_map,
)
from pipeline_exporter.mixin.promql import or_zero

CRON_KEYS = "job, instance, cron_job"
CODE_403, CODE_429, CODE_503 = 'code="403"', 'code="429"', 'code="503"'
RESULTS = ["passed", "failed", "skipped"]
# -1 disabled, 0 last run succeeded, 1 last run failed: the state timeline's colours.
CRON_STATES = value_map({-1: ("disabled", TEXT), 0: ("success", GREEN), 1: ("failed", RED)})
UP_DOWN = value_map({0: ("DOWN", RED), 1: ("UP", GREEN)})


def _cell_colours(column: str, mapping: dict[int, tuple[str, str]]) -> dict[str, Any]:
    return override(column, mappings=value_map(mapping),
                    custom__cellOptions={"type": "color-background", "mode": "basic"})


def _since_last_run(ctx: Context) -> str:
    return f"time() - {ctx.sel('pipeline_cron_job_last_run_timestamp_seconds')}"


def _overdue(ctx: Context) -> str:
    """Same rule as CronJobStale: enabled and not started for N intervals, or never run."""
    factor = ctx.config.thresholds.cron_stale_intervals
    enabled = ctx.sel("pipeline_cron_job_enabled")
    return (f"((({_since_last_run(ctx)}) > bool ({factor:g} * "
            f"{ctx.sel('pipeline_cron_job_expected_interval_seconds')})) * on({CRON_KEYS}) {enabled})"
            f" or ({enabled} unless on({CRON_KEYS}) {ctx.sel('pipeline_cron_job_last_run_timestamp_seconds')})")


def _cron_state(ctx: Context) -> str:
    """Per job over time: -1 disabled, else whether the latest finished run failed."""
    enabled = ctx.sel("pipeline_cron_job_enabled")
    failed = ctx.sel("pipeline_cron_job_last_run_failed")
    return (f"max by (cron_job) ({failed} and on({CRON_KEYS}) {enabled} == 1)\n"
            f"or max by (cron_job) ({enabled} == 0) - 1")


def cron_jobs(ctx: Context) -> Row:
    fast = ctx.config.windows.fast
    factor = ctx.config.thresholds.cron_stale_intervals
    return Row("Cron jobs", [
        stat("Failed jobs", "Enabled cron jobs whose latest finished run failed (CronJobFailed).",
             [now(or_zero(f"count({ctx.sel('pipeline_cron_job_last_run_failed')} == 1 "
                          f"and on({CRON_KEYS}) {ctx.sel('pipeline_cron_job_enabled')} == 1)"))],
             width=6, height=4, color_mode="background", thresholds=steps(GREEN, (1, RED)),
             links=ctx.runbook_links("CronJobFailed")),
        stat("Overdue jobs", f"Enabled cron jobs that have not started for more than {factor:g} "
             "times their expected interval, or have never run (CronJobStale).",
             [now(or_zero(f"count(({_overdue(ctx)}) == 1)"))], width=6, height=4,
             color_mode="background", thresholds=steps(GREEN, (1, ORANGE)),
             links=ctx.runbook_links("CronJobStale")),
        stat("Running now", "Cron job runs in status running.",
             [now(or_zero(ctx.total("pipeline_cron_job_running")))], width=6, height=4,
             thresholds=steps(BLUE)),
        firing_alerts_stat(ctx, width=6, height=4),
        table("Cron job status", "One row per cron job: what it does, how long ago it last "
              "started, whether its latest finished run failed, and whether it is overdue "
              f"(enabled and not started for more than {factor:g} times its expected interval, or "
              "never run, as the CronJobStale alert).",
              [table_query(ctx.sel("pipeline_cron_job_info")),
               table_query(_since_last_run(ctx)),
               table_query(ctx.sel("pipeline_cron_job_last_run_failed")),
               table_query(_overdue(ctx)),
               table_query(ctx.sel("pipeline_cron_job_enabled")),
               table_query(ctx.sel("pipeline_cron_job_expected_interval_seconds")),
               table_query(ctx.sel("pipeline_cron_job_running"))],
              "short", width=24, height=10, hide=["Value #A", "instance"],
              rename={"cron_job": "Job", "description": "Description",
                      "Value #B": "Last run (ago)", "Value #C": "Last result",
                      "Value #D": "Overdue", "Value #E": "Enabled",
                      "Value #F": "Expected interval", "Value #G": "Running"},
              overrides=[override("Last run (ago)", unit="dtdurations"),
                         override("Expected interval", unit="dtdurations"),
                         _cell_colours("Last result", {0: ("success", GREEN), 1: ("failed", RED)}),
                         _cell_colours("Overdue", {0: ("on time", GREEN), 1: ("overdue", ORANGE)}),
                         _cell_colours("Enabled", {0: ("disabled", TEXT), 1: ("enabled", BLUE)})],
              links=ctx.runbook_links("CronJobFailed", "CronJobStale")),
        state_timeline("Cron job results over time", "Each job's latest finished run over "
                       "time: green while it succeeded, red while it failed, grey while the job "
                       "is disabled (CronJobFailed fires on an enabled job's red).",
                       [over_time(_cron_state(ctx), "{{cron_job}}")], mappings=CRON_STATES,
                       width=24, height=9, links=ctx.runbook_links("CronJobFailed")),
        per_period(ctx, "Cron runs", "Finished cron job runs by result (success, failed).",
                   "pipeline_cron_job_runs_recent", fast, by="status", legend="{{status}}",
                   overrides=[fixed_colour("success", GREEN), fixed_colour("failed", RED)]),
        bargauge("Run duration (90th percentile)", "90th percentile of finished runs' duration "
                 "per job (duration histogram of the current rows).",
                 [now("histogram_quantile(0.9, "
                      + ctx.total("pipeline_cron_job_duration_seconds_bucket", by="cron_job, le")
                      + ")", "{{cron_job}}")], "s", width=12, height=8, thresholds=steps(BLUE)),
    ])


def quality(ctx: Context) -> Row:
    thresholds = ctx.config.thresholds
    coverage = steps(RED, (thresholds.coverage.warning, ORANGE), (thresholds.coverage_target, GREEN))
    return Row("Code coverage and end-to-end tests", [
        gauge("Line coverage", "Lines covered by the test suite (Istanbul coverage summary). "
              f"CodeCoverageLow below {thresholds.coverage.warning:.0%}, target "
              f"{thresholds.coverage_target:.0%} or more.",
              [now(ctx.sel("pipeline_code_coverage_ratio", 'metric="lines"'))], "percentunit",
              width=5, height=7, minimum=0, maximum=1, decimals=1, thresholds=coverage,
              links=ctx.runbook_links("CodeCoverageLow")),
        bargauge("Coverage breakdown", "Lines, statements, functions and branches covered; the "
                 "colours follow the alert level and the target.",
                 [now(ctx.sel("pipeline_code_coverage_ratio"), "{{metric}}")], "percentunit",
                 width=7, height=7, minimum=0, maximum=1, decimals=1, thresholds=coverage),
        stat("E2E failed tests", "Failed test cases in the latest end-to-end JUnit report "
             "(E2ETestsFailing).",
             [now(or_zero(ctx.total("pipeline_e2e_tests", 'result="failed"')))], width=3, height=7,
             color_mode="background", thresholds=steps(GREEN, (1, RED)),
             links=ctx.runbook_links("E2ETestsFailing")),
        barchart("E2E results by suite", "Test cases in the latest end-to-end report by suite "
                 "(Email, SMS, Inbound, Full Pipeline, …), coloured by result: passed green, "
                 "failed red, skipped grey (E2ETestsFailing fires on any failed).",
                 table_query(ctx.total("pipeline_e2e_tests", by="suite, result")),
                 row_label="suite", column_label="result", columns=RESULTS, width=9, height=7,
                 stacking="normal",
                 overrides=[fixed_colour("passed", GREEN), fixed_colour("failed", RED),
                            fixed_colour("skipped", TEXT)],
                 links=ctx.runbook_links("E2ETestsFailing")),
        text("Code quality", "The old page's coverage and e2e guidance.", """
**Coverage** below the alert level raises `CodeCoverageLow`; the team's target is higher (the
gauge's green band). Branch coverage is usually the lowest: add tests for error paths first.

**E2E**: a failed suite (Email, SMS, Inbound, Full Pipeline) means the live integrations are
broken; fix before the next outreach batch.
""", width=8, height=5),
        stat("Coverage report age", "Time since the coverage summary file was written.",
             [now(f"time() - {ctx.sel('pipeline_code_coverage_report_timestamp_seconds')}")],
             "dtdurations", width=4, height=5, thresholds=steps(BLUE)),
        stat("E2E report age", "Time since the end-to-end JUnit report was written.",
             [now(f"time() - {ctx.sel('pipeline_e2e_report_timestamp_seconds')}")], "dtdurations",
             width=4, height=5, thresholds=steps(BLUE)),
        bargauge("E2E duration by suite", "Run time of each suite in the latest report.",
                 [now(ctx.sel("pipeline_e2e_duration_seconds"), "{{suite}}")], "s", width=8,
                 height=5, thresholds=steps(BLUE)),
    ], collapsed=True)


def ip_burnout(ctx: Context) -> Row:
    windows, thresholds = ctx.config.windows, ctx.config.thresholds
    fast_count = f"source_code:pipeline_http_errors:count{windows.fast}"
    burst_count = f"source_code:pipeline_http_errors:count{windows.burst}"
    return Row("IP burnout (HTTP errors)", [
        stat(f"403 Forbidden, last {windows.fast} (worst source)", "Most 403 responses one source "
             f"got in the last {windows.fast} (HttpForbiddenErrorsHigh fires above "
             f"{thresholds.forbidden_per_window}): the scraper's IP is being blocked.",
             [now(or_zero(f"max({ctx.sel(fast_count, CODE_403)})"))], width=6, height=5,
             color_mode="background",
             thresholds=steps(GREEN, (thresholds.forbidden_per_window + 1, ORANGE)),
             links=ctx.runbook_links("HttpForbiddenErrorsHigh")),
        stat(f"429 Too Many Requests, last {windows.burst} (worst source)", "Most 429 responses "
             f"one source got in the last {windows.burst} (HttpRateLimitErrorsHigh fires above "
             f"{thresholds.rate_limited_per_window}).",
             [now(or_zero(f"max({ctx.sel(burst_count, CODE_429)})"))], width=6, height=5,
             color_mode="background",
             thresholds=steps(GREEN, (thresholds.rate_limited_per_window + 1, ORANGE)),
             links=ctx.runbook_links("HttpRateLimitErrorsHigh")),
        stat(f"503 Service Unavailable, last {windows.fast}", "503 responses from all sources in "
             f"the last {windows.fast}.",
             [now(or_zero(f"sum({ctx.sel(fast_count, CODE_503)})"))], width=6, height=5,
             thresholds=steps(GREEN, (1, YELLOW))),
        text("Recommendations (IP burnout)", "What to do about 403 and 429 responses.", """
- **High 403/429 from `scraper`** → the sites block our IP: consider **residential proxies**,
  slow the scraper down, rotate user agents.
- **429 from an API** (ZenRows, OpenRouter, Resend, Twilio) → we exceed its rate limit: lower
  concurrency for that stage or raise the plan's limit.
- Monitor VPN effectiveness: errors that stay high after switching exit node mean the VPN's
  range is burnt too.
""", width=6, height=5),
        per_period(ctx, "HTTP 403 / 429 / 503", "HTTP errors by source and status code, 403, "
                   "429 and 503 only, from the rows' own timestamps (a burst shows in full in "
                   "its hour on any time range).", "pipeline_http_errors_recent", windows.fast,
                   matchers=('code=~"403|429|503"',), by="source, code",
                   legend="{{source}} {{code}}", width=24, height=8,
                   links=ctx.runbook_links("HttpForbiddenErrorsHigh", "HttpRateLimitErrorsHigh")),
        bargauge("HTTP errors by source and code (all time)", "Every HTTP error the pipeline "
                 "logged, by source and status code.",
                 [now(f"sort_desc({ctx.total('pipeline_http_errors_total', by='source, code')})",
                      "{{source}} {{code}}")], width=12, height=9, thresholds=steps(ORANGE)),
        table("Rate-limit errors by API and stage (all time)", "429 responses per source (API "
              f"or scraper) and pipeline stage: every one logged, and the last {windows.slow}.",
              [table_query(ctx.total("pipeline_http_errors_total", CODE_429, by="source, stage")),
               table_query(or_zero(ctx.total("pipeline_http_errors_recent", CODE_429,
                                             f'window="{windows.slow}"', by="source, stage")))],
              width=6, height=9, sort_by="All time",
              rename={"source": "Source", "stage": "Stage", "Value #A": "All time",
                      "Value #B": f"Last {windows.slow}"},
              links=ctx.runbook_links("HttpRateLimitErrorsHigh")),
        table("Last occurrence by API and code", "How long ago each source last returned each "
              "error code.",
              [table_query(f"time() - {ctx.sel('pipeline_http_error_last_timestamp_seconds')}")],
              "dtdurations", width=6, height=9, hide=["instance"],
              rename={"source": "Source", "code": "Code", "Value": "Last seen (ago)"}),
    ], collapsed=True)


def database(ctx: Context) -> Row:
    return Row("Database", [
        stat("Database size", "Size of the pipeline database (SQLite: file + WAL).",
             [now(ctx.sel("pipeline_database_size_bytes"))], "bytes", width=4, height=8,
             thresholds=steps(BLUE)),
        stat("Integrity check", "Result of the last integrity check (SQLite quick_check, run "
             "on a slow schedule; DatabaseIntegrityCheckFailed).",
             [now(ctx.sel("pipeline_database_integrity_ok"))], "none", width=4, height=8,
             color_mode="background", thresholds=steps(RED, (1, GREEN)),
             mappings=value_map({0: ("FAILED", RED), 1: ("OK", GREEN)}),
             links=ctx.runbook_links("DatabaseIntegrityCheckFailed")),
        bargauge("Rows per table", "Rows in each pipeline table (sites, outreaches, "
                 "conversations, keywords, …).",
                 [now(f"sort_desc({ctx.sel('pipeline_database_rows')})", "{{table}}")],
                 width=8, height=8, thresholds=steps(BLUE)),
        timeseries("Database size over time", "Growth of the database.",
                   [over_time(ctx.sel("pipeline_database_size_bytes"), "{{instance}}")], "bytes",
                   width=8, height=8),
    ], collapsed=True)


def host(ctx: Context) -> Row:
    thresholds = ctx.config.thresholds
    used, size = ctx.sel("pipeline_host_disk_used_bytes"), ctx.sel("pipeline_host_disk_total_bytes")
    horizon = seconds(thresholds.disk_fill_horizon)
    return Row("Host", [
        gauge("CPU", "CPU utilisation of the whole host running the exporter.",
              [now(ctx.sel("pipeline_host_cpu_utilization_ratio"))], "percentunit", width=4,
              height=6, minimum=0, maximum=1, thresholds=steps(GREEN, (0.8, ORANGE), (0.95, RED))),
        gauge("Memory", "Memory in use on the host.",
              [now(f"{ctx.sel('pipeline_host_memory_used_bytes')} / "
                   f"{ctx.sel('pipeline_host_memory_total_bytes')}")], "percentunit", width=4,
              height=6, minimum=0, maximum=1, thresholds=steps(GREEN, (0.8, ORANGE), (0.95, RED))),
        gauge("Disk", "Disk in use on the database's filesystem.",
              [now(f"{used} / {size}", "{{path}}")], "percentunit", width=4, height=6, minimum=0,
              maximum=1, thresholds=steps(GREEN, (0.8, ORANGE), (0.9, RED)),
              links=ctx.runbook_links("HostDiskWillFillIn24h")),
        timeseries("Host usage over time", "CPU, memory and disk utilisation over time, and the "
                   f"disk use predicted {thresholds.disk_fill_horizon} ahead at the last "
                   f"{thresholds.disk_fill_pace}'s pace (HostDiskWillFillIn24h fires while it "
                   "stays above 100 % for an hour).",
                   [over_time(ctx.sel("pipeline_host_cpu_utilization_ratio"), "CPU"),
                    over_time(f"{ctx.sel('pipeline_host_memory_used_bytes')} / "
                              f"{ctx.sel('pipeline_host_memory_total_bytes')}", "memory"),
                    over_time(f"{used} / {size}", "disk {{path}}"),
                    over_time(f"predict_linear({used}[{thresholds.disk_fill_pace}], {horizon}) / {size}",
                              f"disk {{{{path}}}} in {thresholds.disk_fill_horizon}")],
                   "percentunit", width=12, height=6, minimum=0,
                   links=ctx.runbook_links("HostDiskWillFillIn24h")),
    ], collapsed=True)


def exporter(ctx: Context) -> Row:
    held = ctx.config.thresholds.query_failing_for
    return Row("Exporter", [
        stat("Exporter up", "Whether Prometheus can scrape the exporter (PipelineExporterDown). "
             "Limited to targets that served pipeline metrics in the last day.",
             [now(f"{ctx.sel('up')} and on(job, instance) "
                  f"max_over_time({ctx.sel('pipeline_exporter_build_info')}[1d])", "{{instance}}")],
             "none", width=4, height=5, color_mode="background", thresholds=steps(RED, (1, GREEN)),
             mappings=UP_DOWN, links=ctx.runbook_links("PipelineExporterDown")),
        stat("Database reachable", "Whether the exporter's last connection to the database "
             "succeeded.",
             [now(ctx.sel("pipeline_exporter_database_up"))], "none", width=4, height=5,
             color_mode="background", thresholds=steps(RED, (1, GREEN)), mappings=UP_DOWN),
        stat("Exporter version", "Version of the running exporter.",
             [table_query(ctx.sel("pipeline_exporter_build_info"))], "none", width=4, height=5,
             fields="/^version$/", thresholds=steps(BLUE)),
        stat("Series folded into other", "Label values folded into `other` by the "
             "cardinality cap in the last hour: raise the cap or fix the source data.",
             [now(or_zero(f"sum(increase({ctx.sel('pipeline_exporter_series_dropped_total')}[1h]))"))],
             width=4, height=5, thresholds=steps(GREEN, (1, YELLOW))),
        stat("Failing queries", "Queries and sources whose latest run failed "
             f"(pipeline_exporter_query_up == 0); PipelineExporterQueryFailing after {held}.",
             [now(or_zero(f"count({ctx.sel('pipeline_exporter_query_up')} == 0)"))], width=8,
             height=5, color_mode="background", thresholds=steps(GREEN, (1, ORANGE)),
             links=ctx.runbook_links("PipelineExporterQueryFailing")),
        state_timeline("Query health over time", "Each query's and source's latest run over "
                       "time: green while it succeeds, red while it fails. A report file that "
                       "is not in use has no row here and is not an error.",
                       [over_time(f"max by (query) ({ctx.sel('pipeline_exporter_query_up')})",
                                  "{{query}}")], mappings=UP_DOWN, width=12, height=8,
                       links=ctx.runbook_links("PipelineExporterQueryFailing")),
        timeseries("Query duration (90th percentile)", "How long the exporter's database "
                   "queries take.",
                   [over_time("histogram_quantile(0.9, sum by (query, le) (rate("
                              + ctx.sel("pipeline_exporter_query_duration_seconds_bucket")
                              + "[$__rate_interval])))", "{{query}}")], "s", width=12, height=8),
        table("Query freshness", "Time since each query last succeeded: values older than "
              "the query's interval mean it is failing or slow.",
              [table_query(f"time() - {ctx.sel('pipeline_exporter_query_last_success_timestamp_seconds')}")],
              "dtdurations", width=24, height=8, hide=["instance"], sort_by="Last success (ago)",
              rename={"query": "Query", "Value": "Last success (ago)"}),
    ], collapsed=True)


def build(ctx: Context) -> dict[str, Any]:
    return dashboard(
        ctx, "pipeline-system", "Pipeline / System",
        "Cron jobs, code coverage, end-to-end tests, IP burnout, API rate limits, database, "
        "host and exporter health (the old dashboard's page 5, System Health). Rows below the "
        "first open on click.",
        [cron_jobs(ctx), quality(ctx), ip_burnout(ctx),
         database(ctx), host(ctx), exporter(ctx)],
        extra_tags=["system"], time_from="now-7d")
