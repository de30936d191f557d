"""System Health: cron jobs, coverage, e2e tests, IP burnout, rate limits, database, host, exporter."""

from .common import (BLUE, COVERAGE_ALERT, COVERAGE_TARGET, FORBIDDEN_PER_HOUR, GREEN, ORANGE,
                     RATE_LIMITED_PER_15M, RED, YELLOW, Row, bargauge, dashboard,
                     firing_alerts_stat, gauge, i, or_zero, override, sel, stat, steps, t, table,
                     tbl, text, timeseries, total, value_map)

CRON_KEYS = "job, instance, cron_job"
CODE_403, CODE_429, CODE_503 = 'code="403"', 'code="429"', 'code="503"'
SINCE_LAST_RUN = f"time() - {sel('pipeline_cron_job_last_run_timestamp_seconds')}"
# Same rule as the CronJobStale alert: an enabled job that has not started for 2 × its interval,
# or one that has never run (no last-run series: the enabled flag itself, 1 or 0).
OVERDUE = (f"((({SINCE_LAST_RUN}) > bool (2 * {sel('pipeline_cron_job_expected_interval_seconds')}))"
           f" * on({CRON_KEYS}) {sel('pipeline_cron_job_enabled')})"
           f" or ({sel('pipeline_cron_job_enabled')} unless on({CRON_KEYS})"
           f" {sel('pipeline_cron_job_last_run_timestamp_seconds')})")
# Runs leave status "running" when they finish, so that series goes down: increase() would read
# it as a counter reset. Only finished statuses are counted; running runs are a gauge.
FINISHED = 'status=~"success|failed"'


def _cell_colours(column: str, mapping: dict) -> dict:
    return override(column, mappings=value_map(mapping),
                    custom__cellOptions={"type": "color-background", "mode": "basic"})


def build() -> dict:
    coverage = steps(RED, (COVERAGE_ALERT, ORANGE), (COVERAGE_TARGET, GREEN))
    cron = Row("Cron jobs", [
        stat("Failed jobs", "Enabled cron jobs whose latest finished run failed (CronJobFailed).",
             [i(or_zero(f"count({sel('pipeline_cron_job_last_run_failed')} == 1 "
                        f"and on({CRON_KEYS}) {sel('pipeline_cron_job_enabled')} == 1)"))],
             w=6, h=4, color_mode="background", thresholds=steps(GREEN, (1, RED))),
        stat("Overdue jobs", "Enabled cron jobs that have not started for more than twice "
             "their expected interval, or have never run (CronJobStale).",
             [i(or_zero(f"count(({OVERDUE}) == 1)"))], w=6, h=4, color_mode="background",
             thresholds=steps(GREEN, (1, ORANGE))),
        stat("Running now", "Cron job runs in status running.",
             [i(or_zero(total("pipeline_cron_job_running")))], w=6, h=4,
             thresholds=steps(BLUE)),
        firing_alerts_stat(w=6, h=4),
        table("Cron job status", "One row per cron job: what it does, how long ago it last "
              "started, whether its latest finished run failed, and whether it is overdue "
              "(enabled and not started for more than twice its expected interval, or never "
              "run, as the CronJobStale alert).",
              [tbl(sel("pipeline_cron_job_info")),
               tbl(SINCE_LAST_RUN),
               tbl(sel("pipeline_cron_job_last_run_failed")),
               tbl(OVERDUE),
               tbl(sel("pipeline_cron_job_enabled")),
               tbl(sel("pipeline_cron_job_expected_interval_seconds")),
               tbl(sel("pipeline_cron_job_running"))],
              "short", w=24, h=10, hide=["Value #A", "instance"],
              rename={"cron_job": "Job", "description": "Description",
                      "Value #B": "Last run (ago)", "Value #C": "Last result",
                      "Value #D": "Overdue", "Value #E": "Enabled",
                      "Value #F": "Expected interval", "Value #G": "Running"},
              overrides=[override("Last run (ago)", unit="dtdurations"),
                         override("Expected interval", unit="dtdurations"),
                         _cell_colours("Last result", {0: ("success", GREEN),
                                                       1: ("failed", RED)}),
                         _cell_colours("Overdue", {0: ("on time", GREEN),
                                                   1: ("overdue", ORANGE)}),
                         _cell_colours("Enabled", {0: ("disabled", "text"),
                                                   1: ("enabled", BLUE)})]),
        timeseries("Cron runs per hour by result", "Finished cron job runs logged per hour, by "
                   "result (success, failed). Runs still going are not counted here: they leave "
                   "status running when they finish, so that count goes down; see Running now.",
                   [t(f"sum by (status) (increase({sel('pipeline_cron_job_runs_total', FINISHED)}[1h]))",
                      "{{status}}")], "short", w=12, h=8, bars=True, stack=True,
                   interval="1h"),
        bargauge("Run duration (90th percentile)", "90th percentile of finished runs' duration "
                 "per job, whole history (duration histogram).",
                 [i("histogram_quantile(0.9, "
                    + total("pipeline_cron_job_duration_seconds_bucket", by="cron_job, le")
                    + ")", "{{cron_job}}")], "s", w=12, h=8, thresholds=steps(BLUE)),
    ])
    quality = Row("Code coverage and end-to-end tests", [
        gauge("Line coverage", "Lines covered by the test suite (Istanbul coverage summary). "
              "Alert below 70 %, target 80 % or more.",
              [i(sel("pipeline_code_coverage_ratio", 'metric="lines"'))], "percentunit",
              w=5, h=7, minimum=0, maximum=1, decimals=1, thresholds=coverage),
        bargauge("Coverage breakdown", "Lines, statements, functions and branches covered; the "
                 "colours follow the 70 % alert and 80 % target.",
                 [i(sel("pipeline_code_coverage_ratio"), "{{metric}}")], "percentunit",
                 w=7, h=7, minimum=0, maximum=1, decimals=1, thresholds=coverage),
        stat("E2E failed tests", "Failed test cases in the latest end-to-end JUnit report "
             "(E2ETestsFailing).",
             [i(or_zero(total("pipeline_e2e_tests", 'result="failed"')))], w=3, h=7,
             color_mode="background", thresholds=steps(GREEN, (1, RED))),
        bargauge("E2E results", "Test cases in the latest end-to-end report by suite (Email, "
                 "SMS, Inbound, Full Pipeline, …) and result.",
                 [i(total("pipeline_e2e_tests", by="suite, result"), "{{suite}} {{result}}")],
                 w=9, h=7, thresholds=steps(BLUE)),
        text("Code quality", "The old page's coverage and e2e guidance.", """
**Coverage** below **70 %** raises `CodeCoverageLow`; the team's target is **80 %** or more.
Branch coverage is usually the lowest: add tests for error paths first.

**E2E**: a failed suite (Email, SMS, Inbound, Full Pipeline) means the live integrations are
broken; fix before the next outreach batch.
""", w=8, h=5),
        stat("Coverage report age", "Time since the coverage summary file was written.",
             [i(f"time() - {sel('pipeline_code_coverage_report_timestamp_seconds')}")],
             "dtdurations", w=4, h=5, thresholds=steps(BLUE)),
        stat("E2E report age", "Time since the end-to-end JUnit report was written.",
             [i(f"time() - {sel('pipeline_e2e_report_timestamp_seconds')}")], "dtdurations",
             w=4, h=5, thresholds=steps(BLUE)),
        bargauge("E2E duration by suite", "Run time of each suite in the latest report.",
                 [i(sel("pipeline_e2e_duration_seconds"), "{{suite}}")], "s", w=8, h=5,
                 thresholds=steps(BLUE)),
    ])
    burnout = Row("IP burnout (HTTP errors)", [
        stat("403 Forbidden, last hour (worst source)", "Most 403 responses one source got in "
             "the last hour (HttpForbiddenErrorsHigh fires above 20): the scraper's IP is "
             "being blocked.",
             [i(or_zero(f"max({sel('source_code:pipeline_http_errors:increase1h', CODE_403)})"))],
             w=6, h=5, color_mode="background",
             thresholds=steps(GREEN, (FORBIDDEN_PER_HOUR, ORANGE))),
        stat("429 Too Many Requests, last 15 min (worst source)", "Most 429 responses one "
             "source got in the last 15 minutes (HttpRateLimitErrorsHigh fires above 10).",
             [i(or_zero(f"max({sel('source_code:pipeline_http_errors:increase15m', CODE_429)})"))],
             w=6, h=5, color_mode="background",
             thresholds=steps(GREEN, (RATE_LIMITED_PER_15M, ORANGE))),
        stat("503 Service Unavailable, last hour", "503 responses from all sources in the "
             "last hour.",
             [i(or_zero(f"sum({sel('source_code:pipeline_http_errors:increase1h', CODE_503)})"))],
             w=6, h=5, thresholds=steps(GREEN, (1, YELLOW))),
        text("Recommendations (IP burnout)", "What to do about 403 and 429 responses.", """
- **High 403/429 from `scraper`** → the sites block our IP: consider **residential proxies**,
  slow the scraper down, rotate user agents.
- **429 from an API** (ZenRows, OpenRouter, Resend, Twilio) → we exceed its rate limit: lower
  concurrency for that stage or raise the plan's limit.
- Monitor VPN effectiveness: errors that stay high after switching exit node mean the VPN's
  range is burnt too.
""", w=6, h=5),
        timeseries("HTTP 403 / 429 / 503 per hour by source", "Errors per hour by source and "
                   "status code (recording rule source_code:pipeline_http_errors:rate5m × 3600),"
                   " 403, 429 and 503 only. A fresh Prometheus shows 0 until new errors are "
                   "logged.",
                   [t(or_zero("3600 * "
                              + total("source_code:pipeline_http_errors:rate5m",
                                      'code=~"403|429|503"', by="source, code")),
                      "{{source}} {{code}}")], "short", w=24, h=8),
        bargauge("HTTP errors by source and code (all time)", "Every HTTP error the pipeline "
                 "logged, by source and status code, whole history.",
                 [i(f"sort_desc({total('pipeline_http_errors_total', by='source, code')})",
                    "{{source}} {{code}}")], w=12, h=9, thresholds=steps(ORANGE)),
        table("Rate-limit errors by API and stage", "429 responses per source (API or scraper)"
              " and pipeline stage: whole history and the last 24 hours.",
              [tbl(total("pipeline_http_errors_total", CODE_429, by="source, stage")),
               tbl(f"sum by (source, stage) (increase({sel('pipeline_http_errors_total', CODE_429)}[1d]))")],
              w=6, h=9, sort_by="All time",
              rename={"source": "Source", "stage": "Stage", "Value #A": "All time",
                      "Value #B": "Last 24 h"}),
        table("Last occurrence by API and code", "How long ago each source last returned each "
              "error code.",
              [tbl(f"time() - {sel('pipeline_http_error_last_timestamp_seconds')}")],
              "dtdurations", w=6, h=9, hide=["instance"],
              rename={"source": "Source", "code": "Code", "Value": "Last seen (ago)"}),
    ])
    database = Row("Database", [
        stat("Database size", "Size of the pipeline database (SQLite: file + WAL).",
             [i(sel("pipeline_database_size_bytes"))], "bytes", w=4, h=8,
             thresholds=steps(BLUE)),
        stat("Integrity check", "Result of the last integrity check (SQLite quick_check, "
             "run on a slow schedule).",
             [i(sel("pipeline_database_integrity_ok"))], "none", w=4, h=8,
             color_mode="background", thresholds=steps(RED, (1, GREEN)),
             mappings=value_map({0: ("FAILED", RED), 1: ("OK", GREEN)})),
        bargauge("Rows per table", "Rows in each pipeline table (sites, outreaches, "
                 "conversations, keywords, …).",
                 [i(f"sort_desc({sel('pipeline_database_rows')})", "{{table}}")], w=8, h=8,
                 thresholds=steps(BLUE)),
        timeseries("Database size over time", "Growth of the database.",
                   [t(sel("pipeline_database_size_bytes"), "{{instance}}")], "bytes", w=8,
                   h=8),
    ])
    host = Row("Host", [
        gauge("CPU", "CPU utilisation of the whole host running the exporter.",
              [i(sel("pipeline_host_cpu_utilization_ratio"))], "percentunit", w=4, h=6,
              minimum=0, maximum=1, thresholds=steps(GREEN, (0.8, ORANGE), (0.95, RED))),
        gauge("Memory", "Memory in use on the host.",
              [i(f"{sel('pipeline_host_memory_used_bytes')} / "
                 f"{sel('pipeline_host_memory_total_bytes')}")], "percentunit", w=4, h=6,
              minimum=0, maximum=1, thresholds=steps(GREEN, (0.8, ORANGE), (0.95, RED))),
        gauge("Disk", "Disk in use on the database's filesystem.",
              [i(f"{sel('pipeline_host_disk_used_bytes')} / "
                 f"{sel('pipeline_host_disk_total_bytes')}", "{{path}}")], "percentunit",
              w=4, h=6, minimum=0, maximum=1,
              thresholds=steps(GREEN, (0.8, ORANGE), (0.9, RED))),
        timeseries("Host usage over time", "CPU, memory and disk utilisation over time.",
                   [t(sel("pipeline_host_cpu_utilization_ratio"), "CPU"),
                    t(f"{sel('pipeline_host_memory_used_bytes')} / "
                      f"{sel('pipeline_host_memory_total_bytes')}", "memory"),
                    t(f"{sel('pipeline_host_disk_used_bytes')} / "
                      f"{sel('pipeline_host_disk_total_bytes')}", "disk {{path}}")],
                   "percentunit", w=12, h=6, minimum=0, maximum=1),
    ])
    exporter = Row("Exporter", [
        stat("Exporter up", "Whether Prometheus can scrape the exporter (PipelineExporterDown). "
             "Limited to targets that served pipeline metrics in the last day.",
             [i(f"{sel('up')} and on(job, instance) "
                f"max_over_time({sel('pipeline_exporter_build_info')}[1d])", "{{instance}}")],
             "none", w=4, h=5, color_mode="background", thresholds=steps(RED, (1, GREEN)),
             mappings=value_map({0: ("DOWN", RED), 1: ("UP", GREEN)})),
        stat("Database reachable", "Whether the exporter's last connection to the database "
             "succeeded.",
             [i(sel("pipeline_exporter_database_up"))], "none", w=4, h=5,
             color_mode="background", thresholds=steps(RED, (1, GREEN)),
             mappings=value_map({0: ("DOWN", RED), 1: ("UP", GREEN)})),
        stat("Exporter version", "Version of the running exporter.",
             [i(sel("pipeline_exporter_build_info"), table=True)], "none", w=4, h=5,
             fields="/^version$/", thresholds=steps(BLUE)),
        stat("Series folded into other", "Label values folded into `other` by the "
             "cardinality cap in the last hour: raise the cap or fix the source data.",
             [i(or_zero(f"sum(increase({sel('pipeline_exporter_series_dropped_total')}[1h]))"))],
             w=4, h=5, thresholds=steps(GREEN, (1, YELLOW))),
        timeseries("Query errors", "Failed database queries per query and interval "
                   "(PipelineExporterQueryFailing).",
                   [t(or_zero("sum by (query) (increase("
                              + sel("pipeline_exporter_query_errors_total")
                              + "[$__rate_interval]))"), "{{query}}")], "short", w=8, h=5),
        timeseries("Query duration (90th percentile)", "How long the exporter's database "
                   "queries take.",
                   [t("histogram_quantile(0.9, sum by (query, le) (rate("
                      + sel("pipeline_exporter_query_duration_seconds_bucket")
                      + "[$__rate_interval])))", "{{query}}")], "s", w=12, h=8),
        table("Query freshness", "Time since each query last succeeded: values older than "
              "the query's interval mean it is failing or slow.",
              [tbl(f"time() - {sel('pipeline_exporter_query_last_success_timestamp_seconds')}")],
              "dtdurations", w=12, h=8, hide=["instance"], sort_by="Last success (ago)",
              rename={"query": "Query", "Value": "Last success (ago)"}),
    ])
    return dashboard(
        "pipeline-system", "Pipeline / System",
        "Cron jobs, code coverage, end-to-end tests, IP burnout, API rate limits, database, "
        "host and exporter health (the old dashboard's page 5, System Health).",
        [cron, quality, burnout, database, host, exporter],
        extra_tags=["system"], time_from="now-7d")
