"""BotFlow's demo rows: chat bots answering customers, a week of conversations and messages.

Planted problems (relative to ``now``), so every panel has data and every alert a reason:
- booking-bot answers slowly in the last hour (responses of 6-15 s) and a quarter of its
  outbound messages fail there; its conversations of the last hour fail (outcome ``failed``);
- sales-bot hands a third of its conversations of the last day over to a human (``handoff``);
- the hourly aggregation worker stopped three hours ago: its jobs wait, two failed, and
  ``usage_analytics`` has no hour since; legacy-bot is paused.
Customer phone numbers, names and message texts are in the rows, as in the real system; the
first conversation carries the planted values of ``PLANTED`` (the privacy tests look for them).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

MINUTE, HOUR, DAY = 60, 3600, 86400
DAYS = 7

COLUMNS: dict[str, tuple[str, ...]] = {
    "organizations": ("id", "name", "created_at"),
    "bots": ("id", "organization_id", "name", "status", "created_at"),
    "conversations": ("id", "organization_id", "bot_id", "customer_phone", "customer_name", "status",
                      "started_at", "last_message_at", "ended_at"),
    "messages": ("id", "conversation_id", "bot_id", "direction", "sender_phone", "content", "status",
                 "response_time_ms", "created_at"),
    "conversation_metrics": ("id", "conversation_id", "bot_id", "organization_id", "outcome", "message_count",
                             "knowledge_base_hits", "tokens_used", "estimated_cost_usd", "duration_seconds",
                             "satisfaction_score", "created_at"),
    "bot_performance_metrics": ("id", "bot_id", "day", "total_conversations", "total_messages", "p50_response_ms",
                                "p95_response_ms", "p99_response_ms", "success_rate", "error_rate", "fallback_rate",
                                "handoff_rate", "total_cost_usd", "created_at"),
    "usage_analytics": ("id", "organization_id", "hour_start", "messages_sent", "messages_received",
                        "conversations_started", "active_users", "active_bots", "api_calls", "cost_usd", "created_at"),
    "aggregation_jobs": ("id", "queue", "status", "attempts", "error_message", "created_at", "finished_at"),
}
TIMESTAMPS = frozenset({"created_at", "started_at", "last_message_at", "ended_at", "hour_start", "finished_at"})
# Append-only tables and the timestamp they are appended at (ids grow with it).
CHRONOLOGICAL = {"messages": "created_at", "conversation_metrics": "created_at", "aggregation_jobs": "created_at"}

PLANTED = {"phone": "+27825550199", "name": "Thandiwe Planted-Mokoena",
           "content": "PLANTED-SECRET my ID is 8001015009087, mail thandiwe.planted@example.co.za"}
BOTS = ((1, 1, "support-bot", "active"), (2, 1, "sales-bot", "active"), (3, 2, "booking-bot", "active"),
        (4, 2, "legacy-bot", "paused"))
_FIRST = ("Thabo", "Lerato", "Sipho", "Naledi", "Johan", "Annelie", "Pieter", "Zanele", "Ayanda", "Kagiso")
_LAST = ("Nkosi", "van der Merwe", "Dlamini", "Botha", "Naidoo", "Mokoena", "Pillay", "Khumalo")
_ASK = ("Hi, can I book for Saturday?", "What are your prices?", "My order has not arrived, ref {n}",
        "Can someone call me on {phone}?", "Do you deliver to Soweto?", "I want to cancel")
_OUTCOMES = (("success", .80), ("fallback", .10), ("handoff", .05), ("failed", .05))


def _outcome(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    x, acc = rng.random(), 0.0
    for name, weight in weights:
        acc += weight
        if x < acc:
            return name
    return weights[-1][0]


def iter_rows(*, seed: int, now: int) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    rng = random.Random(f"{seed}:botflow")
    start = now - DAYS * DAY
    yield "organizations", [(1, "Karoo Coffee Co", start - 90 * DAY), (2, "Cape Salons", start - 60 * DAY)]
    yield "bots", [(i, org, name, status, start - 30 * DAY) for i, org, name, status in BOTS]
    conversations: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    metrics: list[tuple[Any, ...]] = []
    starts = sorted(start + rng.randrange(DAYS * DAY - HOUR) for _ in range(1400))
    starts += sorted(now - rng.randrange(HOUR) for _ in range(90))  # the last hour's traffic
    for cid, t0 in enumerate(starts, 1):
        bot_id = 1 + rng.choices(range(3), (5, 3, 4))[0] if t0 < now - HOUR else 1 + (cid % 3)
        if t0 < now - 2 * DAY and rng.random() < .03:
            bot_id = 4  # before it was paused
        org = 1 if bot_id in (1, 2) else 2
        phone = PLANTED["phone"] if cid == 1 else f"+2782{rng.randrange(10**7):07d}"
        name = PLANTED["name"] if cid == 1 else f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        recent = t0 >= now - HOUR
        slow_bot = bot_id == 3 and recent
        n_pairs = 1 + rng.randrange(5)
        t, count = t0, 0
        for k in range(n_pairs):
            text = PLANTED["content"] if cid == 1 and k == 0 else \
                rng.choice(_ASK).format(n=rng.randrange(10**5), phone=phone)
            messages.append((0, cid, bot_id, "inbound", phone, text, "received", None, t))
            rt = int(rng.uniform(6000, 15000)) if slow_bot else int(math.exp(rng.gauss(math.log(1200), .6)))
            t += max(1, rt // 1000)
            failed = slow_bot and rng.random() < .25
            messages.append((0, cid, bot_id, "outbound", phone, f"Thanks {name.split()[0]}, let me check that.",
                             "failed" if failed else "delivered", rt, t))
            t += 20 + rng.randrange(90)
            count += 2
        last = t - 20
        if last > now:
            shift = last - now + 1
            messages[-count:] = [m[:8] + (m[8] - shift,) for m in messages[-count:]]
            last -= shift
        active = t0 >= now - 20 * MINUTE
        if active:
            status, ended = "active", None
        else:
            weights = _OUTCOMES
            if bot_id == 3 and recent:
                weights = (("success", .55), ("fallback", .05), ("handoff", .05), ("failed", .35))
            elif bot_id == 2 and t0 >= now - DAY:
                weights = (("success", .55), ("fallback", .10), ("handoff", .33), ("failed", .02))
            outcome = _outcome(rng, weights)
            status = "escalated" if outcome == "handoff" else "resolved"
            ended = min(last + 5 * MINUTE, now)
            hits = rng.randrange(0, 4) if outcome != "fallback" else 0
            tokens = 300 * count + rng.randrange(400)
            cost = round(tokens * 0.000002, 6)
            satisfaction = rng.choice((None, 3, 4, 5)) if outcome == "success" else rng.choice((None, 1, 2))
            metrics.append((0, cid, bot_id, org, outcome, count, hits, tokens, cost, ended - t0, satisfaction, ended))
        conversations.append((cid, org, bot_id, phone, name, status, t0, last, ended))
    yield "conversations", conversations
    yield "messages", messages
    yield "conversation_metrics", metrics
    day0 = start - start % DAY
    perf: list[tuple[Any, ...]] = []
    pid = 0
    for d in range(DAYS):
        day = day0 + d * DAY
        if day + DAY > now:
            break
        for bot_id, *_ in BOTS[:3]:
            pid += 1
            perf.append((pid, bot_id, f"{_day(day)}", 180 + rng.randrange(40), 900 + rng.randrange(200), 1200, 3400,
                         5200, .8, .05, .1, .05, 0.9, day + DAY + HOUR))
    yield "bot_performance_metrics", perf
    stalled = now - now % HOUR - 3 * HOUR
    usage: list[tuple[Any, ...]] = []
    jobs: list[tuple[Any, ...]] = []
    uid = 0
    for hour in range(start - start % HOUR, stalled, HOUR):
        for org in (1, 2):
            uid += 1
            usage.append((uid, org, hour, 40 + rng.randrange(30), 40 + rng.randrange(30), 8 + rng.randrange(6),
                          7 + rng.randrange(5), 2 if org == 1 else 1, 90 + rng.randrange(40), 0.12,
                          hour + HOUR + 5 * MINUTE))
        jobs.append((0, "hourly", "completed", 1, None, hour + HOUR + 5 * MINUTE, hour + HOUR + 6 * MINUTE))
    for k in range(3):  # the stall: the worker took no job since
        jobs.append((0, "hourly", "waiting", 0, None, stalled + k * HOUR + 5 * MINUTE, None))
    jobs.append((0, "hourly", "failed", 3, "ECONNREFUSED 10.0.3.7:6379 (redis) while aggregating org 2",
                 stalled - 2 * HOUR + 7 * MINUTE, stalled - 2 * HOUR + 9 * MINUTE))
    jobs.append((0, "hourly", "failed", 3, "ECONNREFUSED 10.0.3.7:6379 (redis) while aggregating org 1",
                 stalled - HOUR + 7 * MINUTE, stalled - HOUR + 9 * MINUTE))
    for d in range(DAYS):
        created = day0 + d * DAY + HOUR
        if created < now:
            jobs.append((0, "daily", "completed", 1, None, created, created + 4 * MINUTE))
    yield "usage_analytics", usage
    yield "aggregation_jobs", jobs


def _day(t: int) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(t))
