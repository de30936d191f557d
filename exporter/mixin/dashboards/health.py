"""Pipeline Health: totals, errors, stuck sites and how long, status funnel, daily throughput."""

from .common import (BLUE, GREEN, ORANGE, RED, Row, bargauge, dashboard, funnel, i, or_zero,
                     override, sel, stat, steps, t, table, tbl, text, timeseries, total)

DAY = 86400

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


def _older_than(seconds: int) -> str:
    bucket = total("pipeline_site_status_age_seconds_bucket", f'le=~"{_le_regex(seconds)}"',
                   by="status")
    return f"{total('pipeline_site_status_age_seconds_count', by='status')} - {bucket}"


def _age_quantile(q: float) -> str:
    return (f"histogram_quantile({q}, "
            f"{total('pipeline_site_status_age_seconds_bucket', by='status, le')})")


def build() -> dict:
    key_metrics = Row("Key metrics", [
        stat("Total sites in pipeline", "Sites in the database, whatever their status.",
             [i(total("pipeline_sites"))], w=6),
        stat("Active errors", "Sites whose error_type is set: the pipeline could not process "
             "them and will retry or needs a fix.",
             [i(or_zero(total("pipeline_site_errors")))], w=6,
             thresholds=steps(GREEN, (1, ORANGE))),
        stat("Stuck sites (> 1 day)", "Sites in a processing status (found … proposal_ready) "
             "whose status has not changed for longer than the stuck threshold (default 24 h). "
             "The SitesStuck alert watches the same number.",
             [i(or_zero(total("pipeline_sites_stuck")))], w=6,
             thresholds=steps(GREEN, (1, ORANGE))),
        stat("Keywords", "Search keywords that find new sites.",
             [i(total("pipeline_keywords"))], w=6, thresholds=steps(BLUE)),
    ])
    funnel_and_errors = Row("Status funnel and most common errors", [
        funnel(),
        bargauge("Most common errors", "Sites with an active error, by error type (http_403, "
                 "http_429, timeout, parse_error, llm_error, …), most frequent first. Which "
                 "error types affect the most sites?",
                 [i(or_zero(f"sort_desc({total('pipeline_site_errors', by='error_type')})"),
                    "{{error_type}}")], h=9, thresholds=steps(ORANGE)),
    ])
    stuck = Row("Stuck sites", [
        table("Stuck sites by error type", "Sites stuck in a processing status for longer than "
              "the stuck threshold, by status and error type (none = stuck without an error, "
              "a capacity or scheduling problem rather than a failure).",
              [tbl(total("pipeline_sites_stuck", by="status, error_type"))],
              w=10, h=9, sort_by="Stuck sites",
              rename={"status": "Status", "error_type": "Error type", "Value": "Stuck sites"}),
        table("How long sites have waited, by status", "For each processing status: sites "
              "waiting longer than 1, 3, 7 and 30 days (from the status age histogram), and "
              "the median and 90th percentile of the time since their status last changed.",
              [tbl(_older_than(DAY)), tbl(_older_than(3 * DAY)), tbl(_older_than(7 * DAY)),
               tbl(_older_than(30 * DAY)), tbl(_age_quantile(0.5)), tbl(_age_quantile(0.9))],
              w=14, h=9,
              rename={"status": "Status", "Value #A": "> 1 day", "Value #B": "> 3 days",
                      "Value #C": "> 7 days", "Value #D": "> 30 days",
                      "Value #E": "Median wait", "Value #F": "90th percentile wait"},
              overrides=[override("Median wait", unit="dtdurations"),
                         override("90th percentile wait", unit="dtdurations"),
                         override("> 1 day", custom__cellOptions={"type": "color-text"},
                                  thresholds=steps(GREEN, (1, ORANGE)))]),
    ])
    throughput = Row("Daily throughput", [
        timeseries("Daily throughput", "Sites that reached each status per day (rows of "
                   "site_status_history), over the selected range: the pipeline's daily "
                   "processing capacity. A fresh Prometheus shows 0 until it has a day of "
                   "history.",
                   [t(f"sum by (to_status) (increase({sel('pipeline_site_transitions_total')}[1d]))",
                      "{{to_status}}")], "short", w=16, h=9, interval="1h"),
        text("Reading this page", "What to do about errors and stuck sites.", """
**Errors** are per site (`sites.error_type`): a bar that grows means one failure mode is
spreading. `http_403` / `http_429` come from the sites or APIs blocking the scraper — see
*Pipeline / System* for the HTTP error history by source and consider residential proxies.

**Stuck sites** sit in a processing status (found … proposal_ready) longer than the stuck
threshold (default 24 h). Stuck *with* an error type: fix or clear the error. Stuck with
error type `none`: the stage is not keeping up — check the cron jobs on *Pipeline / System*.

**Daily throughput** counts status changes per day; a drop to zero for a stage means its
cron job stopped.
""", w=8, h=9),
    ])
    return dashboard(
        "pipeline-health", "Pipeline / Health",
        "Pipeline progress and bottlenecks: errors, stuck sites, funnel, daily throughput "
        "(the old dashboard's page 1, Pipeline Health & Error Analysis).",
        [key_metrics, funnel_and_errors, stuck, throughput],
        extra_tags=["health"], time_from="now-7d")
