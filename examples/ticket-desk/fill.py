"""Create the ticket desk's tables in a SQLite file and fill them with two weeks of demo rows.

    python fill.py desk.db [--tickets N] [--seed S]

Timestamps are relative to now, so the windows of the pack (1h, 24h, 7d) all hold rows. Only the
standard library is used; run it again to add more rows (new ids, new times).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

CHANNELS = ["email", "chat", "phone"]
PRIORITIES = ["low", "normal", "high", "urgent"]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fill(path: Path, tickets: int = 500, seed: int = 1) -> int:
    """Write ``tickets`` tickets (and their replies) created over the last 14 days; return the count."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    db = sqlite3.connect(path)
    with db:
        db.executescript((Path(__file__).with_name("schema.sql")).read_text(encoding="utf-8"))
        for _ in range(tickets):
            created = now - timedelta(seconds=rng.uniform(60, 14 * 86400))
            priority = rng.choices(PRIORITIES, weights=[3, 5, 2, 1])[0]
            first = created + timedelta(seconds=rng.expovariate(1 / 1800))
            resolved = first + timedelta(seconds=rng.expovariate(1 / (6 * 3600)))
            status = "resolved" if resolved < now else rng.choice(["open", "pending"])
            cursor = db.execute(
                "INSERT INTO tickets (created_at, channel, priority, status, subject, first_response_at, "
                "resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (iso(created), rng.choice(CHANNELS), priority, status, "demo subject",
                 iso(first) if first < now else None, iso(resolved) if status == "resolved" else None))
            for reply in range(rng.randint(0, 3)):
                at = first + timedelta(minutes=20 * reply)
                if at < now:
                    db.execute("INSERT INTO replies (ticket_id, created_at, author, body) VALUES (?, ?, ?, ?)",
                               (cursor.lastrowid, iso(at), "agent" if reply % 2 == 0 else "customer", "demo"))
    db.close()
    return tickets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    count = fill(args.path, args.tickets, args.seed)
    print(f"{args.path}: {count} demo tickets added")


if __name__ == "__main__":
    main()
