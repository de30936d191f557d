"""Outreach Effectiveness: response, sales, delivery funnel by channel, LLM tokens and cost."""

from .common import (BLUE, GREEN, Row, barchart, bargauge, dashboard, i, piechart, response_rate_by_channel,
                     sel, stat, steps, t, tbl, text, timeseries, total)

EVENTS = ["created", "sent", "delivered", "replied", "bounced", "failed", "complained"]


def build() -> dict:
    key_metrics = Row("Key metrics", [
        stat("Outreach sent", "Outreach messages handed to a provider (sent_at set), all "
             "channels, whole history.",
             [i(total("pipeline_outreach_events_total", 'event="sent"'))], w=6),
        stat("Response rate", "Replies divided by messages sent, all channels, whole history "
             "(recording rule job:pipeline_outreach_replied_per_sent:ratio).",
             [i(sel("job:pipeline_outreach_replied_per_sent:ratio"))], "percentunit", w=6,
             decimals=1),
        stat("Sales", "Sales recorded, all channels, whole history.",
             [i(total("pipeline_sales_total"))], w=6),
        stat("Revenue", "Sum of sale amounts, all channels, whole history.",
             [i(total("pipeline_sales_revenue_usd_total"))], "currencyUSD", w=6),
    ])
    response = Row("Response", [
        response_rate_by_channel(w=8, h=8),
        piechart("Response distribution", "Where the replies come from: replies per channel, "
                 "whole history.",
                 [i(total("pipeline_outreach_events_total", 'event="replied"', by="channel"),
                    "{{channel}}")], w=8),
        bargauge("Time to first reply (median)", "Median time between sending and the first "
                 "reply, per channel, whole history (reply delay histogram).",
                 [i("histogram_quantile(0.5, "
                    + total("pipeline_outreach_reply_delay_seconds_bucket", by="channel, le")
                    + ")", "{{channel}}")], "dtdurations", w=8, thresholds=steps(BLUE)),
        timeseries("Replies per day by channel", "Replies received per day, per channel "
                   "(recording rule channel_event:pipeline_outreach_events:increase24h). A fresh "
                   "Prometheus shows 0 until counters move.",
                   [t(total("channel_event:pipeline_outreach_events:increase24h",
                            'event="replied"', by="channel"), "{{channel}}")],
                   "short", w=24, h=7),
    ])
    sales = Row("Sales", [
        stat("Average sale", "Mean sale amount, whole history (sale amount histogram: sum / "
             "count).",
             [i(f"sum({sel('pipeline_sale_amount_usd_sum')}) / "
                f"sum({sel('pipeline_sale_amount_usd_count')})")], "currencyUSD", w=4, h=8),
        stat("Conversion rate", "Sales divided by outreach messages sent, whole history "
             "(recording rule job:pipeline_sales_per_sent:ratio).",
             [i(sel("job:pipeline_sales_per_sent:ratio"))], "percentunit", w=4, h=8,
             decimals=2),
        bargauge("Conversion by channel", "Sales divided by messages sent, per channel, whole "
                 "history (recording rule channel:pipeline_sales_per_sent:ratio).",
                 [i(sel("channel:pipeline_sales_per_sent:ratio"), "{{channel}}")],
                 "percentunit", w=8, minimum=0, decimals=2, thresholds=steps(GREEN)),
        piechart("Revenue by channel", "Revenue credited to each channel, whole history.",
                 [i(total("pipeline_sales_revenue_usd_total", by="channel"), "{{channel}}")],
                 "currencyUSD", w=8),
        timeseries("Revenue per day", "Revenue per day, per channel.",
                   [t(f"sum by (channel) (increase({sel('pipeline_sales_revenue_usd_total')}[1d]))",
                      "{{channel}}")], "currencyUSD", w=24, h=7, bars=True, stack=True,
                   interval="1h"),
    ])
    delivery = Row("Delivery funnel by channel", [
        barchart("Delivery funnel by channel", "Outreach rows per channel at each delivery "
                 "step, whole history: created (queued or later), sent, delivered, replied, and "
                 "the failures (bounced, failed, complained).",
                 tbl(total("pipeline_outreach_events_total", by="channel, event")),
                 row_label="channel", column_label="event", columns=EVENTS, w=16, h=12),
        bargauge("Delivery rate by channel", "Delivered divided by sent per channel, whole "
                 "history (recording rule channel:pipeline_outreach_delivered_per_sent:ratio).",
                 [i(sel("channel:pipeline_outreach_delivered_per_sent:ratio"), "{{channel}}")],
                 "percentunit", w=8, h=12, minimum=0, maximum=1, decimals=1,
                 thresholds=steps(GREEN)),
    ])
    llm = Row("LLM tokens and cost", [
        stat("LLM cost", "Money spent on LLM calls, all stages and providers, whole history.",
             [i(total("pipeline_llm_cost_usd_total"))], "currencyUSD", w=4, h=8),
        stat("Cost per response", "LLM cost divided by replies received, whole history "
             "(recording rule job:pipeline_llm_cost_usd_per_reply:ratio): what one reply costs "
             "in LLM spend.",
             [i(sel("job:pipeline_llm_cost_usd_per_reply:ratio"))], "currencyUSD", w=4, h=8,
             decimals=2),
        piechart("Cost by stage", "LLM cost per pipeline stage (scoring, rescoring, proposals, "
                 "replies), whole history.",
                 [i(total("pipeline_llm_cost_usd_total", by="stage"), "{{stage}}")],
                 "currencyUSD", w=8),
        bargauge("Cost by provider and model", "LLM cost per provider and model, whole history.",
                 [i(f"sort_desc({total('pipeline_llm_cost_usd_total', by='provider, model')})",
                    "{{provider}} {{model}}")], "currencyUSD", w=8, thresholds=steps(BLUE)),
        bargauge("Tokens by stage", "Prompt and completion tokens per stage, whole history.",
                 [i(total("pipeline_llm_tokens_total", by="stage, type"), "{{stage}} {{type}}")],
                 "short", w=8, thresholds=steps(BLUE)),
        timeseries("LLM cost per day by stage", "LLM spend per day, per stage.",
                   [t(f"sum by (stage) (increase({sel('pipeline_llm_cost_usd_total')}[1d]))",
                      "{{stage}}")], "currencyUSD", w=10, bars=True, stack=True, interval="1h"),
        text("Value for money", "How to compare channels and stages by cost.", """
**Value for money** = response rate ÷ cost per response. A channel with a lower response rate
can still be the better buy when its messages are cheap to produce.

- *Cost per response* rises when scoring and proposal stages spend tokens on sites that never
  reply: tighten the score threshold before `proposal_ready`.
- Compare *Cost by stage* with the funnel on *Pipeline / Health*: a stage that costs a lot but
  moves few sites forward is the first place to switch to a cheaper model.
""", w=6),
    ])
    return dashboard(
        "pipeline-outreach", "Pipeline / Outreach",
        "Outreach performance, sales, ROI and LLM cost (the old dashboard's page 2, Outreach "
        "Effectiveness).",
        [key_metrics, response, sales, delivery, llm],
        extra_tags=["outreach"])
