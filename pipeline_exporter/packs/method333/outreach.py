"""method333's demo: the outreach of a site (channels, sends, deliveries, replies) and its conversations."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any, NamedTuple

from pipeline_exporter.demowriter import DAY, HOUR, MINUTE, Row, Stamp, opt
from pipeline_exporter.packs.method333.sites import (
    FIRST,
    HISTORY_DAYS,
    LAST,
    SALE_TIER_CUM,
    SALE_TIERS,
    Plan,
    domain,
    when,
)

_CHANNELS = ("email", "sms", "form", "linkedin", "x")
_FIRST_CHANNEL_CUM = list(accumulate((.55, .30, .08, .04, .03)))
_EXTRA_CHANNEL = {"email": .55, "sms": .5, "form": .3, "linkedin": .2, "x": .12}
_REPLY_WEIGHT = {"email": 1.0, "sms": 1.6, "form": .5, "linkedin": 1.3, "x": .7}
_QUEUE_WINDOW = 3 * HOUR

_OUR_SENDER = {"email": "Sam Carter <sam@333method.example>", "sms": "+15550100333",
               "form": "Sam Carter <sam@333method.example>", "linkedin": "Sam Carter (333 Method)",
               "x": "@333method"}
_SENTIMENTS = ("positive", "neutral", "negative", "objection", None)
_SENTIMENT_CUM = list(accumulate((.30, .20, .15, .20, .15)))
_REPLY_TEXT = {
    "positive": "Hi, yes, this sounds interesting. Call me on {phone} after 3pm. {first}",
    "neutral": "What would this cost for a site like {domain}? Thanks, {first}",
    "negative": "Not interested, please stop contacting me. {first} {last}",
    "objection": "We already pay a guy for the website and money is tight this month. {first}",
    None: "Who is this? How did you get {email}?",
}
_STOP_TEXT = "STOP. Remove {email} from your list."
_FOLLOW_UP = "Thanks {first}! I can have the new {domain} homepage mockup ready by Friday."



def bounce_by_day(rng: random.Random) -> list[float]:
    """Email bounce probability per calendar day ago: 2-5 %, one bad day (13 %) in the last three."""
    rates = [0.02 + 0.03 * rng.random() for _ in range(HISTORY_DAYS + 2)]
    rates[1 + int(rng.random() * 2)] = 0.13
    return rates


def _contact(channel: str, person: int, site_id: int) -> str:
    """Fake but real-looking personal contact data of a site's owner."""
    first, last = FIRST[person % len(FIRST)], LAST[person // len(FIRST)]
    if channel in ("email", "form"):
        return f"{first}.{last}{site_id}@example.com"
    if channel == "sms":
        return f"+1555{site_id % 10_000_000:07d}"
    if channel == "x":
        return f"@{first}{last}{site_id}"
    return f"https://www.linkedin.com/in/{first}-{last}-{site_id}"


def outreaches(plan: Plan, rng: random.Random, ids: Iterator[int], bounce: list[float], now: int) -> list[Outreach]:
    """Outreach of a contacted site: the first send marks 'contacted', follow-ups use other channels."""
    if "contacted" not in plan.path:
        return []
    rand = rng.random
    c = plan.path.index("contacted")
    contacted = plan.times[c]
    until = plan.times[c + 1] if c + 1 < len(plan.path) else now
    first = rng.choices(_CHANNELS, cum_weights=_FIRST_CHANNEL_CUM)[0]
    channels = [first] + [ch for ch in _CHANNELS if ch != first and rand() < _EXTRA_CHANNEL[ch]]
    if "email" in channels and rand() < 0.55:
        channels.append("email")
    sends = []
    for i, channel in enumerate(channels):
        if i == 0:
            created, sent = contacted - 10 - int(rand() * 1800), contacted
        else:
            created = contacted + int(rand() * min(3 * DAY, (until - contacted) / 2))
            sent = created + 5 + int(rand() * 300)
            # Recent follow-ups wait in the send queue.
            if sent > now or (created > now - _QUEUE_WINDOW and rand() < 0.6):
                sent = None
        status, delivered = _delivery(channel, sent, rand, bounce, now)
        sends.append(
            Outreach(
                next(ids),
                plan.id,
                channel,
                _contact(channel, plan.person, plan.id),
                status,
                created,
                sent,
                delivered,
                None,
            )
        )
    return with_reply(plan, sends, rng)


def _delivery(
    channel: str, sent: int | None, rand: Callable[[], float], bounce: list[float], now: int
) -> tuple[str, int | None]:
    """Delivery status and delivered_at of a send."""
    if sent is None:
        return "queued", None
    r = rand()
    if channel == "email":
        # Rates change per calendar day (UTC), so the bad day is one visible day on a chart.
        rate = bounce[min(now // DAY - sent // DAY, len(bounce) - 1)]
        if r < rate:
            return "bounced", None
        if r < rate + 0.002:
            return "complained", sent + 1 + int(rand() * 120)
        return ("delivered", sent + 1 + int(rand() * 120)) if r < 0.985 else ("sent", None)
    failure = 0.04 if channel == "sms" else 0.03
    if r < failure:
        return "failed", None
    return ("delivered", sent + 2 + int(rand() * 30)) if r < 0.95 else ("sent", None)


def with_reply(plan: Plan, sends: list[Outreach], rng: random.Random) -> list[Outreach]:
    """Set replied_at on the outreach a replied (or opted-out) site answered."""
    if "replied" in plan.path:
        replied = plan.times[plan.path.index("replied")]
    elif plan.path[-1] == "excluded" and rng.random() < 0.5:
        # Half the opt-outs after contact are a STOP reply before exclusion.
        first_sent = when(sends[0].sent)
        replied = first_sent + int((plan.times[-1] - first_sent) * (0.5 + 0.5 * rng.random()))
    else:
        return sends
    answerable = [
        o for o in sends if o.status not in ("bounced", "failed", "queued") and when(o.delivered or o.sent) < replied
    ]
    if not answerable:
        # The site did answer, so its first send reached it.
        sends[0] = sends[0]._replace(status="delivered", delivered=when(sends[0].sent) + 1)
        answerable = [sends[0]]
    pick = rng.choices(answerable, weights=[_REPLY_WEIGHT[o.channel] for o in answerable])[0]
    return [o._replace(replied=replied) if o is pick else o for o in sends]


def outreach_row(o: Outreach, stamp: Stamp) -> Row:
    """Row of outreaches."""
    return (
        o.id,
        o.site_id,
        o.channel,
        o.contact,
        o.status,
        stamp(o.created),
        opt(stamp, o.sent),
        opt(stamp, o.delivered),
        opt(stamp, o.replied),
    )


def replied(sends: list[Outreach]) -> Outreach | None:
    """The outreach a site replied to, if any."""
    return next((o for o in sends if o.replied is not None), None)


def sale_rows(
    plans: list[Plan], sends: list[list[Outreach]], rng: random.Random, ids: Iterator[int], stamp: Stamp
) -> list[Row]:
    """A sale per sold site, credited to the channel it replied on."""
    rand = rng.random
    rows = []
    for plan, group in zip(plans, sends):
        if plan.path[-1] != "sold":
            continue
        answered = replied(group) or group[0]
        low, high = rng.choices(SALE_TIERS, cum_weights=SALE_TIER_CUM)[0]
        amount = round(low + rand() * (high - low), 2)
        outreach_id = answered.id if rand() < 0.9 else None
        rows.append((next(ids), plan.id, outreach_id, answered.channel, amount, stamp(plan.times[-1])))
    return rows


def conversation_rows(
    plans: list[Plan], sends: list[list[Outreach]], rng: random.Random, ids: Iterator[int], now: int, stamp: Stamp
) -> list[Row]:
    """The pitch of every send that went out, then the replies and our answers."""
    rand = rng.random
    rows = []
    for plan, group in zip(plans, sends):
        first, last = FIRST[plan.person % len(FIRST)], LAST[plan.person // len(FIRST)]
        words = {
            "first": first.title(),
            "last": last.title(),
            "domain": domain(plan.id),
            "phone": _contact("sms", plan.person, plan.id),
            "email": _contact("email", plan.person, plan.id),
        }
        for o in group:
            if o.status in ("sent", "delivered", "complained"):
                rows.append(_outbound(next(ids), plan, o, _pitch(o.channel, words), stamp(when(o.sent))))
        answered = replied(group)
        if answered is not None:
            rows.extend(_thread(plan, answered, words, rand, rng, ids, now, stamp))
    return rows


def _pitch(channel: str, words: dict[str, str]) -> str:
    """Our first message on a channel."""
    if channel == "sms":
        return f"Hi {words['first']}, Sam from 333 Method: 3 quick fixes for {words['domain']}. Reply STOP to opt out."
    return (
        f"Hi {words['first']}, I looked at {words['domain']} and found three quick wins "
        "that could bring you more calls. Worth a 10-minute chat this week?"
    )


def _thread(
    plan: Plan,
    o: Outreach,
    words: dict[str, str],
    rand: Callable[[], float],
    rng: random.Random,
    ids: Iterator[int],
    now: int,
    stamp: Stamp,
) -> list[Row]:
    """Inbound reply (a STOP for opted-out sites), our answer and sometimes a second reply."""
    replied = when(o.replied)
    if plan.path[-1] == "excluded":
        return [_inbound(next(ids), plan, o, "negative", _STOP_TEXT.format(**words), replied, now, rand, stamp)]
    sentiment = "positive" if plan.path[-1] == "sold" else rng.choices(_SENTIMENTS, cum_weights=_SENTIMENT_CUM)[0]
    rows = [_inbound(next(ids), plan, o, sentiment, _REPLY_TEXT[sentiment].format(**words), replied, now, rand, stamp)]
    answer = replied + 10 * MINUTE + int(rand() * 6 * HOUR)
    if answer < now:
        rows.append(_outbound(next(ids), plan, o, _FOLLOW_UP.format(**words), stamp(answer)))
        again = answer + HOUR + int(rand() * 2 * DAY)
        if again < now and rand() < 0.6:
            second = rng.choices(_SENTIMENTS, cum_weights=_SENTIMENT_CUM)[0]
            rows.append(
                _inbound(next(ids), plan, o, second, _REPLY_TEXT[second].format(**words), again, now, rand, stamp)
            )
    return rows


def _outbound(message_id: int, plan: Plan, o: Outreach, body: str, when: Any) -> Row:
    """A message of ours in the thread: read, no sentiment."""
    return (message_id, plan.id, o.id, o.channel, "outbound", None, 1, _OUR_SENDER[o.channel], body, when)


def _inbound(
    message_id: int,
    plan: Plan,
    o: Outreach,
    sentiment: str | None,
    body: str,
    t: int,
    now: int,
    rand: Callable[[], float],
    stamp: Stamp,
) -> Row:
    """One inbound message: recent ones are more often unread and unclassified."""
    recent = now - t < 2 * DAY
    if recent and sentiment is not None and rand() < 0.2:
        sentiment = None
    is_read = 0 if rand() < (0.6 if recent else 0.15) else 1
    return (message_id, plan.id, o.id, o.channel, "inbound", sentiment, is_read, o.contact, body, stamp(t))


class Outreach(NamedTuple):
    """One outreach with Unix-second timestamps (None = has not happened)."""

    id: int
    site_id: int
    channel: str
    contact: str
    status: str
    created: int
    sent: int | None
    delivered: int | None
    replied: int | None


def opt_out_rows(plans: list[Plan], sends: list[list[Outreach]], ids: Iterator[int], stamp: Stamp) -> list[Row]:
    """An email or SMS opt-out for every site excluded after contact."""
    rows = []
    for plan, group in zip(plans, sends):
        if not group or plan.path[-1] != "excluded":
            continue
        answered = replied(group)
        candidates = ([answered] if answered else []) + group
        chosen = next((o for o in candidates if o.channel in ("email", "sms")), None)
        if chosen is not None:
            rows.append((next(ids), chosen.channel, chosen.contact, stamp(plan.times[-1])))
    return rows
