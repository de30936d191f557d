"""The roofing CRM's demo rows: 90 days of leads, customers, signed projects and marketing spend.

Planted problems (relative to ``now``), so every panel has data and every alert a reason:
- lead response: in the last 24 h, most Facebook Ads and Nextdoor leads were first contacted
  after 10-40 minutes (the target is 2 minutes), and three fresh leads wait unanswered for
  10-40 minutes right now;
- conversion: cold leads from Facebook Ads flood the last 30 days, so the overall conversion of
  the 30 days' leads is below the 25-35 % range (cold leads convert at about 3 %);
- channel cost: Facebook Ads spends about $120 per lead against its $75 target; Nextdoor spends
  and closes no deal (ROI below zero);
- revenue: deals close at about $450K a month against the $500K monthly target; one deal was
  signed minutes ago, so this month's revenue is never empty.
Names, emails, phone numbers, street addresses and notes are in the rows, as in the real system;
the first lead carries the planted values of ``PLANTED`` (the privacy tests look for them).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

MINUTE, HOUR, DAY = 60, 3600, 86400
DAYS = 90

COLUMNS: dict[str, tuple[str, ...]] = {
    "team_members": ("id", "name", "email", "phone", "role", "created_at"),
    "leads": ("id", "first_name", "last_name", "email", "phone", "street_address", "city", "market_segment",
              "source", "temperature", "status", "lead_score", "assigned_to", "notes", "created_at",
              "first_contacted_at", "converted_at"),
    "customers": ("id", "lead_id", "first_name", "last_name", "email", "phone", "city", "market_segment",
                  "created_at"),
    "projects": ("id", "customer_id", "lead_id", "source", "market_segment", "status", "contract_value_usd",
                 "signed_at", "completed_at"),
    "marketing_spend": ("id", "source", "spent_on", "amount_usd", "created_at"),
}
TIMESTAMPS = frozenset({"created_at", "first_contacted_at", "converted_at", "signed_at", "completed_at",
                        "spent_on"})
# Append-only tables and the timestamp they are appended at (ids grow with it).
CHRONOLOGICAL = {"leads": "created_at", "projects": "signed_at", "marketing_spend": "created_at"}

PLANTED = {"first_name": "Marguerite", "last_name": "Planted-Kowalczyk", "email": "m.planted@example.net",
           "phone": "+12485550142", "street_address": "1742 Planted Ridge Rd",
           "notes": "PLANTED-NOTE gate code 4417, dog in the yard"}
# The document's six channels: (source, leads a day, cost per lead in dollars).
SOURCES = (("google_lsa", .8, 60.0), ("facebook_ads", 1.0, 120.0), ("community", .5, 15.0),
           ("insurance_referral", .3, 22.0), ("real_estate_agent", .3, 28.0), ("nextdoor", .4, 14.0))
SEGMENTS = {"ultra_premium": (("Bloomfield Hills", "Birmingham", "Grosse Pointe"), 45000),
            "professional": (("Troy", "Rochester Hills", "West Bloomfield"), 27000),
            "standard": (("Royal Oak", "Southfield", "Ferndale"), 12000)}
# Conversion by temperature, and the temperature mix (hot, warm, cold) by source.
CONVERT = {"hot": .40, "warm": .15, "cold": .03}
MIX = {"google_lsa": (.35, .45, .20), "facebook_ads": (.10, .30, .60), "community": (.25, .45, .30),
       "insurance_referral": (.60, .35, .05), "real_estate_agent": (.50, .40, .10), "nextdoor": (.15, .45, .40)}
TEAM = ((1, "Dana Whitfield", "dana@iswitchroofs.example", "+12485550101", "sales"),
        (2, "Marcus Ortega", "marcus@iswitchroofs.example", "+12485550102", "sales"),
        (3, "Priya Raman", "priya@iswitchroofs.example", "+12485550103", "manager"))
_FIRST = ("James", "Mary", "Robert", "Patricia", "Michael", "Linda", "David", "Susan", "Kevin", "Angela")
_LAST = ("Smith", "Johnson", "Kowalski", "Nowak", "Brown", "Haddad", "Garcia", "Miller", "Wilson", "Baker")
_STREETS = ("Maple Ave", "Woodward Ave", "Lone Pine Rd", "Cranbrook Rd", "Quarton Rd", "Long Lake Rd")
_NOTES = ("Hail damage on the north side", "Wants a quote for a full tear-off", "Insurance adjuster visit {d}",
          "Leak over the garage, call after 5 pm on {phone}", "Asked about metal roofing")


def _pick(rng: random.Random, weights: tuple[float, ...], names: tuple[str, ...]) -> str:
    return rng.choices(names, weights)[0]


def iter_rows(*, seed: int, now: int) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    rng = random.Random(f"{seed}:crm")
    start = now - DAYS * DAY
    yield "team_members", [(*member, start - 365 * DAY) for member in TEAM]
    leads: list[tuple[Any, ...]] = []
    customers: list[tuple[Any, ...]] = []
    projects: list[tuple[Any, ...]] = []
    arrivals: list[tuple[int, str]] = []
    for source, per_day, _ in SOURCES:
        rate = per_day * (2.5 if source == "facebook_ads" else 1.0)
        t = start
        while True:
            t += int(rng.expovariate(rate / DAY))
            if t >= now - 45 * MINUTE:
                break
            arrivals.append((t, source))
    arrivals += [(now - 40 * MINUTE, "facebook_ads"), (now - 25 * MINUTE, "nextdoor"),
                 (now - 10 * MINUTE, "google_lsa")]  # waiting for a first contact right now
    arrivals.sort()
    deal_lead = max(lid for lid, (t, _) in enumerate(arrivals, 1) if t < now - 2 * DAY)  # signs minutes ago
    for lid, (t0, source) in enumerate(arrivals, 1):
        waiting = t0 >= now - 45 * MINUTE
        temperature = _pick(rng, MIX[source], ("hot", "warm", "cold"))
        if source == "facebook_ads" and t0 < now - 30 * DAY:
            temperature = _pick(rng, (.25, .45, .30), ("hot", "warm", "cold"))  # before the cold flood
        segment = _pick(rng, (.1, .25, .65), tuple(SEGMENTS))
        city = rng.choice(SEGMENTS[segment][0])
        first = PLANTED["first_name"] if lid == 1 else rng.choice(_FIRST)
        last = PLANTED["last_name"] if lid == 1 else rng.choice(_LAST)
        phone = PLANTED["phone"] if lid == 1 else f"+1248555{rng.randrange(10**4):04d}"
        email = PLANTED["email"] if lid == 1 else f"{first.lower()}.{last.lower()}{rng.randrange(100)}@example.com"
        street = PLANTED["street_address"] if lid == 1 else f"{rng.randrange(100, 9999)} {rng.choice(_STREETS)}"
        notes = PLANTED["notes"] if lid == 1 else rng.choice(_NOTES).format(d=rng.randrange(1, 28), phone=phone)
        if lid == deal_lead:
            source, temperature = "google_lsa", "hot"
        slow = source in ("facebook_ads", "nextdoor") and t0 >= now - DAY and rng.random() < .8
        if waiting:
            contacted = None
        elif slow:
            contacted = t0 + rng.randrange(10 * MINUTE, 40 * MINUTE)
        else:
            contacted = t0 + int(rng.uniform(20, 150)) if rng.random() < .9 else t0 + rng.randrange(3, 15) * MINUTE
        contacted = None if contacted is not None and contacted > now else contacted
        converted = None
        age = now - t0
        if lid == deal_lead or contacted is not None and rng.random() < CONVERT[temperature] and age > 3 * DAY:
            converted = t0 + rng.randrange(2 * DAY, 21 * DAY) if lid != deal_lead else now - 4 * MINUTE
            if lid != deal_lead and (source == "nextdoor" or converted > now):
                converted = None  # Nextdoor closes nothing; a deal cannot close in the future
        if converted is not None:
            status = "converted"
        elif contacted is None:
            status = "new"
        elif age > 30 * DAY:
            status = "lost"
        else:
            status = rng.choice(("contacted", "qualified", "appointment_scheduled"))
        score = {"hot": 80, "warm": 55, "cold": 20}[temperature] + rng.randrange(15)
        leads.append((lid, first, last, email, phone, street, city, segment, source, temperature, status, score,
                      1 + lid % 2, notes, t0, contacted, converted))
        if converted is not None:
            cid = len(customers) + 1
            customers.append((cid, lid, first, last, email, phone, city, segment, converted))
            value = round(SEGMENTS[segment][1] * rng.uniform(.8, 1.2), 2)
            done = converted + 20 * DAY if converted + 20 * DAY < now else None
            projects.append((0, cid, lid, source, segment, "completed" if done else "scheduled", value, converted,
                             done))
    yield "leads", leads
    yield "customers", customers
    yield "projects", projects
    spend: list[tuple[Any, ...]] = []
    day0 = start - start % DAY
    for d in range(DAYS + 2):
        day = day0 + d * DAY
        if day + DAY > now:
            break  # a day's spend is booked once the day is over
        for source, rate, cpl in SOURCES:
            leads_that_day = rate * (2.5 if source == "facebook_ads" else 1.0)
            amount = round(cpl * leads_that_day * rng.uniform(.8, 1.2), 2)
            spend.append((0, source, day, amount, min(day + DAY + 2 * HOUR, now - MINUTE)))
    yield "marketing_spend", spend
