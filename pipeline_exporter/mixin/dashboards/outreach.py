"""Outreach Effectiveness: response, sales, delivery by channel, LLM tokens, cost and budget."""

from __future__ import annotations

from typing import Any

from pipeline_exporter.mixin.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Context,
    Row,
    barchart,
    bargauge,
    dashboard,
    last_period,
    now,
    over_time,
    override,
    per_period,
    piechart,
    response_rate_by_channel,
    stat,
    steps,
    table,
    table_query,
    text,
    timeseries,
)
from pipeline_exporter.mixin.promql import or_zero

EVENTS = ["created", "sent", "delivered", "replied", "bounced", "failed", "complained"]
STATES = "bounced|failed|complained"


def key_metrics(ctx: Context) -> Row:
    slow = ctx.config.windows.slow
    return Row("Key metrics", [
        stat("Outreach sent (all time)", "Outreach messages handed to a provider (sent_at set), "
             "all channels.", [now(ctx.total("pipeline_outreach_events_total", 'event="sent"'))],
             width=3),
        stat("Response rate (all time)", "Replies divided by messages sent, all channels "
             "(recording rule job:pipeline_outreach_replied_per_sent:ratio).",
             [now(ctx.sel("job:pipeline_outreach_replied_per_sent:ratio"))], "percentunit",
             width=3, decimals=1),
        stat("Sales (all time)", "Sales recorded, all channels.",
             [now(ctx.total("pipeline_sales_total"))], width=3),
        stat("Revenue (all time)", "Sum of sale amounts, all channels.",
             [now(ctx.total("pipeline_sales_revenue_usd_total"))], "currencyUSD", width=3),
        last_period(ctx, "Sent", "Outreach messages sent, all channels.",
                    "pipeline_outreach_sent_recent", slow, width=3),
        last_period(ctx, "Replies", "Outreach messages that got their first reply.",
                    "pipeline_outreach_replies_recent", slow, width=3),
        last_period(ctx, "Sales", "Sales sold.", "pipeline_sales_recent", slow, width=3),
        last_period(ctx, "Revenue", "Revenue of the sales sold.",
                    "pipeline_sales_revenue_usd_recent", slow, unit="currencyUSD", width=3),
    ])


def response(ctx: Context) -> Row:
    windows = ctx.config.windows
    factor = ctx.config.thresholds.reply_drop_factor
    return Row("Response", [
        response_rate_by_channel(ctx, width=8, height=8),
        piechart("Response distribution (all time)", "Where the replies come from: replies per "
                 "channel.",
                 [now(ctx.total("pipeline_outreach_events_total", 'event="replied"', by="channel"),
                      "{{channel}}")], width=8),
        bargauge("Time to first reply (median)", "Median time between sending and the first "
                 "reply, per channel, over the current rows (reply delay histogram).",
                 [now("histogram_quantile(0.5, "
                      + ctx.total("pipeline_outreach_reply_delay_seconds_bucket", by="channel, le")
                      + ")", "{{channel}}")], "dtdurations", width=8, thresholds=steps(BLUE)),
        per_period(ctx, "Replies", "Outreach messages that got their first reply, by channel.",
                   "pipeline_outreach_replies_recent", windows.slow, by="channel",
                   legend="{{channel}}", width=12, height=8),
        bargauge(f"Reply rate, last {windows.slow} and {windows.baseline}",
                 f"Replies per message sent, per channel, over the last {windows.slow} and the last "
                 f"{windows.baseline} (recording rules channel:pipeline_outreach_replied_per_sent:"
                 f"ratio{windows.slow} and ratio{windows.baseline}). ReplyRateDropped fires when the "
                 f"first is under {factor:g} times the second, with enough sends.",
                 [now(ctx.sel(f"channel:pipeline_outreach_replied_per_sent:ratio{windows.slow}"),
                      f"{{{{channel}}}} {windows.slow}"),
                  now(ctx.sel(f"channel:pipeline_outreach_replied_per_sent:ratio{windows.baseline}"),
                      f"{{{{channel}}}} {windows.baseline}")],
                 "percentunit", width=12, height=8, minimum=0, decimals=1, thresholds=steps(BLUE),
                 links=ctx.runbook_links("ReplyRateDropped")),
    ])


def sales(ctx: Context) -> Row:
    slow = ctx.config.windows.slow
    return Row("Sales", [
        stat("Average sale", "Mean sale amount over the current rows (sale amount histogram: "
             "sum / count).",
             [now(f"sum({ctx.sel('pipeline_sale_amount_usd_sum')}) / "
                  f"sum({ctx.sel('pipeline_sale_amount_usd_count')})")], "currencyUSD",
             width=4, height=8),
        stat("Conversion rate (all time)", "Sales divided by outreach messages sent (recording "
             "rule job:pipeline_sales_per_sent:ratio).",
             [now(ctx.sel("job:pipeline_sales_per_sent:ratio"))], "percentunit", width=4,
             height=8, decimals=2),
        bargauge("Conversion by channel (all time)", "Sales divided by messages sent, per "
                 "channel (recording rule channel:pipeline_sales_per_sent:ratio).",
                 [now(ctx.sel("channel:pipeline_sales_per_sent:ratio"), "{{channel}}")],
                 "percentunit", width=8, minimum=0, decimals=2, thresholds=steps(GREEN)),
        piechart("Revenue by channel (all time)", "Revenue credited to each channel.",
                 [now(ctx.total("pipeline_sales_revenue_usd_total", by="channel"), "{{channel}}")],
                 "currencyUSD", width=8),
        per_period(ctx, "Revenue", "Revenue of the sales sold, by channel.",
                   "pipeline_sales_revenue_usd_recent", slow, by="channel", legend="{{channel}}",
                   unit="currencyUSD", width=12, height=7),
        per_period(ctx, "Sales", "Sales sold, by channel.", "pipeline_sales_recent", slow,
                   by="channel", legend="{{channel}}", width=12, height=7),
    ])


def delivery(ctx: Context) -> Row:
    windows = ctx.config.windows
    by_state = ctx.total("pipeline_outreaches", f'status=~"{STATES}"', by="channel, status")
    states = f'label_replace({by_state}, "event", "$1", "status", "(.*)")'
    funnel = (f"{ctx.total('pipeline_outreach_events_total', by='channel, event')}\n"
              f"or\nsum by (channel, event) ({states})")
    return Row("Delivery by channel", [
        barchart("Delivery funnel by channel (all time)", "Outreach rows per channel at each "
                 "delivery step: created (queued or later), sent, delivered and replied (event "
                 "counters), and the rows now bounced, failed or complained (pipeline_outreaches).",
                 table_query(funnel), row_label="channel", column_label="event", columns=EVENTS,
                 width=16, height=12),
        bargauge("Delivery rate by channel (all time)", "Delivered divided by sent per channel, "
                 "over every outreach row (recording rule "
                 "channel:pipeline_outreach_delivered_per_sent:ratio).",
                 [now(ctx.sel("channel:pipeline_outreach_delivered_per_sent:ratio"), "{{channel}}")],
                 "percentunit", width=8, height=12, minimum=0, maximum=1, decimals=1,
                 thresholds=steps(GREEN)),
        per_period(ctx, "Outreach sent", "Outreach messages sent, by channel.",
                   "pipeline_outreach_sent_recent", windows.slow, by="channel",
                   legend="{{channel}}", width=12, height=8),
        table("Queue by channel", "Messages queued now, and sent in the last "
              f"{windows.fast} and {windows.slow}, per channel. OutreachStalled fires when a channel "
              f"that sent in the last {windows.slow} has a queue but sent nothing for "
              f"{windows.fast} + {ctx.config.thresholds.outreach_stall_for}.",
              [table_query(ctx.total("pipeline_outreach_queued", by="channel")),
               table_query(or_zero(ctx.total("pipeline_outreach_sent_recent", f'window="{windows.fast}"',
                                             by="channel"))),
               table_query(ctx.total("pipeline_outreach_sent_recent", f'window="{windows.slow}"', by="channel"))],
              width=12, height=8, hide=["instance"], sort_by="Queued",
              rename={"channel": "Channel", "Value #A": "Queued",
                      "Value #B": f"Sent, last {windows.fast}", "Value #C": f"Sent, last {windows.slow}"},
              links=ctx.runbook_links("OutreachStalled")),
    ])


def llm(ctx: Context) -> Row:
    slow = ctx.config.windows.slow
    return Row("LLM tokens and cost", [
        stat("LLM cost (all time)", "Money spent on LLM calls, all stages and providers.",
             [now(ctx.total("pipeline_llm_cost_usd_total"))], "currencyUSD", width=4, height=8),
        stat("Cost per response (all time)", "LLM cost divided by replies received (recording "
             "rule job:pipeline_llm_cost_usd_per_reply:ratio): what one reply costs in LLM spend.",
             [now(ctx.sel("job:pipeline_llm_cost_usd_per_reply:ratio"))], "currencyUSD", width=4,
             height=8, decimals=2),
        piechart("Cost by stage (all time)", "LLM cost per pipeline stage (scoring, rescoring, "
                 "proposals, replies).",
                 [now(ctx.total("pipeline_llm_cost_usd_total", by="stage"), "{{stage}}")],
                 "currencyUSD", width=8),
        bargauge("Cost by provider and model (all time)", "LLM cost per provider and model.",
                 [now(f"sort_desc({ctx.total('pipeline_llm_cost_usd_total', by='provider, model')})",
                      "{{provider}} {{model}}")], "currencyUSD", width=8, thresholds=steps(BLUE)),
        bargauge("Tokens by stage (all time)", "Prompt and completion tokens per stage.",
                 [now(ctx.total("pipeline_llm_tokens_total", by="stage, type"), "{{stage}} {{type}}")],
                 "short", width=8, thresholds=steps(BLUE)),
        per_period(ctx, "LLM cost", "LLM spend, by stage.", "pipeline_llm_cost_usd_recent", slow,
                   by="stage", legend="{{stage}}", unit="currencyUSD", width=10),
        text("Value for money", "How to compare channels and stages by cost.", """
**Value for money** = response rate ÷ cost per response. A channel with a lower response rate
can still be the better buy when its messages are cheap to produce.

- *Cost per response* rises when scoring and proposal stages spend tokens on sites that never
  reply: tighten the score threshold before `proposal_ready`.
- Compare *Cost by stage* with the funnel on *Pipeline / Health*: a stage that costs a lot but
  moves few sites forward is the first place to switch to a cheaper model.
""", width=6),
    ])


def budget(ctx: Context) -> Row:
    slow = ctx.config.windows.slow
    month = "provider:pipeline_llm_cost_usd_month_to_date:sum"
    projected = "provider:pipeline_llm_cost_usd:projected_month_end"
    budget_rule = "provider:pipeline_llm_budget_usd:max"
    total = 'provider="total"'
    money = steps(GREEN)
    return Row("LLM budget", [
        stat("LLM cost this month", "LLM cost since the start of the calendar month (UTC), all "
             f"providers (recording rule {month}). LlmBudgetBurnHigh is critical above the budget.",
             [now(or_zero(ctx.total(month, total)))], "currencyUSD", width=4, height=7,
             thresholds=money, links=ctx.runbook_links("LlmBudgetBurnHigh")),
        stat("Projected at month end", f"This month's cost plus the last {slow}'s pace until "
             f"the end of the month ({projected}). LlmBudgetBurnHigh warns above the budget.",
             [now(or_zero(ctx.total(projected, total)))], "currencyUSD", width=4, height=7,
             thresholds=money, links=ctx.runbook_links("LlmBudgetBurnHigh")),
        table("This month by provider against the budget", "Per provider (and total): cost "
              "this month, the projection to the month's end and the monthly budget "
              "(llm_monthly_budget_usd in the exporter's config; none set = no budget column). "
              "Share = cost this month / budget.",
              [table_query(ctx.total(month, by="provider")),
               table_query(ctx.total(projected, by="provider")),
               table_query(ctx.total(budget_rule, by="provider")),
               table_query(f"{ctx.total(month, by='provider')} / {ctx.total(budget_rule, by='provider')}")],
              "currencyUSD", width=16, height=7, sort_by="Projected",
              rename={"provider": "Provider", "Value #A": "This month", "Value #B": "Projected",
                      "Value #C": "Budget", "Value #D": "Share of budget"},
              overrides=[override("Share of budget", unit="percentunit",
                                  custom__cellOptions={"type": "color-text"},
                                  thresholds=steps(GREEN, (0.8, ORANGE), (1, RED)))],
              links=ctx.runbook_links("LlmBudgetBurnHigh")),
        timeseries("This month's LLM cost against the budget", "Cost since the start of the "
                   "month, its projection to the month's end and the budget, all providers "
                   "(provider=\"total\").",
                   [over_time(ctx.total(month, total), "this month"),
                    over_time(ctx.total(projected, total), "projected at month end"),
                    over_time(ctx.total(budget_rule, total), "budget")],
                   "currencyUSD", width=24, height=8, links=ctx.runbook_links("LlmBudgetBurnHigh")),
    ])


def build(ctx: Context) -> dict[str, Any]:
    return dashboard(
        ctx, "pipeline-outreach", "Pipeline / Outreach",
        "Outreach performance, sales, ROI, LLM cost and budget (the old dashboard's page 2, "
        "Outreach Effectiveness).",
        [key_metrics(ctx), response(ctx), sales(ctx), delivery(ctx), llm(ctx), budget(ctx)],
        extra_tags=["outreach"])
