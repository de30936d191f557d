"""Recording rules: the ratios, counts and projections that the alerts and the dashboards share.

Everything about "lately" reads the exporter's windowed gauges (``*_recent{window}``), computed
in SQL from the rows' own timestamps: they are right from the exporter's first run and do not
move on a prune, a re-queue, a classification, a reload or a restart. No rule applies
``increase()`` or ``rate()`` to a counter derived from the database. Names follow
``level:metric:operation``; the level lists the labels kept besides ``job`` and ``instance``, and
the operation names the window (``count1h``: events in the last hour; ``ratio24h``: a ratio of
the last 24 h; ``ratio``: over every row the database holds).
"""

from __future__ import annotations

from pipeline_exporter.mixin.config import WINDOW_SECONDS, MixinConfig
from pipeline_exporter.mixin.promql import Selectors, by_target, window
from pipeline_exporter.mixin.rules import Group, Recording

# Statuses of an outreach (pipeline-db.md) and what the ratios count as each outcome.
# Complained emails were delivered first (delivered_at is set on them).
OUTCOMES = {"bounced": "bounced", "complained": "complained", "failed": "failed",
            "delivered": "delivered|complained"}


def alert_windows(config: MixinConfig) -> tuple[str, ...]:
    """The windows with per-channel outreach rules: fast, slow and baseline, each once."""
    windows = config.windows
    return tuple(dict.fromkeys((windows.fast, windows.slow, windows.baseline)))


def sent_count(span: str) -> str:
    return f"channel:pipeline_outreach_sent:count{span}"


def outcome_ratio(outcome: str, span: str = "") -> str:
    """``channel:pipeline_outreach_bounced_per_sent:ratio24h`` (all rows without a window)."""
    return f"channel:pipeline_outreach_{outcome}_per_sent:ratio{span}"


def outreach_window_rules(config: MixinConfig, span: str) -> list[Recording]:
    """Sends, outcomes and replies of the outreaches sent in one window, per channel."""
    series = Selectors((config.selector,))
    sent = sent_count(span)
    rules = [
        Recording(sent, series.sum_by("channel", "pipeline_outreach_sent_recent", window(span)),
                  f"Outreaches sent in the last {span} per channel (every current status): the "
                  "denominator of the ratios below and the alerts' volume guard."),
        Recording(f"channel_status:pipeline_outreach_sent:count{span}",
                  series.sum_by("channel, status", "pipeline_outreach_sent_recent", window(span)),
                  "The same cohort by current status: the alerts' \"at least N events\" guard."),
    ]
    for outcome, statuses in OUTCOMES.items():
        matcher = f'status="{statuses}"' if "|" not in statuses else f'status=~"{statuses}"'
        numerator = series.sum_by("channel", "pipeline_outreach_sent_recent", matcher, window(span))
        rules.append(Recording(outcome_ratio(outcome, span),
                               f"(\n  {numerator}\n  or\n  {sent}{{{config.selector}}} * 0\n)\n/\n"
                               f"{sent}{{{config.selector}}}\n"))
    replies = f"channel:pipeline_outreach_replies:count{span}"
    rules.append(Recording(replies, series.sum_by("channel", "pipeline_outreach_replies_recent",
                                                  window(span)),
                           f"Outreaches whose first reply came in the last {span}."))
    rules.append(Recording(outcome_ratio("replied", span),
                           f"(\n  {replies}{{{config.selector}}}\n  or\n  {sent}{{{config.selector}}} * 0\n)\n"
                           f"/\n{sent}{{{config.selector}}}\n",
                           f"Replies in the last {span} per outreach sent in it: the reply rate lately."))
    return rules


def outreach_state_rules(config: MixinConfig) -> list[Recording]:
    """Ratios over every outreach the database holds now (the old pages' all-time figures)."""
    series = Selectors((config.selector,))
    sent = series.sum_by("channel", "pipeline_outreaches", 'status!="queued"')
    rules = []
    for outcome, statuses in OUTCOMES.items():
        matcher = f'status="{statuses}"' if "|" not in statuses else f'status=~"{statuses}"'
        numerator = series.sum_by("channel", "pipeline_outreaches", matcher)
        rules.append(Recording(outcome_ratio(outcome),
                               f"(\n  {numerator}\n  or\n  {sent} * 0\n)\n/\n{sent}\n",
                               "" if outcome != "bounced" else
                               "Current states of every outreach row (pipeline_outreaches), so a "
                               "re-queued SMS leaves `failed` here too."))
    events = "pipeline_outreach_events_total"
    replied, sent_events = 'event="replied"', 'event="sent"'
    rules += [
        Recording(outcome_ratio("replied"),
                  f"(\n  {series.sum_by('channel', events, replied)}\n  or\n"
                  f"  {series.sum_by('channel', events, sent_events)} * 0\n)\n/\n"
                  f"{series.sum_by('channel', events, sent_events)}\n",
                  "Replies per outreach sent, per channel, over every row counted: both counters "
                  "count the same rows, so a restart that recounts them keeps the ratio."),
        Recording("job:pipeline_outreach_replied_per_sent:ratio",
                  f"{series.sum_by('', events, replied)}\n/\n{series.sum_by('', events, sent_events)}\n",
                  "The overall response rate (the old homepage's)."),
        Recording("channel:pipeline_sales_per_sent:ratio",
                  f"(\n  {series.sum_by('channel', 'pipeline_sales_total')}\n  or\n"
                  f"  {series.sum_by('channel', events, sent_events)} * 0\n)\n/\n"
                  f"{series.sum_by('channel', events, sent_events)}\n",
                  "Conversion: sales per outreach sent, per channel credited with the sale."),
        Recording("job:pipeline_sales_per_sent:ratio",
                  f"{series.sum_by('', 'pipeline_sales_total')}\n/\n{series.sum_by('', events, sent_events)}\n"),
        Recording("job:pipeline_llm_cost_usd_per_reply:ratio",
                  f"{series.sum_by('', 'pipeline_llm_cost_usd_total')}\n/\n{series.sum_by('', events, replied)}\n",
                  "Cost per response: all LLM spend per reply (+Inf while nobody replied)."),
    ]
    return rules


def http_rules(config: MixinConfig) -> list[Recording]:
    """HTTP errors per source and code (``stage`` summed away: burnout is the source's)."""
    series = Selectors((config.selector,))
    spans = dict.fromkeys((config.windows.burst, config.windows.fast, config.windows.slow))
    return [Recording(f"source_code:pipeline_http_errors:count{span}",
                      series.sum_by("source, code", "pipeline_http_errors_recent", window(span)),
                      f"HTTP errors logged in the last {span}, per source and status code.")
            for span in spans]


def with_total(expr_by_provider: str, expr_total: str) -> str:
    """Per provider, plus the sum as provider="total" (the budget may be set either way)."""
    return (f"{expr_by_provider}\nor\n"
            f'label_replace({expr_total}, "provider", "total", "", "")\n')


SECONDS_LEFT_IN_MONTH = "scalar((days_in_month() - day_of_month()) * 86400 + 86400 - time() % 86400)"


def llm_rules(config: MixinConfig) -> list[Recording]:
    """This month's LLM cost, its projection to the month's end, and the budget."""
    series = Selectors((config.selector,))
    slow = config.windows.slow
    month = "provider:pipeline_llm_cost_usd_month_to_date:sum"
    pace = f"provider:pipeline_llm_cost_usd:sum{slow}"
    budget_metric = series.of("pipeline_llm_budget_usd")
    budget = f"max by ({by_target('provider')}) ({budget_metric})"
    if config.llm_monthly_budget_usd is not None:
        amount = f"{config.llm_monthly_budget_usd:g}"
        targets = f'sum by ({by_target()}) ({series.of("pipeline_exporter_build_info")})'
        fallback = (f'label_replace(\n  {targets} * 0 + {amount},\n'
                    f'  "provider", "total", "", ""\n)\nunless on ({by_target()})\n{budget_metric}\n')
        budget = f"{budget}\nor\n{fallback}"
    return [
        Recording(month, with_total(series.sum_by("provider", "pipeline_llm_cost_usd_month_to_date"),
                                    series.sum_by("", "pipeline_llm_cost_usd_month_to_date")),
                  "LLM cost since the start of the calendar month (UTC), per provider and in total."),
        Recording(pace, with_total(series.sum_by("provider", "pipeline_llm_cost_usd_recent", window(slow)),
                                   series.sum_by("", "pipeline_llm_cost_usd_recent", window(slow))),
                  f"LLM cost of the last {slow}: the pace the projection extrapolates."),
        Recording("provider:pipeline_llm_cost_usd:projected_month_end",
                  f"{month}{{{config.selector}}}\n+ on ({by_target('provider')})\n"
                  f"(\n  ({pace}{{{config.selector}}} or {month}{{{config.selector}}} * 0)\n"
                  f"  * {SECONDS_LEFT_IN_MONTH} / {WINDOW_SECONDS[slow]}\n)\n",
                  f"Month to date plus the last {slow}'s pace until the end of the month (UTC)."),
        Recording("provider:pipeline_llm_budget_usd:max", budget,
                  "The monthly budget the exporter reports (llm_monthly_budget_usd in its config)"
                  + (", else the mixin config's llm_monthly_budget_usd as provider=\"total\"."
                     if config.llm_monthly_budget_usd is not None else "; absent when none is set.")),
    ]


def groups(config: MixinConfig) -> list[Group]:
    """Every recording group, in the order the file lists them."""
    outreach = [rule for span in alert_windows(config) for rule in outreach_window_rules(config, span)]
    return [
        Group("pipeline-exporter.outreach.recording", tuple(outreach + outreach_state_rules(config)),
              interval="1m",
              why="Outreach ratios over the exporter's windows and over every row. The gauges "
                  "change at most once per exporter run, so once a minute is plenty."),
        Group("pipeline-exporter.http.recording", tuple(http_rules(config)),
              why="HTTP errors per source and code, for the IP burnout and rate-limit alerts."),
        Group("pipeline-exporter.llm.recording", tuple(llm_rules(config)), interval="1m",
              why="LLM spend against the monthly budget (LlmBudgetBurnHigh, pipeline-outreach)."),
    ]
