"""Conversations: totals, inbound, unread, sentiment, action items; channel/sentiment filters."""

from __future__ import annotations

from typing import Any

from pipeline_exporter.mixin.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    YELLOW,
    Context,
    Row,
    bargauge,
    dashboard,
    last_period,
    now,
    override,
    per_period,
    piechart,
    query_variable,
    stat,
    steps,
    table,
    table_query,
    text,
)
from pipeline_exporter.mixin.promql import or_zero

CHANNEL = 'channel=~"$channel"'
SENTIMENT = 'sentiment=~"$sentiment"'
INBOUND = 'direction="inbound"'
# Messages per CURRENT classification (a gauge): classifying a message moves it between
# sentiments without counting it twice, and a pruned message leaves every figure here.
MESSAGES = "pipeline_conversation_messages"


def _unread(ctx: Context, sentiment: str) -> str:
    return or_zero(ctx.total("pipeline_conversation_messages_unread", CHANNEL, f'sentiment="{sentiment}"'))


def variables(ctx: Context) -> list[dict[str, Any]]:
    selector = ctx.config.selector
    return [
        query_variable("channel", "Channel",
                       f'label_values(pipeline_conversations{{{selector}, instance=~"$instance"}}, channel)'),
        query_variable("sentiment", "Sentiment",
                       f'label_values({MESSAGES}{{{selector}, instance=~"$instance", '
                       f'{INBOUND}}}, sentiment)'),
    ]


def key_metrics(ctx: Context) -> Row:
    return Row("Key metrics", [
        stat("Conversations", "Threads (sites) with at least one message on the selected "
             "channels.", [now(or_zero(ctx.total("pipeline_conversations", CHANNEL)))], width=6),
        stat("Inbound messages", "Inbound messages in the database on the selected channels "
             "and sentiments (their current classification).",
             [now(or_zero(ctx.total(MESSAGES, INBOUND, CHANNEL, SENTIMENT)))], width=6),
        last_period(ctx, "Inbound messages", "Inbound messages received on the selected channels "
                    "(every sentiment: the windowed count has no sentiment label).",
                    "pipeline_conversation_messages_recent", ctx.config.windows.slow,
                    matchers=(INBOUND, CHANNEL), width=6),
        stat("Unread messages", "Inbound messages not read yet (is_read = 0) on the selected "
             "channels and sentiments.",
             [now(or_zero(ctx.total("pipeline_conversation_messages_unread", CHANNEL, SENTIMENT)))],
             width=6, thresholds=steps(GREEN, (1, ORANGE))),
    ])


def sentiment(ctx: Context) -> Row:
    inbound = (INBOUND, CHANNEL, SENTIMENT)
    by_sentiment = ctx.total(MESSAGES, *inbound, by="sentiment")
    unread = ctx.total("pipeline_conversation_messages_unread", CHANNEL, SENTIMENT, by="sentiment")
    return Row("Sentiment", [
        piechart("Sentiment distribution", "Inbound messages in the database by their current "
                 "sentiment (unclassified = not classified yet).",
                 [now(by_sentiment, "{{sentiment}}")], width=8),
        table("Sentiment breakdown", "Per sentiment: inbound messages in the database, their "
              "share, and how many are still unread.",
              [table_query(by_sentiment),
               table_query(f"{by_sentiment} / scalar({ctx.total(MESSAGES, *inbound)})"),
               # "or … * 0" gives sentiments without unread messages a 0 instead of a blank.
               table_query(f"{unread} or {by_sentiment} * 0")],
              width=8, sort_by="Inbound messages",
              rename={"sentiment": "Sentiment", "Value #A": "Inbound messages",
                      "Value #B": "Share", "Value #C": "Unread"},
              overrides=[override("Share", unit="percentunit", decimals=1)]),
        bargauge("Sentiment by channel", "Inbound messages in the database per channel and "
                 "current sentiment.",
                 [now(ctx.total(MESSAGES, *inbound, by="channel, sentiment"),
                      "{{channel}} {{sentiment}}")], width=8, thresholds=steps(BLUE)),
        per_period(ctx, "Inbound messages", "Inbound messages received, by channel (the "
                   "windowed count has no sentiment: a message's sentiment comes later than "
                   "the message, so the sentiment filter does not apply here).",
                   "pipeline_conversation_messages_recent", ctx.config.windows.slow,
                   matchers=(INBOUND, CHANNEL), by="channel", legend="{{channel}}",
                   width=24, height=7),
    ])


def action_items(ctx: Context) -> Row:
    return Row("Action items", [
        stat("Unread positive", "Unread positive replies on the selected channels: respond "
             "quickly!", [now(_unread(ctx, "positive"))], width=5, height=5, color_mode="background",
             thresholds=steps(GREEN, (1, RED))),
        stat("Unread objections", "Unread objections on the selected channels: address "
             "promptly.", [now(_unread(ctx, "objection"))], width=5, height=5,
             color_mode="background", thresholds=steps(GREEN, (1, ORANGE))),
        stat("Unread negative", "Unread negative replies on the selected channels: review the "
             "messaging that caused them.", [now(_unread(ctx, "negative"))], width=5, height=5,
             color_mode="background", thresholds=steps(GREEN, (1, YELLOW))),
        stat("Unread unclassified", "Unread replies the sentiment classifier has not looked at "
             "yet.", [now(_unread(ctx, "unclassified"))], width=4, height=5, thresholds=steps(BLUE)),
        text("What to do", "The old page's action items, in priority order.", """
1. **Positive** — answer first, the prospect is ready to talk.
2. **Objection** — address promptly; collect common objections to refine proposal templates.
3. **Negative** — review the messaging that caused it; opt-out requests go to *Compliance*.

Message text and senders are personal data and are never exported: open the threads in the
pipeline's own inbox.
""", width=5, height=5),
        bargauge("Unread by channel", "Unread inbound messages per channel for the selected "
                 "sentiments.",
                 [now(or_zero(ctx.total("pipeline_conversation_messages_unread", CHANNEL, SENTIMENT,
                                        by="channel")), "{{channel}}")],
                 width=24, height=6, thresholds=steps(GREEN, (1, ORANGE))),
    ])


def build(ctx: Context) -> dict[str, Any]:
    return dashboard(
        ctx, "pipeline-conversations", "Pipeline / Conversations",
        "Inbound replies, sentiment and the replies waiting for an answer (the old "
        "dashboard's page 3, Conversations).",
        [key_metrics(ctx), sentiment(ctx), action_items(ctx)], extra_tags=["conversations"],
        variables=variables(ctx))
