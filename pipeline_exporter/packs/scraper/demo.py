"""The job-board scraper's demo rows: a week of multi-site sessions (Indeed, LinkedIn, Glassdoor).

A session starts every 10 minutes (a search term and a location), runs one execution per site,
samples its real-time metrics every minute (``session_metrics``) and saves the jobs it found;
``system_health`` is sampled every 5 minutes.

Planted problems (relative to ``now``), so every panel has data and every alert a reason:
- Glassdoor answers 403 to every execution of the last hour: its circuit breaker counts the
  failures and is ``open`` (the latest execution is skipped by it); ``glassdoor_accessible`` is false;
- LinkedIn times out in every third execution of the last hour (an error rate of about a third);
- the running session scrapes 3.2 jobs per minute (below the document's 5) with a growing queue;
- the host runs hot in the last 20 minutes: CPU 87 %, memory 93 % used.
Recruiters' names and e-mail addresses, job descriptions and error texts are in the rows, as in
the real system; the first job and the first error carry the planted values of ``PLANTED``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

MINUTE, HOUR, DAY = 60, 3600, 86400
DAYS = 7
EVERY = 10 * MINUTE

COLUMNS: dict[str, tuple[str, ...]] = {
    "scrape_sessions": ("id", "session_id", "search_term", "location", "sites", "max_jobs_per_site",
                        "max_concurrency", "started_at", "completed_at", "duration_seconds", "total_jobs_found",
                        "total_jobs_saved", "duplicates_skipped", "errors_count", "status"),
    "site_executions": ("id", "session_id", "site_name", "started_at", "completed_at", "duration_seconds",
                        "attempt_number", "jobs_scraped", "pages_processed", "success", "error_message",
                        "circuit_breaker_state", "circuit_breaker_failures", "avg_page_load_time",
                        "memory_usage_mb", "cpu_usage_percent"),
    "session_metrics": ("id", "session_id", "timestamp", "jobs_per_minute", "active_scrapers", "queue_depth",
                        "memory_usage_mb", "cpu_usage_percent", "site_response_times", "site_success_rates",
                        "error_counts"),
    "system_health": ("id", "timestamp", "total_memory_mb", "available_memory_mb", "cpu_usage_percent",
                      "disk_usage_percent", "active_sessions", "total_scrapers_running", "database_connections",
                      "fastapi_healthy", "database_healthy", "orchestrator_healthy", "indeed_accessible",
                      "linkedin_accessible", "glassdoor_accessible"),
    "scrape_errors": ("id", "session_id", "site_name", "error_type", "message", "url", "created_at"),
    "jobs": ("id", "session_id", "site_name", "external_id", "title", "company", "location", "salary_min",
             "salary_max", "recruiter_name", "recruiter_email", "description", "url", "scraped_at"),
}
TIMESTAMPS = frozenset({"started_at", "completed_at", "timestamp", "created_at", "scraped_at"})
# Append-only tables and the timestamp they are appended at (ids grow with it).
CHRONOLOGICAL = {"site_executions": "started_at", "session_metrics": "timestamp", "system_health": "timestamp",
                 "scrape_errors": "created_at", "jobs": "scraped_at"}

PLANTED = {"name": "Marisol Planted-Quintero", "email": "marisol.planted@example.com",
           "description": "PLANTED-DESC call me on +1 512 555 0199",
           "error": "PLANTED-ERR 403 for https://www.glassdoor.com/job?session=tok_PLANTED9c1"}
SITES = ("indeed", "linkedin", "glassdoor")
TERMS = ("python developer", "data engineer", "devops engineer", "frontend developer", "product manager",
         "nurse practitioner", "warehouse associate")
LOCATIONS = ("Remote", "Austin, TX", "New York, NY", "Seattle, WA", "Chicago, IL", "Denver, CO", "Boston, MA")
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella Health", "Hooli", "Stark Logistics", "Wayne Tech")
_FIRST = ("Ava", "Liam", "Sofia", "Noah", "Mia", "Ethan", "Priya", "Diego")
_LAST = ("Johnson", "Garcia", "Nguyen", "Smith", "Patel", "Kim", "Martinez")
_PAGE_LOAD = {"indeed": 1.1, "linkedin": 2.2, "glassdoor": 1.6}
_ERRORS = {"indeed": "parsing", "linkedin": "timeout", "glassdoor": "403"}
BREAKER_THRESHOLD = 5  # failures in a row that open a site's breaker


def iter_rows(*, seed: int, now: int) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    rng = random.Random(f"{seed}:scraper")
    start = now - DAYS * DAY
    sessions: list[tuple[Any, ...]] = []
    executions: list[tuple[Any, ...]] = []
    metrics: list[tuple[Any, ...]] = []
    errors: list[tuple[Any, ...]] = []
    jobs: list[tuple[Any, ...]] = []
    failures = {site: 0 for site in SITES}
    first = start - start % EVERY + EVERY
    for sid, t0 in enumerate(range(first, now, EVERY), 1):
        t0 += rng.randrange(30)
        if t0 >= now:
            break
        running = t0 > now - 5 * MINUTE
        term, location = rng.choice(TERMS), rng.choice(LOCATIONS)
        recent = t0 >= now - HOUR
        found = saved = dups = n_errors = 0
        ends = []
        for k, site in enumerate(SITES):
            e0 = t0 + 2 * k
            state = "open" if failures[site] >= BREAKER_THRESHOLD else "closed"
            reason: str | None
            if site == "glassdoor" and state == "open":  # the breaker skips the site: a fast failure
                duration, ok, reason = 0.2, False, "circuit breaker open: glassdoor skipped"
            elif running and site != "glassdoor":  # still scraping
                executions.append((0, sid, site, e0, None, None, 1, 0, 0, False, None, state, failures[site],
                                   None, 300 + rng.randrange(200), 40 + rng.randrange(30)))
                continue
            else:
                duration = rng.uniform(60, 240)
                fail_p = .03
                if recent and site == "glassdoor":
                    fail_p = 1.0
                elif recent and site == "linkedin":
                    fail_p = 1.0 if sid % 3 == 0 else 0.0
                ok = rng.random() >= fail_p
                reason = None if ok else {
                    "403": f"403 Forbidden for https://www.{site}.com/jobs?q={term.replace(' ', '+')}",
                    "timeout": f"Navigation timeout of 30000 ms exceeded on https://www.{site}.com/jobs",
                    "parsing": "Cannot read properties of undefined (reading 'salary')"}[_ERRORS[site]]
            e1 = e0 + duration
            pages = 0 if state == "open" else 1 + rng.randrange(4)
            count = 4 + rng.randrange(9) if ok else 0
            load = None if state == "open" else round(rng.lognormvariate(0, .35) * _PAGE_LOAD[site]
                                                       * (3 if not ok else 1), 3)
            failures[site] = 0 if ok else failures[site] + 1
            state_after = "open" if failures[site] >= BREAKER_THRESHOLD else state
            if sid == 1 and k == 0:
                ok, reason, count = False, PLANTED["error"], 0
            executions.append((0, sid, site, e0, int(e1), round(duration, 2), 1, count, pages, ok, reason,
                               state_after, failures[site], load, 250 + rng.randrange(300),
                               20 + rng.randrange(40)))
            if not ok:
                kinds = [_ERRORS[site]] * (1 if state == "open" else 1 + rng.randrange(3))
                for kind in kinds:
                    message = PLANTED["error"] if sid == 1 and k == 0 else (reason or "")
                    errors.append((0, sid, site, kind, message, f"https://www.{site}.com/jobs?page=1",
                                   e0 + rng.randrange(max(1, int(duration)))))
                n_errors += len(kinds)
            elif rng.random() < .1:  # a parsing hiccup on a page of a successful run
                errors.append((0, sid, site, "parsing", "Unexpected token < in JSON at position 0",
                               f"https://www.{site}.com/jobs?page=2", e0 + rng.randrange(int(duration))))
                n_errors += 1
            for j in range(count):
                first_job = not jobs
                name = PLANTED["name"] if first_job else f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
                email = PLANTED["email"] if first_job else \
                    f"{name.split()[0].lower()}.{name.split()[1].lower()}@{rng.choice(COMPANIES).split()[0].lower()}.com"
                low = None if rng.random() < .3 else 40000 + 5000 * rng.randrange(20)
                high = None if low is None else low + 10000 + 5000 * rng.randrange(8)
                title = f"{term.title()} ({rng.choice(('I', 'II', 'Senior'))})"
                jobs.append((0, sid, site, f"{site[:2]}-{sid}-{j}", title,
                             rng.choice(COMPANIES), location if rng.random() < .8 else rng.choice(LOCATIONS),
                             low, high, name, email,
                             PLANTED["description"] if first_job else f"We are hiring a {term}. Apply with {email}.",
                             f"https://www.{site}.com/viewjob?jk={rng.randrange(16**10):010x}",
                             int(e0 + duration * (j + 1) / (count + 1))))
            dups += rng.randrange(3) if ok else 0
            found += count
            saved += count
            ends.append(e1)
        if running:
            status, done, took = "running", None, None
        else:
            status = "cancelled" if rng.random() < .01 else ("completed" if saved else "failed")
            done = int(max(ends))
            took = round(max(ends) - t0, 2)
        sessions.append((sid, f"sess-{t0:x}-{sid}", term, location, json.dumps(list(SITES)), 50, 3, t0, done,
                         took, found + dups, saved, dups, n_errors, status))
        last = now if running else int(max(ends))
        for m, t in enumerate(range(t0 + MINUTE, min(last, now) + 1, MINUTE)):
            jpm = 3.2 if running else round(rng.uniform(6, 18), 1)
            metrics.append((0, sid, t, jpm, 2 if running else 3, (12 + 6 * m) if running else rng.randrange(6),
                            400 + rng.randrange(200), 30 + rng.randrange(40),
                            json.dumps({s: _PAGE_LOAD[s] for s in SITES}),
                            json.dumps({"indeed": .97, "linkedin": .66 if recent else .95,
                                        "glassdoor": 0.0 if recent else .96}),
                            json.dumps({"timeout": 1 if recent else 0, "403": 3 if recent else 0, "parsing": 0})))
        if running:
            metrics.append((0, sid, now - 10, 3.2, 2, 30, 610, 85, None, None, None))
    yield "scrape_sessions", sessions
    yield "site_executions", executions
    yield "session_metrics", metrics
    yield "scrape_errors", errors
    yield "jobs", jobs
    health: list[tuple[Any, ...]] = []
    for t in range(now - DAYS * DAY - (now % 300) + 300, now, 300):
        hot = t >= now - 20 * MINUTE
        cpu = round(rng.uniform(84, 92), 1) if hot else round(rng.uniform(25, 60), 1)
        available = round(rng.uniform(900, 1200)) if hot else round(rng.uniform(6000, 9000))
        blocked = t >= now - HOUR
        health.append((0, t, 16384.0, float(available), cpu, round(61 + (t - start) / DAY * .4, 1),
                       1, 3, 4 + rng.randrange(4), True, True, True, True, True, not blocked))
    yield "system_health", health
