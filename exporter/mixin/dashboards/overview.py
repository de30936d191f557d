"""Homepage: key metrics, pipeline funnel, response rates by channel, top errors, sales."""

from .common import (BLUE, Row, dashboard, firing_alerts_stat, funnel, i, or_zero, piechart,
                     bargauge, response_rate_by_channel, sel, stat, steps)


def build() -> dict:
    key_metrics = Row("Key metrics", [
        stat("Total sites", "Sites in the database, whatever their status.",
             [i(f"sum({sel('pipeline_sites')})")], "short", w=5),
        stat("Outreach sent", "Outreach messages handed to a provider (sent_at set), all channels, "
             "whole history.",
             [i("sum(" + sel("pipeline_outreach_events_total", 'event="sent"') + ")")],
             "short", w=5),
        stat("Response rate", "Replies divided by messages sent, all channels, whole history "
             "(recording rule job:pipeline_outreach_replied_per_sent:ratio).",
             [i(sel("job:pipeline_outreach_replied_per_sent:ratio"))], "percentunit",
             w=5, decimals=1),
        stat("Sales", "Sales recorded, all channels, whole history.",
             [i(f"sum({sel('pipeline_sales_total')})")], "short", w=5),
        firing_alerts_stat(w=4),
    ])
    return dashboard(
        "pipeline-overview", "Pipeline / Overview",
        "Executive summary of the 333 Method pipeline (the old dashboard's homepage).",
        [key_metrics,
         Row("Pipeline funnel and response rates", [funnel(), response_rate_by_channel(h=9)]),
         Row("Top errors and sales", [
             bargauge("Top errors", "The ten error types that affect the most sites right now "
                      "(sites.error_type of sites with an active error). Details on Pipeline / "
                      "Health.",
                      [i(or_zero(f"topk(10, sum by (error_type) ({sel('pipeline_site_errors')}))"),
                         "{{error_type}}")], "short", thresholds=steps(BLUE)),
             piechart("Sales by channel", "Sales credited to each channel, whole history.",
                      [i(f"sum by (channel) ({sel('pipeline_sales_total')})", "{{channel}}")],
                      "short", w=12),
         ])],
        extra_tags=["overview"])
