"""Conversations: totals, inbound, unread, sentiment, action items; channel/sentiment filters."""

from .common import (BLUE, GREEN, ORANGE, RED, YELLOW, Row, bargauge, dashboard, i, or_zero,
                     override, piechart, query_variable, sel, stat, steps, t, table, tbl, text,
                     timeseries, total)

CHANNEL = 'channel=~"$channel"'
SENTIMENT = 'sentiment=~"$sentiment"'
INBOUND = 'direction="inbound"'
# Inbound messages on the selected channels and sentiments. Their sum over every sentiment only
# grows; the unclassified series alone goes down as messages are classified.
INBOUND_MESSAGES = sel("pipeline_conversation_messages_total", INBOUND, CHANNEL, SENTIMENT)


def _unread(sentiment: str) -> str:
    return or_zero(total("pipeline_conversation_messages_unread", CHANNEL,
                         f'sentiment="{sentiment}"'))


def build() -> dict:
    variables = [
        query_variable("channel", "Channel",
                       'label_values(pipeline_conversations{instance=~"$instance"}, channel)'),
        query_variable("sentiment", "Sentiment",
                       'label_values(pipeline_conversation_messages_total{instance=~"$instance", '
                       'direction="inbound"}, sentiment)'),
    ]
    key_metrics = Row("Key metrics", [
        stat("Conversations", "Threads (sites) with at least one message on the selected "
             "channels.",
             [i(or_zero(total("pipeline_conversations", CHANNEL)))], w=6),
        stat("Inbound replies", "Inbound messages on the selected channels and sentiments, "
             "whole history.",
             [i(or_zero(total("pipeline_conversation_messages_total", INBOUND, CHANNEL,
                              SENTIMENT)))], w=6),
        stat("Inbound replies today", "Inbound messages on the selected channels and sentiments "
             "now, less 24 hours ago. With every sentiment selected that is the messages "
             "received in the last 24 hours; per sentiment it counts messages that got that "
             "sentiment (classified today). Current totals, not increase(): unclassified "
             "goes down as messages are classified.",
             [i(or_zero(f"sum ({INBOUND_MESSAGES}) - (sum ({INBOUND_MESSAGES} offset 1d) or vector(0))"))],
             w=6),
        stat("Unread messages", "Inbound messages not read yet (is_read = 0) on the selected "
             "channels and sentiments.",
             [i(or_zero(total("pipeline_conversation_messages_unread", CHANNEL, SENTIMENT)))],
             w=6, thresholds=steps(GREEN, (1, ORANGE))),
    ])
    sentiment = Row("Sentiment", [
        piechart("Sentiment distribution", "Inbound messages by sentiment (unclassified = not "
                 "classified yet), whole history.",
                 [i(total("pipeline_conversation_messages_total", INBOUND, CHANNEL, SENTIMENT,
                          by="sentiment"), "{{sentiment}}")], w=8),
        table("Sentiment breakdown", "Per sentiment: inbound messages (whole history), their "
              "share, and how many are still unread.",
              [tbl(total("pipeline_conversation_messages_total", INBOUND, CHANNEL, SENTIMENT,
                         by="sentiment")),
               tbl(f"{total('pipeline_conversation_messages_total', INBOUND, CHANNEL, SENTIMENT, by='sentiment')}"
                   f" / scalar({total('pipeline_conversation_messages_total', INBOUND, CHANNEL, SENTIMENT)})"),
               # "or … * 0" gives sentiments without unread messages a 0 instead of a blank.
               tbl(f"{total('pipeline_conversation_messages_unread', CHANNEL, SENTIMENT, by='sentiment')}"
                   f" or {total('pipeline_conversation_messages_total', INBOUND, CHANNEL, SENTIMENT, by='sentiment')} * 0")],
              w=8, sort_by="Inbound messages",
              rename={"sentiment": "Sentiment", "Value #A": "Inbound messages",
                      "Value #B": "Share", "Value #C": "Unread"},
              overrides=[override("Share", unit="percentunit", decimals=1)]),
        bargauge("Sentiment by channel", "Inbound messages per channel and sentiment, whole "
                 "history.",
                 [i(total("pipeline_conversation_messages_total", INBOUND, CHANNEL, SENTIMENT,
                          by="channel, sentiment"), "{{channel}} {{sentiment}}")],
                 w=8, thresholds=steps(BLUE)),
        timeseries("Inbound replies per day by sentiment", "Classified inbound messages per "
                   "day, by sentiment: is the share of objections and negatives changing? "
                   "Unclassified is left out: messages leave it when the classifier scores them, "
                   "so its count goes down and increase() would misread that as a counter reset "
                   "(the unread unclassified count is under Action items).",
                   [t("sum by (sentiment) (increase(pipeline_conversation_messages_total"
                      '{instance=~"$instance", direction="inbound", channel=~"$channel", '
                      'sentiment=~"$sentiment", sentiment!="unclassified"}[1d]))', "{{sentiment}}")],
                   "short", w=24, h=7, bars=True, stack=True, interval="1h"),
    ])
    actions = Row("Action items", [
        stat("Unread positive", "Unread positive replies on the selected channels: respond "
             "quickly!", [i(_unread("positive"))], w=5, h=5, color_mode="background",
             thresholds=steps(GREEN, (1, RED))),
        stat("Unread objections", "Unread objections on the selected channels: address "
             "promptly.", [i(_unread("objection"))], w=5, h=5, color_mode="background",
             thresholds=steps(GREEN, (1, ORANGE))),
        stat("Unread negative", "Unread negative replies on the selected channels: review the "
             "messaging that caused them.", [i(_unread("negative"))], w=5, h=5,
             color_mode="background", thresholds=steps(GREEN, (1, YELLOW))),
        stat("Unread unclassified", "Unread replies the sentiment classifier has not looked at "
             "yet.", [i(_unread("unclassified"))], w=4, h=5, thresholds=steps(BLUE)),
        text("What to do", "The old page's action items, in priority order.", """
1. **Positive** — answer first, the prospect is ready to talk.
2. **Objection** — address promptly; collect common objections to refine proposal templates.
3. **Negative** — review the messaging that caused it; opt-out requests go to *Compliance*.

Message text and senders are personal data and are never exported: open the threads in the
pipeline's own inbox.
""", w=5, h=5),
        bargauge("Unread by channel", "Unread inbound messages per channel for the selected "
                 "sentiments.",
                 [i(or_zero(total("pipeline_conversation_messages_unread", CHANNEL, SENTIMENT,
                                  by="channel")), "{{channel}}")],
                 w=24, h=6, thresholds=steps(GREEN, (1, ORANGE))),
    ])
    return dashboard(
        "pipeline-conversations", "Pipeline / Conversations",
        "Inbound replies, sentiment and the replies waiting for an answer (the old "
        "dashboard's page 3, Conversations).",
        [key_metrics, sentiment, actions], extra_tags=["conversations"], variables=variables)
