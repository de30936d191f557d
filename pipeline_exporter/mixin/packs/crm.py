"""The roofing CRM's rules and dashboards: one dashboard per page of its real-time dashboard write-up.

Pages: Home (the real-time snapshot: lead response, revenue progress, conversion funnel, premium
markets, marketing ROI summary) and Enhanced Analytics (revenue growth, lead response time,
premium market penetration, marketing channel ROI, conversion optimization).

The document's own targets (2-minute first contact, 25-35 % conversion, each channel's cost per
lead, $500K a month) are the pack's parameters, exported as gauges (``crm_*_target_*``): the
rules compare against those series, so a team changes a target in its exporter config, not here.
What the document does not name (how many late answers, how much data before a rate counts, how
long before a page) are documented defaults below (docs/packs/crm.md).
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
    stat,
    steps,
    table,
    table_query,
    timeseries,
)
from pipeline_exporter.mixin.packs.common import pack_alert, pack_links, render_pack, select
from pipeline_exporter.mixin.promql import or_zero
from pipeline_exporter.mixin.rules import Alert, Group, Recording

NAME = "crm"
D1, D30, MONTH = 'window="24h"', 'window="30d"', 'window="month"'
INSTANCE = 'instance=~"$instance"'
BY = "job, instance"


@dataclass(frozen=True)
class Thresholds:
    """What the document does not name: documented defaults (docs/packs/crm.md)."""

    late_response_ratio: float = 0.25       # the document calls 75 % within 2 minutes "excellent"
    min_responses: int = 5                  # first contacts in 24 h before the share counts
    waiting_for: str = "10m"                # a lead waiting beyond the target, this long
    min_leads: int = 20                     # leads in 30 days before the conversion rate counts
    min_channel_leads: int = 10             # a channel's leads in 30 days before its CPL counts
    min_channel_spend_usd: float = 100.0    # a channel's spend in 30 days before its ROI counts
    revenue_from_day: int = 8               # the month's projection counts from this day on


THRESHOLDS = Thresholds()


def _projected_revenue(config: MixinConfig) -> str:
    """This month's revenue so far over the share of the month passed: the recording rule, and the
    alert's own expression (an alert reading the rule's value would see the value of the group's
    previous or current evaluation depending on which group runs first)."""
    def total(metric: str, *m: str) -> str:
        return f"sum by ({BY}) ({select(config, metric, *m)})"

    return (f"({total('crm_revenue_usd_recent', MONTH)} or {total('crm_monthly_revenue_target_usd')} * 0)\n"
            "  / scalar((day_of_month() - 1 + hour() / 24 + minute() / 1440) / days_in_month())")


def recording_rules(config: MixinConfig) -> list[Recording]:
    def s(metric: str, *m: str) -> str:
        return select(config, metric, *m)

    def total(metric: str, *m: str, by: str = BY) -> str:
        return f"sum by ({by}) ({s(metric, *m)})"

    revenue = total("crm_revenue_usd_recent", D30, by=f"{BY}, source")
    spend = total("crm_marketing_spend_usd_recent", D30, by=f"{BY}, source")
    return [
        Recording("crm:leads_responded:24h", total("crm_leads_responded_recent", D1),
                  why="Leads of the last 24 h with a first contact (the denominator of the response share)."),
        Recording("crm:lead_response_late_ratio:24h",
                  f"1 - {total('crm_leads_responded_in_target_recent', D1)}\n"
                  f"  / {total('crm_leads_responded_recent', D1)}",
                  why="Share of the last 24 h's contacted leads first contacted after the response target."),
        Recording("crm:leads:30d", total("crm_leads_recent", D30),
                  why="Leads created in the last 30 days (the denominator of the conversion rate)."),
        Recording("crm:conversion_ratio:30d",
                  f"{total('crm_leads_converted_recent', D30)}\n  / {total('crm_leads_recent', D30)}",
                  why="Share of the last 30 days' leads that converted (the document's 25-35 % range)."),
        Recording("crm:leads_by_source:30d", total("crm_leads_recent", D30, by=f"{BY}, source"),
                  why="Each channel's leads of the last 30 days."),
        Recording("crm:cost_per_lead_usd:30d",
                  f"{spend}\n  / {total('crm_leads_recent', D30, by=f'{BY}, source')}",
                  why="Each channel's spend of the last 30 days over its leads of the last 30 days."),
        Recording("crm:roi_ratio:30d",
                  f"(({revenue}) or ({spend}) * 0)\n  / ({spend}) - 1",
                  why="Each channel's return on its spend: revenue of its deals closed in 30 days over its "
                      "30 days' spend, minus 1 (0 = broke even)."),
        Recording("crm:month_elapsed_ratio",
                  "(day_of_month() - 1 + hour() / 24 + minute() / 1440) / days_in_month()",
                  why="How much of the calendar month (UTC) has passed."),
        Recording("crm:revenue_projected_month_usd", _projected_revenue(config),
                  why="This month's revenue so far, extrapolated to the whole month."),
    ]


def alerts(config: MixinConfig, t: Thresholds = THRESHOLDS) -> list[Alert]:
    def s(metric: str, *m: str) -> str:
        return select(config, metric, *m)

    return [
        pack_alert(NAME, config, "CrmLeadResponseSlow", "warning",
               f"crm:lead_response_late_ratio:24h > {t.late_response_ratio:g}\n"
               f"and on ({BY}) crm:leads_responded:24h >= {t.min_responses}",
               "15m", "Many new leads are first contacted after the response target.",
               "{{ $value | humanizePercentage }} of the last 24 h's leads were first contacted after the "
               "response target (2 minutes unless configured). Leads answered within 2 minutes convert far "
               "more often: check who is on call and the lead notifications.",
               "New leads are contacted within the target again.",
               f"share of the last 24 h's contacted leads answered after the target > {t.late_response_ratio:.0%} "
               f"(≥ {t.min_responses} contacted), for 15 m", "crm-enhanced-analytics"),
        pack_alert(NAME, config, "CrmLeadsWaitingOverTarget", "warning",
               f"sum by ({BY}, source) ({s('crm_leads_awaiting_response_over_target')}) > 0",
               t.waiting_for, "New leads wait for a first contact beyond the response target.",
               "{{ $value }} new {{ $labels.source }} lead(s) have waited longer than the response target "
               "without a first contact. Call them now.",
               "No new lead waits beyond the response target.",
               f"a new lead uncontacted beyond the response target, for {t.waiting_for}", "crm-home"),
        pack_alert(NAME, config, "CrmConversionBelowTarget", "warning",
               f"crm:conversion_ratio:30d < on ({BY}) {s('crm_conversion_target_min_ratio')}\n"
               f"and on ({BY}) crm:leads:30d >= {t.min_leads}",
               "1h", "The conversion rate is below its target range.",
               "Only {{ $value | humanizePercentage }} of the last 30 days' leads converted (target range "
               "25-35 % unless configured). See conversion by temperature and source on the dashboard.",
               "The conversion rate is back in its target range.",
               f"30-day conversion < conversion_target_min_ratio (≥ {t.min_leads} leads), for 1 h",
               "crm-enhanced-analytics"),
        pack_alert(NAME, config, "CrmConversionAboveRange", "none",
               f"crm:conversion_ratio:30d > on ({BY}) {s('crm_conversion_target_max_ratio')}\n"
               f"and on ({BY}) crm:leads:30d >= {t.min_leads}",
               "6h", "The conversion rate is above its target range.",
               "{{ $value | humanizePercentage }} of the last 30 days' leads converted, above the target range: "
               "leads may not all be recorded, or there is room to buy more of them.",
               "The conversion rate is back in its target range.",
               f"30-day conversion > conversion_target_max_ratio (≥ {t.min_leads} leads), for 6 h",
               "crm-enhanced-analytics"),
        pack_alert(NAME, config, "CrmChannelCostPerLeadOverTarget", "warning",
               f"crm:cost_per_lead_usd:30d > on ({BY}, source) {s('crm_channel_cpl_target_usd')}\n"
               f"and on ({BY}, source) crm:leads_by_source:30d >= {t.min_channel_leads}",
               "1h", "A marketing channel costs more per lead than its target.",
               "{{ $labels.source }} cost {{ $value | printf \"$%.2f\" }} per lead over the last 30 days, "
               "above its cost-per-lead target. Review its bids and targeting.",
               "The channel's cost per lead is within its target again.",
               f"30-day spend / leads > the channel's cpl_target_usd (≥ {t.min_channel_leads} leads), for 1 h",
               "crm-enhanced-analytics"),
        pack_alert(NAME, config, "CrmChannelUnprofitable", "warning",
               "crm:roi_ratio:30d < 0\n"
               f"and on ({BY}, source) sum by ({BY}, source) "
               f"({s('crm_marketing_spend_usd_recent', D30)}) >= {t.min_channel_spend_usd:g}",
               "6h", "A marketing channel's deals do not pay back its spend.",
               "{{ $labels.source }}: the deals closed in 30 days return {{ $value | humanizePercentage }} on "
               "its 30 days' spend (below zero: a loss).",
               "The channel pays back its spend again.",
               f"30-day revenue < 30-day spend (≥ ${t.min_channel_spend_usd:g} spent), for 6 h",
               "crm-enhanced-analytics"),
        pack_alert(NAME, config, "CrmMonthlyRevenueBehindTarget", "warning",
               f"(\n{_projected_revenue(config)}\n) < on ({BY}) {s('crm_monthly_revenue_target_usd')}\n"
               f"and on () day_of_month() >= {t.revenue_from_day}",
               "1h", "This month's revenue is on course to miss the monthly target.",
               "At this month's pace revenue reaches {{ $value | printf \"$%.0f\" }}, below the monthly target.",
               "This month's revenue is on course for the target again.",
               f"month-to-date revenue extrapolated to the month < monthly_revenue_target_usd, from day "
               f"{t.revenue_from_day}, for 1 h", "crm-home"),
    ]


def groups(config: MixinConfig) -> tuple[list[Group], list[Group]]:
    recording = [Group("crm.recording", tuple(recording_rules(config)),
                       why="Shares, cost per lead, ROI and the month's projection the CRM alerts and "
                           "dashboards share.")]
    alerting = [Group("crm.alerts", tuple(alerts(config)),
                      why="CRM: lead response, conversion range, channel cost per lead and ROI, monthly revenue.")]
    return recording, alerting


# ------------------------------------------------------------------------------ dashboards

def _rec(ctx: Context, name: str, *matchers: str) -> str:
    return f"{name}{{{', '.join((ctx.config.selector, INSTANCE, *matchers))}}}"


def _ratio(ctx: Context, num: str, den: str, window: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({ctx.sel(num, window)}) / sum{grouping} ({ctx.sel(den, window)})"


def home(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    revenue_month = f"sum({s('crm_revenue_usd_recent', MONTH)})"
    target = f"sum({s('crm_monthly_revenue_target_usd')})"
    rows = [
        Row("Right now", [
            stat("Leads waiting for a first contact", "New leads of the last 7 days not contacted yet.",
                 [now(or_zero(f"sum({s('crm_leads_awaiting_response')})"))], thresholds=steps(BLUE)),
            stat("Waiting beyond the target", "New leads uncontacted for longer than the response target.",
                 [now(or_zero(f"sum({s('crm_leads_awaiting_response_over_target')})"))],
                 thresholds=steps(GREEN, (1, RED)), links=pack_links(ctx, NAME, "CrmLeadsWaitingOverTarget")),
            stat("Contacted within target (24 h)", "Share of the last 24 h's contacted leads first contacted "
                 "within the response target (2 minutes).",
                 [now(_ratio(ctx, "crm_leads_responded_in_target_recent", "crm_leads_responded_recent", D1))],
                 "percentunit", thresholds=steps(RED, (0.6, ORANGE), (0.75, GREEN)),
                 links=pack_links(ctx, NAME, "CrmLeadResponseSlow")),
            stat("Average response time (24 h)", "Mean time from a lead's creation to its first contact, "
                 "leads of the last 24 h.",
                 [now(f"sum({s('crm_lead_response_time_seconds_sum')}) / "
                      f"sum({s('crm_lead_response_time_seconds_count')})")],
                 "s", thresholds=steps(GREEN, (120, ORANGE))),
            stat("Revenue this month", "Contract value of the deals closed this calendar month (UTC).",
                 [now(or_zero(revenue_month))], "currencyUSD", thresholds=steps(BLUE)),
            stat("Conversion rate (30 d)", "Share of the last 30 days' leads that converted (target 25-35 %).",
                 [now(_rec(ctx, "crm:conversion_ratio:30d"))], "percentunit",
                 thresholds=steps(RED, (0.25, GREEN), (0.35, BLUE)),
                 links=pack_links(ctx, NAME, "CrmConversionBelowTarget")),
        ]),
        Row("Revenue progress", [
            gauge("This month against the target", "Revenue closed this month over the monthly target.",
                  [now(f"({or_zero(revenue_month)}) / {target}")], "percentunit",
                  thresholds=steps(RED, (0.5, ORANGE), (1, GREEN)), width=8, height=8),
            stat("Projected month", "This month's revenue extrapolated to the whole month.",
                 [now(_rec(ctx, "crm:revenue_projected_month_usd"))], "currencyUSD", width=8, height=8,
                 thresholds=steps(ORANGE), links=pack_links(ctx, NAME, "CrmMonthlyRevenueBehindTarget")),
            stat("Monthly target", "The monthly revenue target (parameter monthly_revenue_target_usd).",
                 [now(target)], "currencyUSD", width=8, height=8, thresholds=steps(BLUE)),
        ]),
        Row("Funnel, markets and channels", [
            bargauge("Conversion funnel", "Leads by pipeline status.",
                     [now(f"sum by (status) ({s('crm_leads')})", "{{status}}")], width=8),
            table("Premium markets (30 d)", "Per market segment: leads created, of which converted, deals "
                  "closed and their revenue, in the last 30 days.",
                  [table_query(f"sum by (segment) ({s('crm_segment_leads_recent', D30)})"),
                   table_query(f"sum by (segment) ({s('crm_segment_leads_converted_recent', D30)})"),
                   table_query(f"sum by (segment) ({s('crm_deals_closed_recent', D30)})"),
                   table_query(f"sum by (segment) ({s('crm_revenue_usd_recent', D30)})")],
                  rename={"segment": "Segment", "Value #A": "Leads", "Value #B": "Converted",
                          "Value #C": "Deals", "Value #D": "Revenue"}, hide=["instance"], width=8),
            table("Marketing ROI summary (30 d)", "Per channel: leads, cost per lead against its target, "
                  "and return on spend over the last 30 days.",
                  [table_query(f"sum by (source) ({s('crm_leads_recent', D30)})"),
                   table_query(f"sum by (source) ({_rec(ctx, 'crm:cost_per_lead_usd:30d')})"),
                   table_query(f"sum by (source) ({s('crm_channel_cpl_target_usd')})"),
                   table_query(f"sum by (source) ({_rec(ctx, 'crm:roi_ratio:30d')})")],
                  rename={"source": "Channel", "Value #A": "Leads", "Value #B": "Cost per lead",
                          "Value #C": "CPL target", "Value #D": "ROI"}, hide=["instance"], width=8,
                  links=pack_links(ctx, NAME, "CrmChannelCostPerLeadOverTarget", "CrmChannelUnprofitable")),
        ]),
    ]
    return dashboard(ctx, "crm-home", "CRM / Home", "The CRM's real-time snapshot: lead response, revenue "
                     "progress, conversion funnel, premium markets and marketing ROI (the Home page).", rows,
                     extra_tags=[NAME])


def enhanced_analytics(ctx: Context) -> dict[str, Any]:
    s = ctx.sel
    buckets = s("crm_lead_response_time_seconds_bucket")
    rows = [
        Row("Revenue growth", [
            timeseries("Revenue this month against the target", "Month-to-date revenue and the monthly target.",
                       [over_time(f"sum({s('crm_revenue_usd_recent', MONTH)})", "month to date"),
                        over_time(f"sum({s('crm_monthly_revenue_target_usd')})", "target")], "currencyUSD"),
            stat("Revenue, last 30 days", "Deals closed in the last 30 days.",
                 [now(f"sum({s('crm_revenue_usd_recent', D30)})")], "currencyUSD", width=6, height=8,
                 thresholds=steps(BLUE)),
            stat("Annualized (30 d × 365/30)", "The last 30 days' revenue at a yearly pace (growth path: "
                 "$6M → $8M → $18M → $30M).", [now(f"sum({s('crm_revenue_usd_recent', D30)}) * 365 / 30")],
                 "currencyUSD", width=6, height=8, thresholds=steps(BLUE)),
        ]),
        Row("Lead response time", [
            timeseries("First-contact time percentiles (24 h)", "p50 and p90 of the time to first contact "
                       "of the last 24 h's leads.",
                       [over_time(f"histogram_quantile({q}, sum by (le) ({buckets}))", f"p{q[2:]}")
                        for q in ("0.5", "0.9")], "s"),
            bargauge("Contacted within target by channel (24 h)", "Share of each channel's contacted leads of "
                     "the last 24 h first contacted within the target.",
                     [now(_ratio(ctx, "crm_leads_responded_in_target_recent", "crm_leads_responded_recent", D1,
                                 "source"), "{{source}}")], "percentunit",
                     thresholds=steps(RED, (0.6, ORANGE), (0.75, GREEN)),
                     links=pack_links(ctx, NAME, "CrmLeadResponseSlow")),
        ]),
        Row("Premium market penetration", [
            bargauge("Conversion by segment (30 d)", "Share of each market segment's leads of the last 30 days "
                     "that converted.",
                     [now(_ratio(ctx, "crm_segment_leads_converted_recent", "crm_segment_leads_recent", D30,
                                 "segment"), "{{segment}}")], "percentunit", width=8),
            bargauge("Average deal size by segment (30 d)", "Revenue per deal closed in the last 30 days "
                     "(targets $45K ultra-premium, $27K professional).",
                     [now(_ratio(ctx, "crm_revenue_usd_recent", "crm_deals_closed_recent", D30, "segment"),
                          "{{segment}}")], "currencyUSD", width=8),
            bargauge("Revenue by segment (30 d)", "Revenue of the deals closed in the last 30 days.",
                     [now(f"sum by (segment) ({s('crm_revenue_usd_recent', D30)})", "{{segment}}")],
                     "currencyUSD", width=8),
        ]),
        Row("Marketing channel ROI", [
            bargauge("Cost per lead by channel (30 d)", "Spend of the last 30 days over the leads of the last "
                     "30 days.", [now(f"sum by (source) ({_rec(ctx, 'crm:cost_per_lead_usd:30d')})", "{{source}}")],
                     "currencyUSD", width=8, links=pack_links(ctx, NAME, "CrmChannelCostPerLeadOverTarget")),
            bargauge("Cost-per-lead targets", "Each channel's target (parameters cpl_target_usd_*).",
                     [now(f"sum by (source) ({s('crm_channel_cpl_target_usd')})", "{{source}}")],
                     "currencyUSD", width=8),
            bargauge("ROI by channel (30 d)", "Revenue of the deals closed in 30 days over the spend of 30 days, "
                     "minus 1.", [now(f"sum by (source) ({_rec(ctx, 'crm:roi_ratio:30d')})", "{{source}}")],
                     "percentunit", width=8, thresholds=steps(RED, (0, GREEN)),
                     links=pack_links(ctx, NAME, "CrmChannelUnprofitable")),
        ]),
        Row("Conversion optimization", [
            stat("Overall conversion (30 d)", "Share of the last 30 days' leads that converted; the target "
                 "range is 25-35 %.", [now(_rec(ctx, "crm:conversion_ratio:30d"))], "percentunit", width=6,
                 height=8, thresholds=steps(RED, (0.25, GREEN), (0.35, BLUE)),
                 links=pack_links(ctx, NAME, "CrmConversionBelowTarget", "CrmConversionAboveRange")),
            bargauge("Conversion by temperature (30 d)", "Hot, warm and cold leads of the last 30 days that "
                     "converted.", [now(_ratio(ctx, "crm_leads_converted_recent", "crm_leads_recent", D30,
                                               "temperature"), "{{temperature}}")], "percentunit", width=9),
            bargauge("Conversion by source (30 d)", "Each channel's leads of the last 30 days that converted.",
                     [now(_ratio(ctx, "crm_leads_converted_recent", "crm_leads_recent", D30, "source"),
                          "{{source}}")], "percentunit", width=9),
        ]),
    ]
    return dashboard(ctx, "crm-enhanced-analytics", "CRM / Enhanced analytics", "Revenue growth, lead "
                     "response time, premium market penetration, marketing channel ROI and conversion "
                     "optimization (the Enhanced Analytics page).", rows, extra_tags=[NAME], time_from="now-7d")


DASHBOARDS = {"crm-home": home, "crm-enhanced-analytics": enhanced_analytics}


def render(config: MixinConfig) -> dict[str, str]:
    return render_pack(config, NAME,
                       "CRM", "targets: the pack's parameters; docs/packs/crm.md", groups(config), DASHBOARDS)
