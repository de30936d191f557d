"""What the counting engine remembers about one query between runs: plain data, importing nothing
of the project, so that ``memory`` (which keeps the states across reloads) sits below the engine
modules that fill them (``incremental``, ``windows``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Series = dict[tuple[str, ...], float]
Groups = dict[tuple[Any, ...], list[float | None]]  # label values -> one value a column
Buckets = dict[int, Groups]  # minute -> groups


@dataclass
class FastPath:
    """Whether a query's fast path is in use, and why not (shown on the status page)."""

    on: bool = True
    reason: str = ""


@dataclass
class CounterState:
    """What one counter query has counted so far; survives reloads that keep the query."""

    settled: list[Series]
    low: Any = None  # None until the first run
    history: list[tuple[float, Any]] = field(default_factory=list)
    last_full: float | None = None
    last_settle: float | None = None
    full_runs: int = 0
    delta_runs: int = 0
    raised: int = 0  # recounts that found rows the deltas missed
    counted: list[Series] = field(default_factory=list)  # events above low counted so far, deleted ones too
    above: list[Series] = field(default_factory=list)  # per metric: what the last run saw above low
    fresh: list[Series] = field(default_factory=list)  # per metric: what the last run saw above its own bound
    bound: Any = None  # the last run's bound: its largest key (or, for a time key, its clock)
    top: Any = None  # the largest key ever seen: a table whose keys fall below it was emptied or restored
    anchors: int = 0  # re-anchorings after the keys went back
    fast: FastPath = field(default_factory=FastPath)


@dataclass
class BucketState:
    """What a bucketed windowed query remembers between runs (and across reloads that keep it)."""

    settled: Buckets = field(default_factory=dict)  # events with a key up to ``low``, at or before their run
    future: dict[float, Groups] = field(default_factory=dict)  # settled events dated after their run, by time
    low: int | None = None
    first_key: int | None = None  # the table's smallest key at the last run: a prune moves it
    history: list[tuple[float, int]] = field(default_factory=list)  # (run time, largest key then)
    last_full: float | None = None
    full_runs: int = 0
    floor: float = float("-inf")  # no row above the first key of the last recount is older, if the key follows time
    fast: FastPath = field(default_factory=FastPath)
