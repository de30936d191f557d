"""A progress line for long commands (``demo-db``, ``backfill``) on a terminal; silent otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``advance(n)`` moves it on; on a terminal it redraws one line at most ten times a second,
    and ``done()`` ends that line. Written to a pipe or a file, it writes nothing."""

    def __init__(self, label: str, total: int, unit: str, stream: TextIO | None = None):
        self.label, self.total, self.unit = label, max(total, 1), unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.count = 0
        self._shown = 0.0
        self._started = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and (now - self._shown >= 0.1 or self.count >= self.total):
            self._shown = now
            share = min(self.count / self.total, 1.0)
            self.stream.write(f"\r{self.label}: {self.count:,}/{self.total:,} {self.unit} "
                              f"({share:.0%}, {now - self._started:.0f} s)")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
