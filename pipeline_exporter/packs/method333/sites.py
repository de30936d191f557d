"""method333's demo: the sites and their path through the funnel, with their history, sales,
opt-outs and LLM usage."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import NamedTuple

from pipeline_exporter.demowriter import DAY, HOUR, MINUTE, Row, Stamp

HISTORY_DAYS = 45
CHUNK_SITES = 2_000


FUNNEL = ("found", "scraped", "scored", "rescored", "proposal_ready", "contacted", "replied", "sold")
PROCESSING = frozenset(FUNNEL[:5])
UNKNOWN_STATUSES = ("archived", "on_hold")

# Where sites end up: (path through the funnel, weight). Tuned for ~3.5 history rows per site.
_OUTCOMES: tuple[tuple[tuple[str, ...], float], ...] = (
    *((FUNNEL[:i + 1], w) for i, w in enumerate((.25, .15, .12, .05, .05, .22, .045, .015))),
    *((FUNNEL[:i + 1] + ("excluded",), w) for i, w in enumerate((.01, .015, .045, .01, .01, .01))),
)
_OUTCOME_PATHS = [path for path, _ in _OUTCOMES]
_OUTCOME_CUM = list(accumulate(w for _, w in _OUTCOMES))

# Mean seconds to reach a status from the previous one ("replied" is drawn log-uniformly).
_STEP_MEAN = {"scraped": 6 * HOUR, "scored": HOUR, "rescored": 12 * HOUR,
              "proposal_ready": 4 * HOUR, "contacted": DAY, "sold": 4 * DAY, "excluded": 8 * HOUR}
_REPLY_LOG_RANGE = (math.log(2 * MINUTE), math.log(10 * DAY))

_PREFIXES = ("acme", "bluesky", "summit", "riverside", "oakwood", "brightline", "northstar",
             "evergreen", "pioneer", "keystone", "redrock", "silverleaf", "harbor", "granite",
             "maple", "lakeside", "sunrise", "ironwood", "cedar", "golden")
TRADES = (("plumbing", "plumber"), ("roofing", "roofer"), ("electric", "electrician"),
           ("hvac", "hvac repair"), ("landscaping", "landscaper"), ("dental", "dentist"),
           ("law", "lawyer"), ("auto-repair", "auto repair"), ("cleaning", "cleaning service"),
           ("painting", "house painter"), ("pest-control", "pest control"),
           ("locksmith", "locksmith"), ("bakery", "bakery"), ("salon", "hair salon"),
           ("fitness", "gym"), ("chiro", "chiropractor"), ("vet", "veterinarian"),
           ("moving", "movers"), ("flooring", "flooring contractor"), ("pool", "pool service"))
CITIES = ("Austin, TX", "Denver, CO", "Portland, OR", "Tampa, FL", "Columbus, OH",
           "Raleigh, NC", "Boise, ID", "Tucson, AZ", "Omaha, NE", "Madison, WI", "Reno, NV",
           "Spokane, WA", "Savannah, GA", "Knoxville, TN", "Albany, NY", "Fresno, CA",
           "Wichita, KS", "Tulsa, OK", "Des Moines, IA", "Louisville, KY", "Richmond, VA",
           "Provo, UT", "Lansing, MI", "Dayton, OH", "Mobile, AL", "Eugene, OR",
           "Fort Wayne, IN", "Lubbock, TX", "Chattanooga, TN", "Manchester, NH")
FIRST = ("jane", "john", "maria", "david", "linda", "james", "patricia", "robert", "sarah",
          "michael", "karen", "daniel", "lisa", "kevin", "nancy", "jose", "emily", "brian",
          "olivia", "carlos", "grace", "tyler", "megan", "aaron", "chloe", "victor", "hannah",
          "luis", "rachel", "omar")
LAST = ("doe", "smith", "garcia", "johnson", "lee", "brown", "martinez", "davis", "lopez",
         "wilson", "anderson", "thomas", "taylor", "moore", "jackson", "white", "harris",
         "clark", "lewis", "walker", "young", "king", "wright", "scott", "green", "baker",
         "adams", "nelson", "hill", "campbell")
_PEOPLE = len(FIRST) * len(LAST)

_ERRORS_BY_STATUS = {
    "found": ("http_403", "http_403", "http_429", "timeout", "dns_error", "ssl_error"),
    "scraped": ("parse_error", "parse_error", "timeout", "http_403"),
    "scored": ("llm_error", "llm_error", "parse_error"),
    "rescored": ("llm_error", "parse_error"),
    "proposal_ready": ("llm_error", "parse_error", "no_contact"),
    "contacted": ("delivery_error", "http_429"),
}
_ERROR_DEFAULT = ("http_403", "timeout", "dns_error")
_ERROR_TEXT = {
    "http_403": "GET https://{d}/ returned 403 Forbidden (Cloudflare challenge) via proxy 203.0.113.{n}",
    "http_429": "GET https://{d}/contact returned 429 Too Many Requests; retry-after {n}s",
    "timeout": "Timeout after 30000 ms fetching https://{d}/about-us (attempt {n} of 3)",
    "dns_error": "getaddrinfo ENOTFOUND www.{d}",
    "ssl_error": "certificate has expired for https://{d}/ (notAfter 2023-0{n}-01)",
    "parse_error": "No email or phone found on https://{d}/contact; tried {n} selectors",
    "llm_error": ("OpenRouter 502 from https://openrouter.ai/api/v1/chat/completions for {d}: "
                  "upstream overloaded (request {n})"),
    "no_contact": "Proposal for https://{d}/ has no reachable contact after {n} lookups",
    "delivery_error": "Resend rejected message for owner@{d}: mailbox unavailable ({n})",
}

SALE_TIERS = ((99, 100), (100, 250), (250, 500), (500, 1000), (1000, 2500), (2500, 5000),
               (5000, 9999))
SALE_TIER_CUM = list(accumulate((.06, .22, .30, .20, .14, .06, .02)))

# (provider, model, dollars per 1M prompt tokens, per 1M completion tokens)
_MODELS = {
    "gpt-4o-mini@openrouter": ("openrouter", "openai/gpt-4o-mini", .15, .60),
    "haiku@openrouter": ("openrouter", "anthropic/claude-3.5-haiku", .80, 4.0),
    "gemini@openrouter": ("openrouter", "google/gemini-flash-1.5", .075, .30),
    "sonnet@anthropic": ("anthropic", "claude-3-5-sonnet-20241022", 3.0, 15.0),
    "haiku@anthropic": ("anthropic", "claude-3-5-haiku-20241022", .80, 4.0),
    "gpt-4o-mini@openai": ("openai", "gpt-4o-mini", .15, .60),
    "gpt-4o@openai": ("openai", "gpt-4o", 2.5, 10.0),
}
# stage: (model keys, prompt token range, completion token range)
_LLM_STAGES = {
    "scoring": (("gpt-4o-mini@openrouter", "gpt-4o-mini@openrouter", "gemini@openrouter",
                 "gpt-4o-mini@openai"), (1500, 6000), (80, 400)),
    "rescoring": (("haiku@anthropic", "haiku@openrouter"), (2500, 8000), (150, 600)),
    "proposals": (("sonnet@anthropic", "sonnet@anthropic", "gpt-4o@openai"), (1200, 3500),
                  (300, 900)),
    "replies": (("gpt-4o@openai", "haiku@openrouter", "gpt-4o-mini@openai"), (600, 2500),
                (40, 500)),
}



class Plan(NamedTuple):
    """One site's path through the funnel, the Unix time of each status and its contact."""

    id: int
    path: tuple[str, ...]
    times: tuple[int, ...]
    person: int


def domain(site_id: int) -> str:
    """The demo domain of a site, e.g. acme-plumbing-42.example."""
    prefix = _PREFIXES[site_id % len(_PREFIXES)]
    trade = TRADES[(site_id // len(_PREFIXES)) % len(TRADES)][0]
    return f"{prefix}-{trade}-{site_id}.example"


def plan_sites(rng: random.Random, first: int, n: int, now: int) -> list[Plan]:
    """Paths and status times of n sites starting at id first."""
    rand, expo = rng.random, rng.expovariate
    earliest = now - HISTORY_DAYS * DAY
    plans = []
    outcomes = rng.choices(_OUTCOME_PATHS, cum_weights=_OUTCOME_CUM, k=n)
    for site_id, path in enumerate(outcomes, first):
        # A handful of sites carry a status the contract does not know.
        if site_id % 1000 == 500:
            path = FUNNEL[:3] + (UNKNOWN_STATUSES[(site_id // 1000) % 2],)
        last = now - _last_change_age(path[-1], rand, expo)
        times = _path_times(path, last, earliest, rand, expo)
        plans.append(Plan(site_id, path, times, int(rand() * _PEOPLE)))
    return plans


def _last_change_age(status: str, rand: Callable[[], float], expo: Callable[[float], float]) -> int:
    """Seconds since the site's last status change: processing sites are mostly fresh."""
    if status in PROCESSING:
        if rand() < 0.65:
            return 60 + int(rand() * 23 * HOUR)
        return DAY + HOUR + int(min(expo(1 / (5 * DAY)), 38 * DAY))
    if rand() < 0.08:
        return 60 + int(rand() * DAY)
    return DAY + int(rand() * (HISTORY_DAYS - 4) * DAY)


def _path_times(
    path: tuple[str, ...], last: int, earliest: int, rand: Callable[[], float], expo: Callable[[float], float]
) -> tuple[int, ...]:
    """Increasing Unix times of each status, ending at last and starting no earlier than earliest."""
    steps = []
    for status in path[1:]:
        if status == "replied":
            low, high = _REPLY_LOG_RANGE
            steps.append(math.exp(low + rand() * (high - low)))
        else:
            steps.append(30 + expo(1 / _STEP_MEAN.get(status, 10 * DAY)))
    total = sum(steps)
    scale = min(1.0, (last - earliest) / total) if total else 1.0
    times = [last]
    t = float(last)
    for step in reversed(steps):
        t -= max(step * scale, 1.0)
        times.append(int(t))
    return tuple(reversed(times))


def site_rows(plans: list[Plan], rng: random.Random, keywords: int, now: int, stamp: Stamp) -> list[Row]:
    """Rows of sites: status, active error, score and timestamps from each plan."""
    rand = rng.random
    rows = []
    for plan in plans:
        status = plan.path[-1]
        changed = plan.times[-1]
        name = domain(plan.id)
        stuck = status in PROCESSING and now - changed > DAY
        error_type = error_message = None
        updated = changed
        if rand() < (0.25 if stuck else 0.03):
            choices = _ERRORS_BY_STATUS.get(status, _ERROR_DEFAULT)
            error_type = choices[int(rand() * len(choices))]
            error_message = _ERROR_TEXT[error_type].format(d=name, n=1 + int(rand() * 9))
            updated = changed + int(rand() * (now - changed))
        rows.append(
            (
                plan.id,
                1 + int(rand() * keywords),
                name,
                status,
                error_type,
                error_message,
                _score(plan.path, rand),
                stamp(changed),
                stamp(plan.times[0]),
                stamp(updated),
            )
        )
    return rows


def _score(path: tuple[str, ...], rand: Callable[[], float]) -> float | None:
    """LLM score: none before scoring, low for sites excluded after it, high for contacted ones."""
    if len(path) < 3:
        return None
    if path[-1] == "excluded":
        return round(rand() * 35, 1)
    if "contacted" in path:
        return round(55 + rand() * 45, 1)
    return round(rand() * 100, 1)


def when(t: int | None) -> int:
    """A timestamp the plan guarantees is set at this point."""
    assert t is not None
    return t


def history_rows(plans: list[Plan], ids: Iterator[int], stamp: Stamp) -> list[Row]:
    """One transition per status of each path, from_status NULL for the first."""
    rows = []
    for plan in plans:
        previous: str | None = None
        for status, t in zip(plan.path, plan.times):
            rows.append((next(ids), plan.id, previous, status, stamp(t)))
            previous = status
    return rows


def llm_rows(plans: list[Plan], rng: random.Random, ids: Iterator[int], stamp: Stamp) -> list[Row]:
    """LLM calls of each stage a site went through, a few seconds before the status change."""
    rand = rng.random
    rows = []
    for plan in plans:
        reached = dict(zip(plan.path, plan.times))
        calls = []
        if "scored" in reached:
            calls += [("scoring", reached["scored"])] * (1 + (rand() < 0.6))
        if "rescored" in reached:
            calls.append(("rescoring", reached["rescored"]))
        if "proposal_ready" in reached:
            calls += [("proposals", reached["proposal_ready"])] * (1 + (rand() < 0.5))
        if "replied" in reached:
            calls += [("replies", reached["replied"] + 30)] * (1 + (rand() < 0.5))
        for stage, t in calls:
            # Batch sentiment classification is not tied to one site.
            site_id = None if stage == "replies" and rand() < 0.1 else plan.id
            at = t - 2 - int(rand() * 40)
            rows.append((next(ids), site_id, stage, *_llm_call(stage, rand), stamp(at)))
    return rows


def _llm_call(stage: str, rand: Callable[[], float]) -> tuple[str, str, int, int, float]:
    """Provider, model, tokens and cost of one call at a stage."""
    keys, (p_low, p_high), (c_low, c_high) = _LLM_STAGES[stage]
    provider, model, p_price, c_price = _MODELS[keys[int(rand() * len(keys))]]
    prompt = p_low + int(rand() * (p_high - p_low))
    completion = c_low + int(rand() * (c_high - c_low))
    cost = round((prompt * p_price + completion * c_price) / 1_000_000, 6)
    return provider, model, prompt, completion, cost
