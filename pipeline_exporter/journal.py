"""Rows changed in place, followed through their status journal (issue 24, docs/design.md).

A query with ``journal`` (the method333 ``sites`` query) keeps, in memory, the status and the
Unix time of the last status change of every row in an aged status (``statuses``: the processing
statuses), in packed arrays indexed by the row's key (9 bytes a row) and one sorted array of
times per status. A run then reads what changed, not the table:

- the journal's rows above the last settled key name the rows to read again, by their key (rows
  of the last ``SETTLE_AFTER`` are read at every run, so a journal row or a status update that
  commits late is still seen);
- the count of rows per status (the funnel: an index on the status answers it alone) and the rows
  with an error (errors, and the error type of a stuck row) are read exactly at every run;
- the stuck rows, their oldest age, the age histogram and the exact nearest-rank percentiles come
  from the sorted arrays, with the same arithmetic as the SQL (``now - changed``).

The fast path is checked, never trusted: at every run the followed count of every aged status
must equal the count just read (a row added, deleted or moved without a journal row breaks it),
and at every reconciliation (the first run, every ``check_every``, and at once when the journal's
largest key falls below one seen before: a restore) the rows are read again in full (the run's
numbers come from them): the journal's completeness is the number of rows whose followed state
differs from that read. The run after a reconciliation runs the query's own statement (the exact
path, published) and checks that the followed state gives the same numbers. Where a check fails,
the exact path wins: the query runs its own statement on every run, sets
``pipeline_exporter_query_fast_path{query}`` to 0, shows the reason on the status page and logs
it once; a reconciliation that finds the journal complete since the last one turns the fast path
back on.
What the per-run check cannot see (a status_changed_at rewritten without a status change or a
journal row, two unjournaled moves that cancel) is found by the next reconciliation.
"""

from __future__ import annotations

import bisect
import logging
import math
from array import array
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from pipeline_exporter.model import ROLES, Histogram, JournalSpec, MetricData, MetricSpec, QuerySpec, Runner
from pipeline_exporter.shaping import label_value, number
from pipeline_exporter.sql import expand_macros
from pipeline_exporter.states import FastPath
from pipeline_exporter.validation import IDENTIFIER, Node

log = logging.getLogger("pipeline_exporter.journal")

CHUNK = 100_000  # keys per statement of a full read: bounded result lists, one transaction
MAX_SPREAD = 8  # a key range wider than 8x the rows (and 1M) is too sparse for arrays: exact path


class Mirror:
    """The followed state: per key, the code of its aged status (0: not aged) and its time (NaN: none)."""

    def __init__(self, statuses: tuple[str, ...], base: int, size: int):
        self.statuses = statuses
        self.codes = {status: i + 1 for i, status in enumerate(statuses)}
        self.base = base
        self.code = array("B", bytes(size))
        self.time = array("d", [math.nan]) * size
        self.sorted: list[array] = [array("d") for _ in statuses]
        self.untimed = [0] * len(statuses)  # rows of the status without a time

    def fits(self, key: int) -> bool:
        return self.base <= key < self.base + len(self.code)

    def count(self, status: int) -> int:
        return len(self.sorted[status]) + self.untimed[status]

    def set(self, key: int, status: str | None, moment: float | None) -> bool:
        """Follow one row's current state; False when its key is below the arrays (they grow upwards)."""
        if key >= self.base + len(self.code):
            if status not in self.codes:
                return True  # a new row in a status that is not aged: nothing to follow
            more = key - self.base + 1 - len(self.code) + len(self.code) // 8  # room for the next rows
            self.code.frombytes(bytes(more))
            self.time.extend(array("d", [math.nan]) * more)
        if not self.fits(key):
            return False
        i = key - self.base
        old = self.code[i]
        code = self.codes.get(status, 0) if status is not None else 0
        if old == code and (not code or self.time[i] == moment or (moment is None and math.isnan(self.time[i]))):
            return True  # unchanged (a site read again within the settle window)
        if old:
            before = self.time[i]
            if math.isnan(before):
                self.untimed[old - 1] -= 1
            else:
                values = self.sorted[old - 1]
                del values[bisect.bisect_left(values, before)]
        self.code[i] = code
        self.time[i] = math.nan if moment is None or not code else moment  # as a full read leaves it
        if code:
            if moment is None:
                self.untimed[code - 1] += 1
            else:
                bisect.insort(self.sorted[code - 1], moment)
        return True

    def at(self, key: int) -> tuple[int, float | None]:
        if not self.fits(key):
            return 0, None
        code, moment = self.code[key - self.base], self.time[key - self.base]
        return (code, None if math.isnan(moment) else moment) if code else (0, None)


def differences(a: Mirror, b: Mirror) -> int:
    """How many rows two followed states disagree on (status or time)."""
    if a.base == b.base:  # the usual case, in C: the same rows, one array grown longer with empty room
        n = min(len(a.code), len(b.code))
        tails = [m.code[n:] for m in (a, b)]
        if a.code[:n] == b.code[:n] and a.time[:n].tobytes() == b.time[:n].tobytes() and \
                all(tail.count(0) == len(tail) for tail in tails):
            return 0
    keys = range(min(a.base, b.base), max(a.base + len(a.code), b.base + len(b.code)))
    return sum(1 for key in keys if a.at(key) != b.at(key))


def _timed(raw: Any) -> float | None:
    return number(raw)


class Journaled:
    """Runs one query with a status journal: the fast path from the followed state, or the exact path."""

    SETTLE_AFTER = 600.0

    def __init__(self, query: QuerySpec, dialect: str, exact: Callable[[Runner, float], list[MetricData]],
                 fast: FastPath | None = None):
        assert query.journal is not None
        self.query, self.spec, self.dialect = query, query.journal, dialect
        self.exact_run = exact
        self.fast = fast or FastPath()
        self.mirror: Mirror | None = None
        self.top: int | None = None  # the journal's largest key seen
        self.low: int | None = None  # journal keys up to here are settled: not read again
        self.history: list[tuple[float, int]] = []
        self.last_full: float | None = None
        self.reconciliations = 0
        self.fast_runs = 0  # runs answered from the followed state
        self.verify_due = False  # the run after a reconciliation checks the fast path against the statement
        self.differing = 0  # rows the last reconciliation found the journal had not accounted for
        s = self.spec
        when = expand_macros(f"$epoch({s.changed})", dialect)
        self.top_sql = f"SELECT MAX({s.journal_key}) FROM {s.journal}"
        self.bounds_sql = f"SELECT MIN({s.key}), MAX({s.key}), COUNT(*) FROM {s.table}"
        self.rows_sql = (f"SELECT {s.key}, {s.status}, {when} FROM {s.table} "
                         f"WHERE {s.key} >= :pe_from AND {s.key} < :pe_to")
        self.touched_sql = (f"SELECT {s.key}, {s.status}, {when} FROM {s.table} WHERE {s.key} IN "
                            f"(SELECT {s.row} FROM {s.journal} WHERE {s.journal_key} > :pe_low)")
        self.states_sql = f"SELECT {s.status}, COUNT(*) FROM {s.table} GROUP BY {s.status}"
        self.errors_sql = f"SELECT {s.key}, {s.status}, {s.error} FROM {s.table} WHERE {s.error} IS NOT NULL"
        self.roles = {role: next(m for m in query.metrics if m.name == name) for role, name in s.metrics.items()}

    # ------------------------------------------------------------------ one run

    def compute(self, run: Runner, parameters: Mapping[str, Any], now: float) -> list[MetricData]:
        top = _int(run(self.top_sql, {}).rows[0][0])
        if self.mirror is None or (self.top is not None and (top is None or top < self.top)):
            return self._reconcile(run, parameters, now, top, "restored" if self.mirror is not None else "first")
        self._follow(run, now, top)  # before a reconciliation too: it compares what the journal accounted for
        if self.mirror is None:  # a row below the arrays' first key: read in full
            return self._reconcile(run, parameters, now, top, "first")
        if self.last_full is None or now - self.last_full >= self.spec.check_every:
            return self._reconcile(run, parameters, now, top, "")
        if self.verify_due:
            return self._verify(run, parameters, now)
        if not self.fast.on:
            return self.exact_run(run, now)  # until a reconciliation finds the journal complete again
        data, moved = self._fast(run, parameters, now)
        if data is None:
            what = f"status {', '.join(moved)}" if moved else "an error's status"
            self._set_fast(False, f"rows of {self.spec.table} ({what}) differ from the journal's account: a row "
                                  f"added, deleted or moved without a journal row")
            return self.exact_run(run, now)
        self.fast_runs += 1
        return data

    def _fast(self, run: Runner, parameters: Mapping[str, Any],
              now: float) -> tuple[list[MetricData] | None, list[str]]:
        """The fast path's numbers, or None (and the statuses whose counts moved) where the counts and
        errors read now contradict the followed state."""
        assert self.mirror is not None
        states = {raw: int(n) for raw, n in run(self.states_sql, {}).rows}
        moved = [status for status in self.spec.statuses
                 if states.get(status, 0) != self.mirror.count(self.mirror.codes[status] - 1)]
        if moved:
            return None, moved
        return self._fast_metrics(states, run(self.errors_sql, {}).rows, parameters, now), []

    def _verify(self, run: Runner, parameters: Mapping[str, Any], now: float) -> list[MetricData]:
        """The run after a reconciliation: the statement, published, and the fast path's numbers
        from the same transaction, which must equal it (the check of the fast path's arithmetic)."""
        self.verify_due = False
        exact = self.exact_run(run, now)
        if not self.fast.on:
            return exact
        data, _ = self._fast(run, parameters, now)
        differing = _differing(data, exact) if data is not None else "the counts"
        if differing:
            self._set_fast(False, f"the numbers from the followed state differ from the statement ({differing}): "
                                  f"a change without a journal row since the last full read")
        return exact

    def _follow(self, run: Runner, now: float, top: int | None) -> None:
        """Read again the rows the journal names above the settled key."""
        assert self.mirror is not None
        if top is not None and self.low is not None and top > self.low:
            for key, status, moment in run(self.touched_sql, {"pe_low": self.low}).rows:
                if not self.mirror.set(int(key), status, _timed(moment)):
                    self.mirror = None
                    return
        self._settle(now, top)

    def _settle(self, now: float, top: int | None) -> None:
        self.history = [(seen, key) for seen, key in self.history if seen >= now - 2 * self.SETTLE_AFTER]
        if top is not None:
            self.history.append((now, top))
            self.top = top if self.top is None else max(self.top, top)
        old = [key for seen, key in self.history if seen <= now - self.SETTLE_AFTER]
        if old and self.low is not None:
            self.low = max(self.low, max(old))

    # ------------------------------------------------------------------ reconciliation

    def _reconcile(self, run: Runner, parameters: Mapping[str, Any], now: float, top: int | None,
                   why: str) -> list[MetricData]:
        """The rows read in full; the journal's completeness measured (the rows whose followed state
        differs from the full read) where a followed state is there to compare: not at the first
        run or after a restore. Its numbers come from the fresh rows (exact); the statement runs at
        the next run (``_verify``), so no run does both heavy reads."""
        fresh = self._full(run)
        if fresh is None:
            self._set_fast(False, f"the keys of {self.spec.table} are too sparse to follow in memory")
        elif why == "restored":
            log.info("the journal's largest key fell below the largest seen (restored?): rows read again in full",
                     extra={"query": self.query.name})
        elif why == "" and self.mirror is not None and self.last_full is not None:
            self.differing = differences(self.mirror, fresh)
            if self.differing:
                self._set_fast(False, f"{self.differing} rows of {self.spec.table} differ from the journal's "
                                      f"account since the last full read (changes without a journal row)")
            else:
                self._set_fast(True, "")
        self.mirror = fresh
        if why in ("restored", "first") or self.low is None or top is None:
            self.low, self.top, self.history = (top if top is not None else 0), top, []
        self._settle(now, top)
        self.last_full = now
        self.reconciliations += 1
        self.verify_due = fresh is not None
        data = self._fast(run, parameters, now)[0] if fresh is not None else None
        return data if data is not None else self.exact_run(run, now)

    def _full(self, run: Runner) -> Mirror | None:
        low, high, rows = run(self.bounds_sql, {}).rows[0]
        if low is None:
            return Mirror(self.spec.statuses, 0, 0)
        low, high, rows = int(low), int(high), int(rows)
        size = high - low + 1
        if size > max(MAX_SPREAD * rows, 1_000_000):
            return None
        mirror = Mirror(self.spec.statuses, low, size)
        times: list[list[float]] = [[] for _ in self.spec.statuses]
        codes, code, when = mirror.codes, mirror.code, mirror.time
        for start in range(low, high + 1, CHUNK):
            for key, status, moment in run(self.rows_sql, {"pe_from": start, "pe_to": start + CHUNK}).rows:
                aged = codes.get(status)
                if aged:
                    i, moment = int(key) - low, _timed(moment)
                    code[i] = aged
                    if moment is None:
                        mirror.untimed[aged - 1] += 1
                    else:
                        when[i] = moment
                        times[aged - 1].append(moment)
        mirror.sorted = [array("d", sorted(values)) for values in times]  # sorted once, not row by row
        return mirror

    def _set_fast(self, on: bool, reason: str) -> None:
        if self.fast.on != on:
            if on:
                log.info("the journal accounted for every change since the last full read: fast path back on",
                         extra={"query": self.query.name})
            else:
                log.warning("the query runs its full statement on every run (exact, slower): %s", reason,
                            extra={"query": self.query.name})
        self.fast.on, self.fast.reason = on, reason

    # ------------------------------------------------------------------ the fast path's numbers

    def _fast_metrics(self, states: Mapping[Any, int], errors: list[tuple], parameters: Mapping[str, Any],
                      now: float) -> list[MetricData] | None:
        """The metrics from the followed state; None where the rows read contradict it."""
        mirror = self.mirror
        assert mirror is not None
        out: dict[str, MetricData] = {}
        roles = self.roles
        if "states" in roles:
            metric = roles["states"]
            data = _data(metric)
            for raw, n in states.items():
                funnel = (label_value(raw, metric.labels[0].null),)
                data.series[funnel] = data.series.get(funnel, 0.0) + n
            out[metric.name] = data
        if "errors" in roles:
            metric = roles["errors"]
            data = _data(metric)
            for raw_error, n in Counter(error for _, _, error in errors).items():  # label values once per error
                label = (label_value(raw_error, metric.labels[0].null),)
                data.series[label] = data.series.get(label, 0.0) + n
            out[metric.name] = data
        cutoff = now - float(parameters[self.spec.stuck_after])
        stuck: Counter = Counter()
        oldest: dict[tuple[str, str | None], float] = {}
        claimed: dict[str, Counter] = {}
        for raw_key, status, error in errors:
            code, row = mirror.codes.get(status), int(raw_key)
            if code is None:
                continue
            if not mirror.fits(row) or mirror.code[row - mirror.base] != code:
                return None  # a row with an error whose status the journal did not account for
            moment = mirror.time[row - mirror.base]
            if math.isnan(moment) or not moment < cutoff:
                continue
            group = (status, error)
            stuck[group] += 1
            oldest[group] = max(oldest.get(group, -math.inf), now - moment)
            if status not in claimed:
                claimed[status] = Counter()
            claimed[status][moment] += 1
        for status in self.spec.statuses:
            values = mirror.sorted[mirror.codes[status] - 1]
            total = bisect.bisect_left(values, cutoff)  # rows with a time before the cutoff
            plain = total - sum(n for (s, _), n in stuck.items() if s == status)
            if plain > 0:
                stuck[(status, None)] = plain
                taken = Counter(claimed.get(status, {}))
                for moment in values:  # the oldest time no row with an error holds
                    if taken[moment]:
                        taken[moment] -= 1
                        continue
                    oldest[(status, None)] = now - moment
                    break
        if "stuck" in roles:
            metric = roles["stuck"]
            data = _data(metric)
            for (status, error), n in stuck.items():  # an empty error and none share a label value
                labels = _labels(metric, status, error)
                data.series[labels] = data.series.get(labels, 0.0) + n
            out[metric.name] = data
        if "oldest" in roles:
            metric = roles["oldest"]
            data = _data(metric)
            for (status, error), age in oldest.items():
                labels = _labels(metric, status, error)
                data.series[labels] = max(data.series.get(labels, age), age)
            out[metric.name] = data
        if "ages" in roles:
            metric = roles["ages"]
            data = _data(metric)
            for status in self.spec.statuses:
                values = mirror.sorted[mirror.codes[status] - 1]
                if not values:
                    continue
                # ages <= bound: the same arithmetic as the SQL's (now - changed <= bound), by bisection
                counts = [float(len(values) - _first_within(values, now, bound)) for bound in metric.buckets]
                data.series[(label_value(status, metric.labels[0].null),)] = Histogram(
                    metric.buckets, [*counts, float(len(values))], len(values) * now - math.fsum(values))
            out[metric.name] = data
        if "percentiles" in roles:
            metric = roles["percentiles"]
            data = _data(metric)
            for status in self.spec.statuses:
                values = mirror.sorted[mirror.codes[status] - 1]
                n = len(values)
                if not n:
                    continue
                for percentile, _ in metric.values:
                    rank = -(-int(percentile) * n // 100)  # the smallest r with 100 * r >= p * n
                    data.series[(label_value(status, metric.labels[0].null), percentile)] = \
                        now - values[n - max(rank, 1)]
            out[metric.name] = data
        for data in out.values():
            data.series = dict(sorted(data.series.items()))  # a stable page, whatever the order followed
        return [out.get(metric.name) or _data(metric) for metric in self.query.metrics]


def _first_within(values: array, now: float, bound: float) -> int:
    """The index of the first time whose age (``now - time``, the SQL's arithmetic) is at most
    ``bound``: the ages fall as the sorted times rise."""
    def within(moment: float) -> bool:
        return now - moment <= bound
    return bisect.bisect_left(values, True, key=within)


def _differing(fast: list[MetricData], exact: list[MetricData]) -> str:
    """The first metric whose series differ (a histogram's sum to a relative 1e-9: the order of
    addition differs), or ''."""
    for a, b in zip(fast, exact):
        if a.series.keys() != b.series.keys():
            return a.name
        for key, value in a.series.items():
            other = b.series[key]
            if isinstance(value, Histogram):
                if value.counts != other.counts or not math.isclose(value.total, other.total, rel_tol=1e-9):
                    return a.name
            elif value != other:
                return a.name
    return ""


def _data(metric: MetricSpec) -> MetricData:
    return MetricData(metric.name, metric.type, metric.help, metric.label_names)


def _labels(metric: MetricSpec, status: str, error: Any) -> tuple[str, ...]:
    """The (status, error) labels of a stuck metric, with its NULL words."""
    return tuple(label_value(raw, label.null) for raw, label in zip((status, error), metric.labels))


def _int(raw: Any) -> int | None:
    return None if raw is None else int(raw)


# ---------------------------------------------------------------------- the pack's declaration

def read_journal(node: Node, metrics: tuple[MetricSpec, ...]) -> JournalSpec:
    """``journal: {table, key, status, changed, error, journal: {table, key, row}, statuses, stuck_after,
    metrics: {role: metric name}, check_every}`` (pipeline_exporter/journal.py)."""
    spec = node.mapping("journal")
    names: dict[str, str] = {}
    for key in ("table", "key", "status", "changed", "error", "stuck_after"):
        names[key] = spec.required_string(key)
    log = spec.mapping("journal")
    for key in ("table", "key", "row"):
        names[f"journal_{key}"] = log.required_string(key)
    log.done()
    for key, value in names.items():
        if not IDENTIFIER.match(value):
            raise spec.fail(key, f"an identifier (letters, digits, _), got {value!r}")
    statuses = tuple(str(s) for s in spec.sequence("statuses"))
    if not statuses or len(statuses) > 250:
        raise spec.fail("statuses", "names the aged statuses (1 to 250)")
    roles = spec.mapping("metrics")
    known = {metric.name for metric in metrics}
    mapped = {}
    for role in roles.data:
        if role not in ROLES:
            raise roles.fail(str(role), f"roles are {', '.join(ROLES)}")
        name = roles.required_string(str(role))
        if name not in known:
            raise roles.fail(str(role), f"{name!r} is no metric of this query")
        mapped[str(role)] = name
    roles.done()
    shapes = {"states": 1, "errors": 1, "stuck": 2, "oldest": 2, "ages": 1, "percentiles": 1}
    for role, name in mapped.items():
        metric = next(m for m in metrics if m.name == name)
        if len(metric.labels) != shapes[role] or (role == "ages") != (metric.type == "histogram") or \
                (role == "percentiles") != bool(metric.values):
            raise roles.fail(role, f"{name} cannot play {role}: the fast path gives it "
                                   f"{'(status, error)' if shapes[role] == 2 else 'one'} label(s)"
                                   f"{', buckets' if role == 'ages' else ''}"
                                   f"{', a percentile label' if role == 'percentiles' else ''}")
    unplayed = sorted(known - set(mapped.values()))
    if unplayed:
        raise spec.fail("metrics", f"the fast path computes each metric of the query by its role: "
                                   f"{', '.join(unplayed)} has none")
    check_every = spec.duration("check_every", JournalSpec.check_every)
    spec.done()
    return JournalSpec(table=names["table"], key=names["key"], status=names["status"], changed=names["changed"],
                       error=names["error"], journal=names["journal_table"], journal_key=names["journal_key"],
                       row=names["journal_row"], statuses=statuses, stuck_after=names["stuck_after"],
                       metrics=mapped, check_every=check_every)
