"""The job-board scraper's rules and dashboards: one dashboard per page of its monitoring plan.

Pages: the overview (active sessions, jobs today, system health, economic impact), session
monitoring (sessions, live jobs per minute and errors, the per-site execution table and circuit
breakers), performance analytics (trends, site comparison, error categories, page-load times) and
business intelligence (jobs by location, salaries, cost per job). The plan's alert rules come with
thresholds (error rate 0.1, breaker open, 5 jobs per minute, CPU 80 %, memory 90 %): they are used
as written; the other alerts' thresholds are ours (docs/packs/scraper.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline_exporter.mixin.config import MixinConfig
from pipeline_exporter.mixin.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Context,
    Row,
    bargauge,
    dashboard,
    gauge,
    now,
    over_time,
    piechart,
    query_variable,
    stat,
    steps,
    table,
    table_query,
    timeseries,
)
from pipeline_exporter.mixin.packs.common import pack_alert, pack_links, render_pack, select
from pipeline_exporter.mixin.promql import or_zero
from pipeline_exporter.mixin.promql import window as win
from pipeline_exporter.mixin.rules import Alert, Group, Recording

NAME = "scraper"
SITE = 'site=~"$site"'
FAILED, OPEN, RUNNING = 'outcome="failed"', 'state="open"', 'status="running"'


@dataclass(frozen=True)
class Thresholds:
    """The plan's alert_rules.yaml where it names a number; our defaults elsewhere."""

    error_rate: float = 0.1                 # plan: "error_rate > 0.1", warning
    jobs_per_minute: float = 5              # plan: "jobs_per_minute < 5", warning
    cpu_percent: float = 80                 # plan: "cpu_usage > 80", critical
    memory_percent: float = 90              # plan: "memory_usage > 90", critical
    min_executions: int = 3                 # ours: finished executions of a site in the hour before a rate counts
    health_stale_seconds: int = 15 * 60     # ours: system_health is sampled every few minutes
    # The plan's economics: $50 a month of infrastructure against $500+ a month for a service.
    infrastructure_usd_per_month: float = 50
    competitor_usd_per_month: float = 500


THRESHOLDS = Thresholds()
FAST, SLOW = "1h", "24h"


def _ratio_rules(config: MixinConfig) -> list[Recording]:
    rules = []
    for window in (FAST, SLOW):
        finished = select(config, "scraper_site_executions_recent", win(window))
        failed = select(config, "scraper_site_executions_recent", FAILED, win(window))
        rules.append(Recording(
            f"scraper:site_error_ratio:{window}",
            f"sum by (job, instance, site) ({failed})\n  / sum by (job, instance, site) ({finished})",
            why=f"Share of each site's executions finished in the last {window} that failed (the plan's error rate)."))
        rules.append(Recording(
            f"scraper:site_executions:{window}",
            f"sum by (job, instance, site) ({finished})",
            why="The denominator, so the error-rate alert can ask for enough executions."))
    buckets = select(config, "scraper_page_load_seconds_bucket")
    for q in ("0.5", "0.95"):
        rules.append(Recording(
            f"scraper:page_load_seconds:p{q[2:].ljust(2, '0')}",
            f"histogram_quantile({q}, sum by (job, instance, site, le) ({buckets}))",
            why=f"The {q} quantile of the sites' page-load times over the exporter's window (1 h)."))
    return rules


def alerts(config: MixinConfig, t: Thresholds = THRESHOLDS) -> list[Alert]:
    cpu = select(config, "scraper_system_cpu_usage_percent")
    memory = select(config, "scraper_system_memory_usage_percent")
    return [
        pack_alert(NAME, config, "ScraperErrorRateHigh", "warning",
               f"scraper:site_error_ratio:{FAST} > {t.error_rate:g}\n"
               f"and on (job, instance, site) scraper:site_executions:{FAST} >= {t.min_executions}",
               "10m", "A job site's scrapes fail often (the plan's High Error Rate).",
               "{{ $labels.site }}: {{ $value | humanizePercentage }} of the executions finished in the last "
               "hour failed. Look at the site's error types (403, timeout, parsing) on the analytics page.",
               "The site's scrapes succeed again.",
               f"failed share of a site's executions over 1 h > {t.error_rate:g} "
               f"(≥ {t.min_executions} finished), for 10 m", "scraper-sessions"),
        pack_alert(NAME, config, "ScraperCircuitBreakerOpen", "critical",
               f"{select(config, 'scraper_circuit_breaker_state', OPEN)} == 1",
               "1m", "A job site's circuit breaker is open: the scraper skips the site.",
               "The circuit breaker of {{ $labels.site }} is open: its executions are skipped after "
               "repeated failures.", "The site's circuit breaker is closed again.",
               "a site's latest execution left its breaker open, for 1 m", "scraper-sessions"),
        pack_alert(NAME, config, "ScraperThroughputLow", "warning",
               f"{select(config, 'scraper_jobs_per_minute')} < {t.jobs_per_minute:g}",
               "10m", "The running sessions scrape few jobs per minute (the plan's Low Throughput).",
               "The running sessions report {{ $value }} jobs per minute. Check the queue depth, the "
               "scrapers running and the sites' errors.", "Throughput is back above the floor.",
               f"jobs per minute of the running sessions < {t.jobs_per_minute:g}, for 10 m",
               "scraper-overview"),
        pack_alert(NAME, config, "ScraperSystemResourceHigh", "critical",
               f'label_replace({cpu} > {t.cpu_percent:g}, "resource", "cpu", "", "")\n'
               f'or label_replace({memory} > {t.memory_percent:g}, "resource", "memory", "", "")',
               "5m", "The scraper host runs out of CPU or memory (the plan's System Resource High).",
               "The scraper host's {{ $labels.resource }} use is {{ $value | printf \"%.0f\" }} %. "
               "Lower the sessions' concurrency or find the browser that leaks.",
               "The scraper host's CPU and memory use are back to normal.",
               f"CPU > {t.cpu_percent:g} % or memory > {t.memory_percent:g} % on the scraper host, for 5 m",
               "scraper-overview"),
        pack_alert(NAME, config, "ScraperServiceDown", "critical",
               f"{select(config, 'scraper_service_up')} == 0",
               "2m", "A service of the scraper (API, database or orchestrator) is unhealthy.",
               "The scraper's {{ $labels.component }} service reports unhealthy.",
               "The scraper's services are healthy again.",
               "a service of the latest system_health sample is unhealthy, for 2 m", "scraper-overview"),
        pack_alert(NAME, config, "ScraperSiteUnreachable", "warning",
               f"{select(config, 'scraper_site_accessible')} == 0",
               "10m", "A job site does not answer the scraper host's probe.",
               "{{ $labels.site }} is not reachable from the scraper host (blocked, down, or a proxy problem).",
               "The job site is reachable again.",
               "the latest system_health sample says a site is not accessible, for 10 m", "scraper-overview"),
        pack_alert(NAME, config, "ScraperHealthSamplesStale", "warning",
               f"time() - {select(config, 'scraper_system_health_timestamp_seconds')} > {t.health_stale_seconds}",
               "5m", "The scraper stopped writing system_health samples: its resource alerts are blind.",
               "The newest system_health sample is {{ $value | humanizeDuration }} old. Check the metrics "
               "collector of the scraper's API.", "system_health samples arrive again.",
               f"newest system_health sample older than {t.health_stale_seconds // 60} min, for 5 m",
               "scraper-overview"),
    ]


def groups(config: MixinConfig) -> tuple[list[Group], list[Group]]:
    recording = [Group("scraper.recording", tuple(_ratio_rules(config)),
                       why="Error ratios and page-load percentiles the scraper alerts and dashboards share.")]
    alerting = [Group("scraper.alerts", tuple(alerts(config)),
                      why="The scraper: error rate, circuit breakers, throughput, host resources, services.")]
    return recording, alerting


# ------------------------------------------------------------------------------ dashboards

def _cost_per_thousand(ctx: Context, usd_per_month: float) -> str:
    """Cost of a week at ``usd_per_month``, per 1,000 jobs saved in the last 7 days."""
    jobs = f"sum({ctx.sel('scraper_jobs_scraped_recent', win('7d'))})"
    return f"({usd_per_month:g} * 12 / 365 * 7) / {jobs} * 1000"


def overview(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    t = THRESHOLDS
    rows = [
        Row("Right now", [
            stat("Active sessions", "Scrape sessions running now.",
                 [now(or_zero(f"sum({s('scraper_sessions', RUNNING)})"))], width=6,
                 thresholds=steps(BLUE)),
            stat("Jobs today", "Jobs saved in the last 24 hours, all sites.",
                 [now(or_zero(f"sum({s('scraper_jobs_scraped_recent', win(SLOW))})"))], width=6,
                 thresholds=steps(BLUE)),
            stat("Jobs per minute", "What the running sessions report (session_metrics).",
                 [now(f"sum({s('scraper_jobs_per_minute')})")], width=6,
                 thresholds=steps(RED, (t.jobs_per_minute, GREEN)),
                 links=pack_links(ctx, NAME, "ScraperThroughputLow")),
            stat("Open circuit breakers", "Sites whose breaker is open: the scraper skips them.",
                 [now(or_zero(f"sum({s('scraper_circuit_breaker_state', OPEN)})"))], width=6,
                 thresholds=steps(GREEN, (1, RED)), links=pack_links(ctx, NAME, "ScraperCircuitBreakerOpen")),
        ]),
        Row("System health", [
            gauge("CPU", "CPU use of the scraper host (latest system_health sample).",
                  [now(f"max({s('scraper_system_cpu_usage_percent')})")], "percent",
                  thresholds=steps(GREEN, (t.cpu_percent, RED)),
                  links=pack_links(ctx, NAME, "ScraperSystemResourceHigh")),
            gauge("Memory", "Memory in use on the scraper host.",
                  [now(f"max({s('scraper_system_memory_usage_percent')})")], "percent",
                  thresholds=steps(GREEN, (t.memory_percent, RED)),
                  links=pack_links(ctx, NAME, "ScraperSystemResourceHigh")),
            gauge("Disk", "Disk use of the scraper host.",
                  [now(f"max({s('scraper_system_disk_usage_percent')})")], "percent",
                  thresholds=steps(GREEN, (80, ORANGE), (90, RED))),
            bargauge("Services and sites", "1 = healthy or reachable in the latest sample.",
                     [now(f"min by (component) ({s('scraper_service_up')})", "{{component}}"),
                      now(f"min by (site) ({s('scraper_site_accessible')})", "{{site}} reachable")],
                     width=6, height=6, thresholds=steps(RED, (1, GREEN)),
                     links=pack_links(ctx, NAME, "ScraperServiceDown", "ScraperSiteUnreachable")),
            timeseries("CPU and memory", "The scraper host's CPU and memory use over time.",
                       [over_time(f"max({s('scraper_system_cpu_usage_percent')})", "CPU"),
                        over_time(f"max({s('scraper_system_memory_usage_percent')})", "memory")],
                       "percent", width=16),
            stat("Since the last health sample", "Age of the newest system_health row.",
                 [now(f"time() - max({s('scraper_system_health_timestamp_seconds')})")], "s", width=8,
                 height=8, thresholds=steps(GREEN, (t.health_stale_seconds, ORANGE)),
                 links=pack_links(ctx, NAME, "ScraperHealthSamplesStale")),
        ]),
        Row("Economic impact", [
            stat("Our cost per 1,000 jobs (7 d)", f"${t.infrastructure_usd_per_month:g} a month of infrastructure "
                 "(the plan's figure) over the jobs saved in the last 7 days.",
                 [now(_cost_per_thousand(ctx, t.infrastructure_usd_per_month))], "currencyUSD", width=8,
                 decimals=2),
            stat("A service's cost per 1,000 jobs (7 d)", f"A ${t.competitor_usd_per_month:g}-a-month scraping "
                 "service (the plan's competitor price) for the same jobs.",
                 [now(_cost_per_thousand(ctx, t.competitor_usd_per_month))], "currencyUSD", width=8, decimals=2),
            stat("Saved per month", "The competitor's price less our infrastructure (the plan's figures).",
                 [now(f"vector({t.competitor_usd_per_month - t.infrastructure_usd_per_month:g})")],
                 "currencyUSD", width=8),
        ]),
    ]
    return dashboard(ctx, "scraper-overview", "Scraper / Overview", "Active sessions, jobs today, the "
                     "scraper host's health and the economic impact (the plan's overview page).", rows,
                     extra_tags=[NAME], time_from="now-6h")


def sessions(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    ratio = f"scraper:site_error_ratio:{SLOW}{{{ctx.config.selector}, instance=~\"$instance\", {SITE}}}"
    executions = f"sum by (site) ({s('scraper_site_executions_recent', SITE, win(SLOW))})"
    rows = [
        Row("Sessions", [
            piechart("Sessions by status", "All scrape sessions by status (running, completed, failed, "
                     "cancelled).", [now(f"sum by (status) ({s('scraper_sessions')})", "{{status}}")]),
            timeseries("Jobs per minute", "The running sessions' reported throughput.",
                       [over_time(f"sum({s('scraper_jobs_per_minute')})", "jobs / min")], "short",
                       width=8, threshold_lines=True, thresholds=steps(RED, (THRESHOLDS.jobs_per_minute, GREEN))),
            timeseries("Queue depth and scrapers", "Requests waiting and scrapers busy in the running sessions.",
                       [over_time(f"sum({s('scraper_queue_depth')})", "queue depth"),
                        over_time(f"sum({s('scraper_active_scrapers')})", "active scrapers")], "short", width=8),
        ]),
        Row("Sites", [
            table("Site executions (last 24 h)", "Per site: executions finished, error rate, jobs and pages "
                  "of the last 24 h, the breaker's failures in a row and the p95 page-load time.",
                  [table_query(executions),
                   table_query(f"sum by (site) ({ratio})"),
                   table_query(f"sum by (site) ({s('scraper_jobs_scraped_recent', SITE, win(SLOW))})"),
                   table_query(f"sum by (site) ({s('scraper_pages_processed_recent', SITE, win(SLOW))})"),
                   table_query(f"max by (site) ({s('scraper_circuit_breaker_failures', SITE)})"),
                   table_query(f"max by (site) (scraper:page_load_seconds:p95{{{ctx.config.selector}, "
                               f"instance=~\"$instance\", {SITE}}})")],
                  rename={"site": "Site", "Value #A": "Executions", "Value #B": "Error rate", "Value #C": "Jobs",
                          "Value #D": "Pages", "Value #E": "Breaker failures", "Value #F": "p95 page load"},
                  hide=["instance"], sort_by="Executions", links=pack_links(ctx, NAME, "ScraperErrorRateHigh")),
            bargauge("Circuit breakers", "Each site's breaker state (1 = the current one).",
                     [now(f"max by (site, state) ({s('scraper_circuit_breaker_state', SITE)}) == 1",
                          "{{site}}: {{state}}")], width=8, thresholds=steps(BLUE),
                     links=pack_links(ctx, NAME, "ScraperCircuitBreakerOpen")),
            timeseries("Error rate by site (last hour)", "Failed share of each site's executions of the last hour.",
                       [over_time(f"scraper:site_error_ratio:{FAST}{{{ctx.config.selector}, instance=~\"$instance\", "
                                  f"{SITE}}}", "{{site}}")], "percentunit", width=8, threshold_lines=True,
                       thresholds=steps(GREEN, (THRESHOLDS.error_rate, RED))),
            timeseries("Errors (last 15 min)", "Errors of the last 15 minutes, by site and type.",
                       [over_time(f"sum by (site, error_type) ({s('scraper_errors_recent', SITE, win('15m'))})",
                                  "{{site}} {{error_type}}")], "short", width=8),
        ]),
    ]
    return dashboard(ctx, "scraper-sessions", "Scraper / Sessions", "Sessions, live jobs per minute and "
                     "errors, the per-site execution table and circuit breakers (the plan's session "
                     "monitoring page).", rows, extra_tags=[NAME], variables=[_site_variable(ctx)], time_from="now-6h")


def analytics(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    ratio = f"scraper:site_error_ratio:{SLOW}{{{ctx.config.selector}, instance=~\"$instance\", {SITE}}}"
    duration = s("scraper_site_execution_duration_seconds_bucket", SITE)
    rows = [
        Row("Trends", [
            timeseries("Jobs per hour, by site", "Jobs saved in the last hour, by site, over time.",
                       [over_time(f"sum by (site) ({s('scraper_jobs_scraped_recent', SITE, win(FAST))})", "{{site}}")],
                       "short"),
            timeseries("Jobs saved (rate of the counter)", "Jobs saved per minute from the jobs counter.",
                       [over_time(f"sum by (site) (rate({s('scraper_jobs_scraped_total', SITE)}[5m])) * 60",
                                  "{{site}}")], "short"),
        ]),
        Row("Site comparison", [
            table("Sites (last 7 days)", "Per site: executions, success rate, jobs and pages of the last 7 days.",
                  [table_query(f"sum by (site) ({s('scraper_site_executions_recent', SITE, win('7d'))})"),
                   table_query(f"1 - sum by (site) ({s('scraper_site_executions_recent', SITE, FAILED, win('7d'))}) "
                               f"/ sum by (site) ({s('scraper_site_executions_recent', SITE, win('7d'))})"),
                   table_query(f"sum by (site) ({s('scraper_jobs_scraped_recent', SITE, win('7d'))})"),
                   table_query(f"sum by (site) ({s('scraper_pages_processed_recent', SITE, win('7d'))})")],
                  rename={"site": "Site", "Value #A": "Executions", "Value #B": "Success rate", "Value #C": "Jobs",
                          "Value #D": "Pages"}, hide=["instance"], sort_by="Jobs", width=12),
            timeseries("Error rate by site (24 h)", "Failed share of each site's executions of the last 24 h.",
                       [over_time(f"sum by (site) ({ratio})", "{{site}}")], "percentunit"),
        ]),
        Row("Errors", [
            piechart("Errors by type (24 h)", "Error categories of the last 24 h (403, timeout, parsing, ...).",
                     [now(f"sum by (error_type) ({s('scraper_errors_recent', SITE, win(SLOW))})", "{{error_type}}")]),
            timeseries("Errors per hour, by type", "Errors of the last hour, by type, over time.",
                       [over_time(f"sum by (error_type) ({s('scraper_errors_recent', SITE, win(FAST))})",
                                  "{{error_type}}")], "short", width=16),
        ]),
        Row("Performance", [
            timeseries("Page-load time p50 / p95", "Percentiles of the sites' average page-load times over the "
                       "last hour.",
                       [over_time(f"scraper:page_load_seconds:p{q}{{{ctx.config.selector}, instance=~\"$instance\", "
                                  f"{SITE}}}", f"{{{{site}}}} p{q}") for q in ("50", "95")], "s"),
            bargauge("Execution duration p95 (24 h)", "95th percentile of each site's execution duration.",
                     [now(f"histogram_quantile(0.95, sum by (site, le) ({duration}))", "{{site}}")], "s"),
        ]),
    ]
    return dashboard(ctx, "scraper-analytics", "Scraper / Performance analytics", "Trends, site comparison, "
                     "error categories and page-load times (the plan's analytics page).", rows,
                     extra_tags=[NAME], variables=[_site_variable(ctx)], time_from="now-7d")


def insights(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    salary = s("scraper_job_salary_usd_bucket", SITE)
    t = THRESHOLDS
    rows = [
        Row("Market trends", [
            bargauge("Jobs by location (7 d)", "Jobs saved in the last 7 days, by job location (the 10 largest).",
                     [now(f"sort_desc(sum by (location) ({s('scraper_jobs_scraped_recent', SITE, win('7d'))}))",
                          "{{location}}")]),
            timeseries("Jobs per day, by location", "Jobs saved in the last 24 h, by location, over time.",
                       [over_time(f"sum by (location) ({s('scraper_jobs_scraped_recent', SITE, win(SLOW))})",
                                  "{{location}}")], "short"),
        ]),
        Row("Salaries", [
            bargauge("Median and p90 salary by site (7 d)", "Midpoints of the stated salary ranges of the last "
                     "7 days' jobs.",
                     [now(f"histogram_quantile({q}, sum by (site, le) ({salary}))", f"{{{{site}}}} p{p}")
                      for q, p in (("0.5", "50"), ("0.9", "90"))], "currencyUSD"),
            stat("Jobs that state a salary (7 d)", "Share of the last 7 days' jobs with a salary range.",
                 [now(f"sum({s('scraper_jobs_with_salary_recent', SITE, win('7d'))}) / "
                      f"sum({s('scraper_jobs_scraped_recent', SITE, win('7d'))})")], "percentunit", width=6),
            piechart("Jobs by site (7 d)", "Where the last 7 days' jobs came from.",
                     [now(f"sum by (site) ({s('scraper_jobs_scraped_recent', SITE, win('7d'))})", "{{site}}")],
                     width=6),
        ]),
        Row("Return on investment", [
            stat("Our cost per 1,000 jobs (7 d)", "Infrastructure cost of the last 7 days per 1,000 jobs.",
                 [now(_cost_per_thousand(ctx, t.infrastructure_usd_per_month))], "currencyUSD", width=12,
                 decimals=2),
            stat("Jobs in 7 days", "Jobs saved in the last 7 days, all sites.",
                 [now(or_zero(f"sum({s('scraper_jobs_scraped_recent', win('7d'))})"))], width=12),
        ]),
    ]
    return dashboard(ctx, "scraper-insights", "Scraper / Business intelligence", "Jobs by location and site, "
                     "salaries and cost per job (the plan's insights page).", rows, extra_tags=[NAME],
                     variables=[_site_variable(ctx)], time_from="now-7d")


def _site_variable(ctx: Context) -> dict[str, Any]:
    return query_variable("site", "Site", f"label_values(scraper_circuit_breaker_state{{{ctx.config.selector}}}, site)")


DASHBOARDS = {"scraper-overview": overview, "scraper-sessions": sessions, "scraper-analytics": analytics,
              "scraper-insights": insights}


def render(config: MixinConfig) -> dict[str, str]:
    return render_pack(config, NAME,
                       "scraper", "thresholds: docs/packs/scraper.md", groups(config), DASHBOARDS)
