"""BotFlow's rules and dashboards: one dashboard per page of its analytics write-up.

Pages: the real-time dashboard (cards, response-time and message-volume charts, the conversation
feed as counts by status), the bot performance summary (per-bot rates, percentiles, AI usage and
cost) and the aggregation workers (queue states, freshness of the hourly and daily aggregates).
BotFlow's document names no alert thresholds: the defaults below are ours (docs/packs/botflow.md).
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

NAME = "botflow"
BOT = 'bot=~"$bot"'
OUTBOUND, SUCCESS, WAITING = 'direction="outbound"', 'outcome="success"', 'status="waiting"'
HOURLY, DAILY = 'queue="hourly"', 'queue="daily"'


@dataclass(frozen=True)
class Thresholds:
    """BotFlow's document names none: these are documented defaults (docs/packs/botflow.md)."""

    response_p95_seconds: float = 5.0       # WhatsApp users expect an answer within seconds
    min_responses: int = 20                 # responses in the histogram before p95 counts
    error_rate: float = 0.10                # failed conversations in the fast window
    handoff_rate: float = 0.25              # handed to a human in the slow window
    fallback_rate: float = 0.25             # the bot did not understand, slow window
    delivery_failure_rate: float = 0.05     # outbound messages that failed, fast window
    min_conversations: int = 20             # finished conversations before a rate counts
    min_messages: int = 20                  # outbound messages before a rate counts
    hourly_stale_seconds: int = 2 * 3600    # the hourly worker runs at :05
    daily_stale_seconds: int = 26 * 3600    # the daily worker runs at 01:00
    backlog_jobs: int = 2                   # jobs waiting in one queue


THRESHOLDS = Thresholds()
FAST, SLOW = "1h", "24h"


def _ratio_rules(config: MixinConfig) -> list[Recording]:
    rules = []
    for window in (FAST, SLOW):
        finished = select(config, "botflow_conversations_finished_recent", f'window="{window}"')
        rules.append(Recording(
            f"botflow:conversation_outcome_ratio:{window}",
            f"sum by (job, instance, bot, outcome) ({finished})\n"
            f"  / ignoring (outcome) group_left\n"
            f"sum by (job, instance, bot) ({finished})",
            why=f"Share of each outcome among the conversations finished in the last {window}, per bot."))
        rules.append(Recording(
            f"botflow:conversations_finished:{window}",
            f"sum by (job, instance, bot) ({finished})",
            why="The denominator, so the rate alerts can ask for enough conversations."))
    outbound = select(config, "botflow_messages_recent", 'direction="outbound"', f'window="{FAST}"')
    failed = select(config, "botflow_messages_failed_recent", 'direction="outbound"', f'window="{FAST}"')
    rules.append(Recording(
        f"botflow:outbound_failure_ratio:{FAST}",
        f"sum by (job, instance, bot) ({failed})\n  / sum by (job, instance, bot) ({outbound})",
        why="Outbound messages of the last hour whose delivery failed, per bot."))
    buckets = select(config, "botflow_response_time_seconds_bucket")
    for q in ("0.5", "0.95", "0.99"):
        rules.append(Recording(
            f"botflow:response_time_seconds:p{q[2:].ljust(2, '0')}",
            f"histogram_quantile({q}, sum by (job, instance, bot, le) ({buckets}))",
            why=f"The {q} quantile of the bots' response times over the exporter's window (1 h)."))
    return rules


def alerts(config: MixinConfig, t: Thresholds = THRESHOLDS) -> list[Alert]:
    count = select(config, "botflow_response_time_seconds_count")
    return [
        pack_alert(NAME, config, "BotflowResponseTimeHigh", "warning",
               f"botflow:response_time_seconds:p95 > {t.response_p95_seconds:g}\n"
               f"and on (job, instance, bot) sum by (job, instance, bot) ({count}) >= {t.min_responses}",
               "10m", "A bot answers slowly: its 95th percentile response time is high.",
               "{{ $labels.bot }} answers in {{ $value | humanizeDuration }} at the 95th percentile "
               "(last hour). Check the AI provider's latency and the knowledge-base lookups.",
               "The bot's response time is back to normal.",
               f"p95 response time > {t.response_p95_seconds:g} s over the last hour (≥ {t.min_responses} "
               "responses), for 10 m", "botflow-realtime"),
        pack_alert(NAME, config, "BotflowConversationErrorRateHigh", "warning",
               f'botflow:conversation_outcome_ratio:{FAST}{{outcome="failed"}} > {t.error_rate:g}\n'
               f"and on (job, instance, bot) botflow:conversations_finished:{FAST} >= {t.min_conversations}",
               "10m", "Many of a bot's conversations end in an error.",
               "{{ $labels.bot }}: {{ $value | humanizePercentage }} of the conversations finished in the "
               "last hour failed. Look at the bot's errors and its AI provider.",
               "The bot's conversations succeed again.",
               f"failed share of the last hour's finished conversations > {t.error_rate:.0%} "
               f"(≥ {t.min_conversations} finished), for 10 m", "botflow-bot-performance"),
        pack_alert(NAME, config, "BotflowHandoffRateHigh", "warning",
               f'botflow:conversation_outcome_ratio:{SLOW}{{outcome="handoff"}} > {t.handoff_rate:g}\n'
               f"and on (job, instance, bot) botflow:conversations_finished:{SLOW} >= {t.min_conversations}",
               "30m", "A bot hands many conversations over to a human.",
               "{{ $labels.bot }} handed {{ $value | humanizePercentage }} of the last 24 h's "
               "conversations to a person. Its flows or knowledge base miss common questions.",
               "The bot's handoff rate is back to normal.",
               f"handoff share over 24 h > {t.handoff_rate:.0%} (≥ {t.min_conversations} finished), for 30 m",
               "botflow-bot-performance"),
        pack_alert(NAME, config, "BotflowFallbackRateHigh", "warning",
               f'botflow:conversation_outcome_ratio:{SLOW}{{outcome="fallback"}} > {t.fallback_rate:g}\n'
               f"and on (job, instance, bot) botflow:conversations_finished:{SLOW} >= {t.min_conversations}",
               "30m", "A bot often does not understand its customers (fallback answers).",
               "{{ $labels.bot }} fell back in {{ $value | humanizePercentage }} of the last 24 h's "
               "conversations.", "The bot's fallback rate is back to normal.",
               f"fallback share over 24 h > {t.fallback_rate:.0%} (≥ {t.min_conversations} finished), for 30 m",
               "botflow-bot-performance"),
        pack_alert(NAME, config, "BotflowMessageDeliveryFailing", "warning",
               f"botflow:outbound_failure_ratio:{FAST} > {t.delivery_failure_rate:g}\n"
               f"and on (job, instance, bot) sum by (job, instance, bot) "
               f"({select(config, 'botflow_messages_recent', OUTBOUND, win(FAST))})"
               f" >= {t.min_messages}",
               "10m", "A bot's answers are not delivered.",
               "{{ $labels.bot }}: {{ $value | humanizePercentage }} of the last hour's outbound messages "
               "failed. Check the messaging provider (WhatsApp Business API) and its token.",
               "The bot's messages are delivered again.",
               f"failed share of outbound messages over 1 h > {t.delivery_failure_rate:.0%} "
               f"(≥ {t.min_messages} sent), for 10 m", "botflow-realtime"),
        pack_alert(NAME, config, "BotflowAggregationStale", "warning",
               f"time() - {select(config, 'botflow_aggregation_last_completed_timestamp_seconds', HOURLY)}"
               f" > {t.hourly_stale_seconds}\n"
               f"or time() - {select(config, 'botflow_aggregation_last_completed_timestamp_seconds', DAILY)}"
               f" > {t.daily_stale_seconds}",
               "5m", "An aggregation worker has not completed a job for too long.",
               "The {{ $labels.queue }} aggregation queue last completed a job {{ $value | humanizeDuration }} "
               "ago: usage_analytics or bot_performance_metrics fall behind.",
               "The aggregation worker completes jobs again.",
               f"no completed hourly job for {t.hourly_stale_seconds // 3600} h or daily job for "
               f"{t.daily_stale_seconds // 3600} h, for 5 m", "botflow-workers"),
        pack_alert(NAME, config, "BotflowAggregationBacklog", "warning",
               f'sum by (job, instance, queue) ({select(config, "botflow_aggregation_jobs", WAITING)})'
               f" > {t.backlog_jobs}",
               "30m", "Aggregation jobs pile up in a queue.",
               "{{ $value }} jobs wait in the {{ $labels.queue }} aggregation queue: the workers are down "
               "or cannot keep up.", "The aggregation queue is drained.",
               f"more than {t.backlog_jobs} jobs waiting in one queue, for 30 m", "botflow-workers"),
    ]


def groups(config: MixinConfig) -> tuple[list[Group], list[Group]]:
    recording = [Group("botflow.recording", tuple(_ratio_rules(config)),
                       why="Ratios and percentiles the BotFlow alerts and dashboards share.")]
    alerting = [Group("botflow.alerts", tuple(alerts(config)),
                      why="BotFlow: response time, conversation outcomes, delivery, aggregation workers.")]
    return recording, alerting


# ------------------------------------------------------------------------------ dashboards

def realtime(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    finished = f"sum({s('botflow_conversations_finished_recent', BOT, win(FAST))})"
    success = f"sum({s('botflow_conversations_finished_recent', BOT, win(FAST), SUCCESS)})"
    rows = [
        Row("Right now", [
            stat("Active conversations", "Conversations whose last message is younger than an hour "
                 "(BotFlow's active set).", [now(or_zero(f"sum({s('botflow_active_conversations', BOT)})"))],
                 width=6, thresholds=steps(BLUE)),
            stat("Response time (p95, last hour)", "95th percentile of the bots' response times "
                 "(messages.response_time_ms) over the last hour.",
                 [now(f"histogram_quantile(0.95, sum by (le) ({s('botflow_response_time_seconds_bucket', BOT)}))")],
                 "s", width=6, thresholds=steps(GREEN, (THRESHOLDS.response_p95_seconds, ORANGE)),
                 links=pack_links(ctx, NAME, "BotflowResponseTimeHigh")),
            stat("Success rate (last hour)", "Share of the conversations finished in the last hour "
                 "that ended in success.", [now(f"{success} / {finished}")], "percentunit", width=6,
                 thresholds=steps(RED, (0.75, ORANGE), (0.9, GREEN))),
            stat("Messages per hour", "Messages in and out during the last hour.",
                 [now(or_zero(f"sum({s('botflow_messages_recent', BOT, win(FAST))})"))], width=6,
                 thresholds=steps(BLUE)),
        ]),
        Row("Charts", [
            timeseries("Response time percentiles", "p50, p95 and p99 of the response times of the last "
                       "hour, per bot, as the exporter saw them over time.",
                       [over_time(f"botflow:response_time_seconds:p{q}{{{ctx.config.selector}, "
                                  f"instance=~\"$instance\", {BOT}}}", f"{{{{bot}}}} p{q}")
                        for q in ("50", "95", "99")], "s"),
            timeseries("Message volume (last hour)", "Inbound and outbound messages of the last hour.",
                       [over_time(f"sum by (direction) ({s('botflow_messages_recent', BOT, win(FAST))})",
                                  "{{direction}}")], "short"),
        ]),
        Row("Conversations", [
            piechart("Conversations by status", "The feed, without customers: conversations by status "
                     "(active, resolved, escalated).",
                     [now(f"sum by (status) ({s('botflow_conversations', BOT)})", "{{status}}")]),
            bargauge("Failed deliveries (last hour)", "Outbound messages of the last hour whose delivery "
                     "failed, per bot.",
                     [now(or_zero(f"sum by (bot) ({s('botflow_messages_failed_recent', BOT, win(FAST), OUTBOUND)})"),
                          "{{bot}}")], width=16, thresholds=steps(GREEN, (1, ORANGE)),
                     links=pack_links(ctx, NAME, "BotflowMessageDeliveryFailing")),
        ]),
    ]
    return dashboard(ctx, "botflow-realtime", "BotFlow / Real-time", "Active conversations, response "
                     "time, success rate and message volume (BotFlow's real-time page).", rows,
                     extra_tags=[NAME], variables=[_bot_variable(ctx)], time_from="now-6h")


def bot_performance(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    rate = f"botflow:conversation_outcome_ratio:{SLOW}{{{ctx.config.selector}, instance=~\"$instance\", {BOT}}}"
    rows = [
        Row("Outcomes", [
            table("Bot performance (last 24 h)", "Per bot: conversations finished in the last 24 h, and the "
                  "success, error (failed), fallback and handoff rates.",
                  [table_query(f"sum by (bot) ({s('botflow_conversations_finished_recent', BOT, win(SLOW))})"),
                   *[table_query(f'sum by (bot) ({rate[:-1]}, outcome="{o}"}})') for o in
                     ("success", "failed", "fallback", "handoff")]],
                  rename={"bot": "Bot", "Value #A": "Conversations", "Value #B": "Success rate",
                          "Value #C": "Error rate", "Value #D": "Fallback rate", "Value #E": "Handoff rate"},
                  hide=["instance"], sort_by="Conversations",
                  links=pack_links(ctx, NAME, "BotflowConversationErrorRateHigh", "BotflowHandoffRateHigh",
                                          "BotflowFallbackRateHigh")),
            timeseries("Outcome rates over time (24 h)", "Share of each outcome among the last 24 h's "
                       "finished conversations.",
                       [over_time(f"sum by (outcome) ({rate})", "{{outcome}}")], "percentunit"),
            bargauge("Response time p50 / p95 / p99 per bot", "Percentiles of the last hour's response times.",
                     [now(f"botflow:response_time_seconds:p{q}{{{ctx.config.selector}, instance=~\"$instance\", "
                          f"{BOT}}}", f"{{{{bot}}}} p{q}") for q in ("50", "95", "99")], "s",
                     thresholds=steps(GREEN, (THRESHOLDS.response_p95_seconds, ORANGE))),
        ]),
        Row("AI usage and cost", [
            stat("Knowledge-base hit rate (24 h)", "Share of the last 24 h's conversations that used "
                 "the knowledge base at least once.",
                 [now(f"sum({s('botflow_conversations_with_kb_hit_recent', BOT, win(SLOW))}) / "
                      f"sum({s('botflow_conversations_finished_recent', BOT, win(SLOW))})")],
                 "percentunit", width=6),
            stat("Tokens per conversation (24 h)", "AI tokens per finished conversation, last 24 h.",
                 [now(f"sum({s('botflow_tokens_recent', BOT, win(SLOW))}) / "
                      f"sum({s('botflow_conversations_finished_recent', BOT, win(SLOW))})")], width=6),
            stat("Cost per conversation (24 h)", "Estimated AI cost per finished conversation, last 24 h.",
                 [now(f"sum({s('botflow_cost_usd_recent', BOT, win(SLOW))}) / "
                      f"sum({s('botflow_conversations_finished_recent', BOT, win(SLOW))})")],
                 "currencyUSD", width=6, decimals=4),
            stat("Cost (7 days)", "Estimated AI cost of the conversations of the last 7 days.",
                 [now(or_zero(f"sum({s('botflow_cost_usd_recent', BOT, win('7d'))})"))], "currencyUSD", width=6),
            timeseries("Tokens per day, by bot", "AI tokens of the conversations finished in the last 24 h.",
                       [over_time(f"sum by (bot) ({s('botflow_tokens_recent', BOT, win(SLOW))})", "{{bot}}")],
                       "short", width=24),
        ]),
    ]
    return dashboard(ctx, "botflow-bot-performance", "BotFlow / Bot performance", "Per-bot success, error, "
                     "fallback and handoff rates, percentiles, AI usage and cost (BotFlow's bot performance "
                     "summary).", rows, extra_tags=[NAME], variables=[_bot_variable(ctx)])


def workers(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    rows = [
        Row("Aggregation workers", [
            table("Queue states", "Jobs of the daily and hourly aggregation queues by state (BotFlow's "
                  "getQueueStats: waiting, active, completed, failed).",
                  [table_query(f"sum by (queue, status) ({s('botflow_aggregation_jobs')})")],
                  rename={"queue": "Queue", "status": "State", "Value": "Jobs"}, width=12,
                  links=pack_links(ctx, NAME, "BotflowAggregationBacklog")),
            bargauge("Since the last completed job", "Time since each queue last completed a job.",
                     [now(f"time() - max by (queue) "
                          f"({s('botflow_aggregation_last_completed_timestamp_seconds')})", "{{queue}}")],
                     "dtdurations", thresholds=steps(GREEN, (THRESHOLDS.hourly_stale_seconds, ORANGE),
                                                     (THRESHOLDS.daily_stale_seconds, RED)),
                     links=pack_links(ctx, NAME, "BotflowAggregationStale")),
            bargauge("Age of the newest aggregate", "How old the newest hour of usage_analytics and the "
                     "newest day of bot_performance_metrics are.",
                     [now(f"time() - max by (aggregate) ({s('botflow_aggregate_latest_timestamp_seconds')})",
                          "{{aggregate}}")], "dtdurations", width=12),
            stat("Bots", "Bots by status.", [now(f"sum by (status) ({s('botflow_bots')})", "{{status}}")],
                 width=12, height=8),
        ]),
    ]
    return dashboard(ctx, "botflow-workers", "BotFlow / Aggregation workers", "The metrics-aggregation "
                     "queues and the freshness of the hourly and daily aggregates.", rows, extra_tags=[NAME])


def _bot_variable(ctx: Context) -> dict[str, Any]:
    return query_variable("bot", "Bot", f"label_values(botflow_conversations{{{ctx.config.selector}}}, bot)")


DASHBOARDS = {"botflow-realtime": realtime, "botflow-bot-performance": bot_performance, "botflow-workers": workers}


def render(config: MixinConfig) -> dict[str, str]:
    return render_pack(config, NAME,
                       "BotFlow", "thresholds: docs/packs/botflow.md", groups(config), DASHBOARDS)
