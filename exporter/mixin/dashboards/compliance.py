"""Compliance: opt-outs, email bounce/complaint/delivery rates, SMS delivery/failure, checklists."""

from .common import (BLUE, BOUNCE_CRIT, BOUNCE_WARN, COMPLAINT_CRIT, COMPLAINT_WARN, GREEN,
                     ORANGE, RED, SMS_FAILURE_WARN, Row, bargauge, dashboard, i, or_zero, sel,
                     stat, steps, t, text, timeseries, total)

EMAIL, SMS = 'channel="email"', 'channel="sms"'


def _ratio(event: str, channel: str, window: str = "") -> str:
    """A per-channel recording rule: ``channel:pipeline_outreach_<event>_per_sent:ratio[24h]``."""
    return sel(f"channel:pipeline_outreach_{event}_per_sent:ratio{window}", channel)


def _rate_pair(what: str, event: str, channel: str, thresholds: dict, why: str) -> list:
    """The rate over the last 24 h (what the alert sees) and over the whole history."""
    return [
        stat(f"{what} (24 h)", f"{why} Over the last 24 hours (recording rule "
             f"channel:pipeline_outreach_{event}_per_sent:ratio24h), the window the alert uses. "
             "Empty or NaN while nothing was sent in the window.",
             [i(or_zero(_ratio(event, channel, "24h")))], "percentunit", w=4, h=5,
             decimals=2, thresholds=thresholds, color_mode="background"),
        stat(f"{what} (all time)", f"{why} Over the whole history (recording rule "
             f"channel:pipeline_outreach_{event}_per_sent:ratio).",
             [i(or_zero(_ratio(event, channel)))], "percentunit", w=4, h=5, decimals=2,
             thresholds=thresholds, color_mode="background"),
    ]


def _rate_history(title: str, event: str, channel: str, thresholds: dict, levels: str,
                  w: int = 8, h: int = 10) -> object:
    return timeseries(title, f"The 24-hour rate over time with the alert levels ({levels}) as "
                      "dashed lines.",
                      [t(or_zero(_ratio(event, channel, "24h")), "last 24 h"),
                       t(or_zero(_ratio(event, channel)), "all time")],
                      "percentunit", w=w, h=h, threshold_lines=True, thresholds=thresholds,
                      minimum=0, decimals=2)


def build() -> dict:
    bounce = steps(GREEN, (BOUNCE_WARN, ORANGE), (BOUNCE_CRIT, RED))
    complaint = steps(GREEN, (COMPLAINT_WARN, ORANGE), (COMPLAINT_CRIT, RED))
    sms_failure = steps(GREEN, (SMS_FAILURE_WARN, ORANGE))
    opt_outs = Row("Opt-outs", [
        stat("Email opt-outs", "Email recipients who opted out, whole history.",
             [i(or_zero(total("pipeline_opt_outs_total", EMAIL)))], w=4, h=5),
        stat("SMS opt-outs", "SMS recipients who opted out (STOP), whole history.",
             [i(or_zero(total("pipeline_opt_outs_total", SMS)))], w=4, h=5),
        stat("Total opt-outs", "Opt-outs on all channels, whole history.",
             [i(or_zero(total("pipeline_opt_outs_total")))], w=4, h=5),
        timeseries("Opt-outs per day", "Opt-outs per day, per channel.",
                   [t(f"sum by (channel) (increase({sel('pipeline_opt_outs_total')}[1d]))",
                      "{{channel}}")], "short", w=12, h=5, bars=True, stack=True,
                   interval="1h"),
    ])
    email = Row("Resend (email)", [
        *_rate_pair("Bounce rate", "bounced", EMAIL, bounce,
                    "Bounced emails divided by emails sent; Resend alerts above 5 %, 10 % is "
                    "critical."),
        *_rate_pair("Complaint rate", "complained", EMAIL, complaint,
                    "Spam complaints divided by emails sent; alert above 0.1 %, 0.5 % is "
                    "critical."),
        *_rate_pair("Email delivery rate", "delivered", EMAIL, steps(BLUE),
                    "Delivered emails divided by emails sent."),
        _rate_history("Email bounce rate", "bounced", EMAIL, bounce, "5 % and 10 %"),
        _rate_history("Email complaint rate", "complained", EMAIL, complaint, "0.1 % and 0.5 %"),
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
""", w=8, h=10),
    ])
    sms = Row("Twilio (SMS)", [
        stat("SMS delivery rate", "Delivered SMS divided by SMS sent, whole history (recording "
             "rule channel:pipeline_outreach_delivered_per_sent:ratio).",
             [i(or_zero(_ratio("delivered", SMS)))], "percentunit", w=4, h=8, decimals=1,
             thresholds=steps(BLUE)),
        stat("SMS failure rate (24 h)", "Failed SMS divided by SMS sent over the last 24 hours "
             "(the window of the SmsFailureRateHigh alert, level 5 %).",
             [i(or_zero(_ratio("failed", SMS, "24h")))], "percentunit", w=4, h=8, decimals=2,
             thresholds=sms_failure, color_mode="background"),
        stat("SMS failure rate (all time)", "Failed SMS divided by SMS sent, whole history.",
             [i(or_zero(_ratio("failed", SMS)))], "percentunit", w=4, h=8, decimals=2,
             thresholds=sms_failure, color_mode="background"),
        _rate_history("SMS failure rate", "failed", SMS, sms_failure, "5 %", w=6, h=8),
        text("Recommendations (SMS)", "What to do when SMS failures rise (carrier filtering).",
             """
**Failure rate above 5 %** usually means carrier filtering:

- register the sending numbers (A2P 10DLC / toll-free verification) and keep the brand and
  campaign descriptions accurate;
- avoid URL shorteners and spam-like wording, keep the first message short and personal;
- spread sending over time and over numbers instead of bursts from one number;
- remove numbers that failed twice, and honour STOP at once.
""", w=6, h=8),
    ])
    platforms = Row("Other platforms", [
        timeseries("LLM tokens per day by provider", "Tokens consumed per day, per LLM provider "
                   "(OpenRouter's budget is spent in tokens).",
                   [t(f"sum by (provider) (increase({sel('pipeline_llm_tokens_total')}[1d]))",
                      "{{provider}}")], "short", w=12, h=8, interval="1h"),
        bargauge("API errors in the last hour", "HTTP errors per external API (ZenRows, "
                 "OpenRouter, Resend, Twilio, …) and status code in the last hour (recording "
                 "rule source_code:pipeline_http_errors:increase1h). 429 = rate limited.",
                 [i(or_zero(f"sort_desc({total('source_code:pipeline_http_errors:increase1h', by='source, code')})"),
                    "{{source}} {{code}}")], "short", w=12, h=8,
                 thresholds=steps(GREEN, (1, ORANGE))),
    ])
    checklists = Row("Compliance checklists", [
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
""", w=12, h=9),
        text("TCPA checklist (SMS)", "The legal requirements every outreach SMS must meet (US "
             "Telephone Consumer Protection Act).", """
- [ ] Prior express (written, for marketing) consent from the recipient
- [ ] Identify the sender in the message
- [ ] Clear opt-out instructions (reply STOP) and honour them at once
- [ ] Only send between 8 am and 9 pm in the recipient's time zone
- [ ] Check numbers against the National Do Not Call Registry
- [ ] Keep consent and opt-out records (the pipeline records opt-outs in `opt_outs`)
- [ ] Registered sender (A2P 10DLC / toll-free verification) for carrier compliance
""", w=12, h=9),
    ])
    return dashboard(
        "pipeline-compliance", "Pipeline / Compliance",
        "Opt-outs, sender reputation (bounce and complaint rates), SMS delivery and the "
        "CAN-SPAM / TCPA checklists (the old dashboard's page 4, Compliance & Rate Limits).",
        [opt_outs, email, sms, platforms, checklists], extra_tags=["compliance"])
