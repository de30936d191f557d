"""Compliance: opt-outs, email bounce/complaint/delivery rates, SMS delivery/failure, checklists."""

from __future__ import annotations

from typing import Any

from pipeline_exporter.mixin.config import Levels
from pipeline_exporter.mixin.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Context,
    Panel,
    Row,
    bargauge,
    dashboard,
    now,
    over_time,
    per_period,
    stat,
    steps,
    text,
    timeseries,
)
from pipeline_exporter.mixin.promql import or_zero, percent

EMAIL, SMS = 'channel="email"', 'channel="sms"'


def _ratio(ctx: Context, event: str, channel: str, span: str = "") -> str:
    """A per-channel recording rule: ``channel:pipeline_outreach_<event>_per_sent:ratio[24h]``."""
    return ctx.sel(f"channel:pipeline_outreach_{event}_per_sent:ratio{span}", channel)


def _levels(levels: Levels) -> dict[str, Any]:
    marks = [(levels.warning, ORANGE)] + ([(levels.critical, RED)] if levels.critical else [])
    return steps(GREEN, *marks)


def _levels_text(levels: Levels) -> str:
    return percent(levels.warning) + (f" and {percent(levels.critical)}" if levels.critical else "")


def _rate_stats(ctx: Context, what: str, event: str, channel: str, thresholds: dict[str, Any],
                why: str, alert: str | None) -> list[Panel]:
    """The rate over the alert's two windows and over every row."""
    windows = ctx.config.windows
    links = ctx.runbook_links(alert) if alert else None
    watched = f" {alert} reads the {windows.slow} and {windows.fast} ratios together." if alert else ""
    panels = [stat(f"{what} ({span})", f"{why} Outreaches sent in the last {span}, by current "
                   f"status (recording rule channel:pipeline_outreach_{event}_per_sent:ratio{span})."
                   f"{watched} Empty or NaN while nothing was sent in the window.",
                   [now(or_zero(_ratio(ctx, event, channel, span)))], "percentunit", width=3,
                   height=5, decimals=2, thresholds=thresholds, color_mode="background", links=links)
              for span in (windows.slow, windows.fast)]
    panels.append(stat(f"{what} (all time)", f"{why} Every outreach row by current status "
                       f"(recording rule channel:pipeline_outreach_{event}_per_sent:ratio).",
                       [now(or_zero(_ratio(ctx, event, channel)))], "percentunit", width=2,
                       height=5, decimals=2, thresholds=thresholds, color_mode="background"))
    return panels


def _rate_history(ctx: Context, title: str, event: str, channel: str, levels: Levels, alert: str,
                  width: int = 8, height: int = 10) -> Panel:
    windows = ctx.config.windows
    return timeseries(title, f"The {windows.slow} and {windows.fast} ratios over time with the "
                      f"alert levels ({_levels_text(levels)}) as dashed lines: {alert} fires while "
                      "both are above a level.",
                      [over_time(or_zero(_ratio(ctx, event, channel, windows.slow)), f"last {windows.slow}"),
                       over_time(or_zero(_ratio(ctx, event, channel, windows.fast)), f"last {windows.fast}")],
                      "percentunit", width=width, height=height, threshold_lines=True,
                      thresholds=_levels(levels), minimum=0, decimals=2,
                      links=ctx.runbook_links(alert))


def opt_outs(ctx: Context) -> Row:
    return Row("Opt-outs", [
        stat("Email opt-outs (all time)", "Email recipients who opted out.",
             [now(or_zero(ctx.total("pipeline_opt_outs_total", EMAIL)))], width=4, height=5),
        stat("SMS opt-outs (all time)", "SMS recipients who opted out (STOP).",
             [now(or_zero(ctx.total("pipeline_opt_outs_total", SMS)))], width=4, height=5),
        stat("Total opt-outs (all time)", "Opt-outs on all channels.",
             [now(or_zero(ctx.total("pipeline_opt_outs_total")))], width=4, height=5),
        per_period(ctx, "Opt-outs", "Opt-outs, by channel.", "pipeline_opt_outs_recent",
                   ctx.config.windows.slow, by="channel", legend="{{channel}}", width=12, height=5),
    ])


def email(ctx: Context) -> Row:
    thresholds = ctx.config.thresholds
    bounce, complaint = thresholds.bounce_rate, thresholds.complaint_rate
    return Row("Resend (email)", [
        *_rate_stats(ctx, "Bounce rate", "bounced", EMAIL, _levels(bounce),
                     f"Bounced emails divided by emails sent; Resend alerts above "
                     f"{percent(bounce.warning)}, critical above {percent(bounce.critical or 0)}.",
                     "EmailBounceRateHigh"),
        *_rate_stats(ctx, "Complaint rate", "complained", EMAIL, _levels(complaint),
                     f"Spam complaints divided by emails sent; alert above "
                     f"{percent(complaint.warning)}, critical above {percent(complaint.critical or 0)}.",
                     "EmailComplaintRateHigh"),
        *_rate_stats(ctx, "Email delivery rate", "delivered", EMAIL, steps(BLUE),
                     "Delivered emails divided by emails sent.", None),
        _rate_history(ctx, "Email bounce rate", "bounced", EMAIL, bounce, "EmailBounceRateHigh"),
        _rate_history(ctx, "Email complaint rate", "complained", EMAIL, complaint,
                      "EmailComplaintRateHigh"),
        text("Recommendations (email)", "What to do when the email rates cross their alert "
             "levels (Resend's guidance, as on the old page).", """
**Bounce rate above 5 %** (critical above 10 %): check sender reputation and stop sending from
the affected list. Verify addresses before sending, drop hard-bounced addresses for good, and
check that SPF, DKIM and DMARC pass for the sending domain.

**Complaint rate above 0.1 %** (critical above 0.5 %): recipients are marking the emails as spam.
Make the unsubscribe link prominent, honour opt-outs at once, send less often, and review the
proposal copy and targeting.

**Delivery rate falling** without bounces: messages are being held or filtered — look at the
provider's dashboard and the domain's blocklist status.
""", width=8, height=10),
    ])


def sms(ctx: Context) -> Row:
    failure = ctx.config.thresholds.sms_failure_rate
    only_warning = Levels(failure.warning)
    return Row("Twilio (SMS)", [
        stat("SMS delivery rate (all time)", "Delivered SMS divided by SMS sent, every row "
             "(recording rule channel:pipeline_outreach_delivered_per_sent:ratio).",
             [now(or_zero(_ratio(ctx, "delivered", SMS)))], "percentunit", width=4, height=8,
             decimals=1, thresholds=steps(BLUE)),
        *_rate_stats(ctx, "SMS failure rate", "failed", SMS, _levels(only_warning),
                     f"Failed SMS divided by SMS sent; alert above {percent(failure.warning)}.",
                     "SmsFailureRateHigh"),
        _rate_history(ctx, "SMS failure rate", "failed", SMS, only_warning, "SmsFailureRateHigh",
                      width=6, height=8),
        text("Recommendations (SMS)", "What to do when SMS failures rise (carrier filtering).",
             """
**Failure rate above 5 %** usually means carrier filtering:

- register the sending numbers (A2P 10DLC / toll-free verification) and keep the brand and
  campaign descriptions accurate;
- avoid URL shorteners and spam-like wording, keep the first message short and personal;
- spread sending over time and over numbers instead of bursts from one number;
- remove numbers that failed twice, and honour STOP at once.
""", width=6, height=8),
    ])


def platforms(ctx: Context) -> Row:
    fast = ctx.config.windows.fast
    errors = f"source_code:pipeline_http_errors:count{fast}"
    return Row("Other platforms", [
        per_period(ctx, "LLM tokens", "Tokens consumed, by LLM provider (OpenRouter's budget is "
                   "spent in tokens).", "pipeline_llm_tokens_recent", ctx.config.windows.slow,
                   by="provider", legend="{{provider}}", width=12, height=8),
        bargauge(f"API errors, last {fast}", "HTTP errors per external API (ZenRows, OpenRouter, "
                 f"Resend, Twilio, …) and status code in the last {fast} (recording rule "
                 f"source_code:pipeline_http_errors:count{fast}). 429 = rate limited.",
                 [now(or_zero(f"sort_desc({ctx.total(errors, by='source, code')})"),
                      "{{source}} {{code}}")], "short", width=12, height=8,
                 thresholds=steps(GREEN, (1, ORANGE)),
                 links=ctx.runbook_links("HttpRateLimitErrorsHigh", "HttpForbiddenErrorsHigh")),
    ])


def checklists() -> Row:
    return Row("Compliance checklists", [
        text("CAN-SPAM checklist (email)", "The legal requirements every outreach email must "
             "meet (US CAN-SPAM Act).", """
- [ ] No false or misleading header information (From, To, Reply-To, routing)
- [ ] No deceptive subject lines
- [ ] Identify the message as an advertisement where it is one
- [ ] Include the sender's valid physical postal address
- [ ] Tell recipients how to opt out, with a working unsubscribe link
- [ ] Honour opt-out requests within 10 business days (the pipeline records them in `opt_outs`)
- [ ] Never sell or transfer opted-out addresses
- [ ] Monitor what others (agencies, tools) send on your behalf
""", width=12, height=9),
        text("TCPA checklist (SMS)", "The legal requirements every outreach SMS must meet (US "
             "Telephone Consumer Protection Act).", """
- [ ] Prior express (written, for marketing) consent from the recipient
- [ ] Identify the sender in the message
- [ ] Clear opt-out instructions (reply STOP) and honour them at once
- [ ] Only send between 8 am and 9 pm in the recipient's time zone
- [ ] Check numbers against the National Do Not Call Registry
- [ ] Keep consent and opt-out records (the pipeline records opt-outs in `opt_outs`)
- [ ] Registered sender (A2P 10DLC / toll-free verification) for carrier compliance
""", width=12, height=9),
    ])


def build(ctx: Context) -> dict[str, Any]:
    return dashboard(
        ctx, "pipeline-compliance", "Pipeline / Compliance",
        "Opt-outs, sender reputation (bounce and complaint rates), SMS delivery and the "
        "CAN-SPAM / TCPA checklists (the old dashboard's page 4, Compliance & Rate Limits).",
        [opt_outs(ctx), email(ctx), sms(ctx), platforms(ctx), checklists()],
        extra_tags=["compliance"])
