"""Durations, one parser for the flags, the config file, packs, pack parameters and the mixin.

Prometheus's syntax: units from years to milliseconds, largest first, each at most once
(``1m30s``, ``1h``, ``90s``, ``1d``, ``1w``, ``500ms``); also one decimal amount of one unit
(``1.5h``, ``0.5s``, as the config always allowed) and a plain number of seconds (``90``, ``2.5``,
or a YAML number). Nothing else: NaN, infinities, negative numbers and booleans are refused.
"""

from __future__ import annotations

import math
import re

UNITS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Prometheus's model.ParseDuration: each unit once, in this order.
_COMPOUND = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_DECIMAL = re.compile(r"(\d+\.\d+)(y|w|d|h|ms|m|s)")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
EXAMPLES = "90s, 1m30s, 15m, 1h, 1d or 1w"


def parse(value: object) -> float:
    """Seconds from a duration; ValueError saying what is wrong otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as {EXAMPLES}, got a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"must be a finite duration of 0 or more seconds, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a duration such as {EXAMPLES}, got {type(value).__name__}")
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    if match := _DECIMAL.fullmatch(text):
        return float(match[1]) * UNITS[match[2]]
    match = _COMPOUND.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"must be a duration such as {EXAMPLES} (units y w d h m s ms, largest first), "
                         f"got {value!r}")
    return sum(int(amount) * unit for amount, unit in zip(match.groups(), UNITS.values()) if amount)


def parse_positive(value: object) -> float:
    """Seconds from a duration above zero; ValueError otherwise."""
    seconds = parse(value)
    if seconds <= 0:
        raise ValueError(f"must be a duration above zero such as {EXAMPLES}, got {value!r}")
    return seconds


def parse_promql(value: object) -> float:
    """Seconds from a duration written where PromQL reads it too (a range, ``for:``): only the
    units form (``1m30s``), above zero; ValueError otherwise."""
    if not isinstance(value, str) or not value.strip() or not _COMPOUND.fullmatch(value.strip()):
        raise ValueError(f"must be a Prometheus duration such as {EXAMPLES} (no decimals, no bare numbers), "
                         f"got {value!r}")
    return parse_positive(value)
