"""The report files beside the database: the Istanbul coverage summary and the JUnit end-to-end
report, read defensively, as jobs."""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pipeline_exporter.config import FilesConfig
from pipeline_exporter.errors import CollectionError
from pipeline_exporter.model import Job, JobInfo, LabelSpec, MetricData, MetricSpec
from pipeline_exporter.shaping import CapMemory, Capper, label_value

COVERAGE_KINDS = ("lines", "statements", "functions", "branches")


def read_bounded(path: Path, max_bytes: int) -> tuple[bytes, float]:
    """The file's bytes and modification time; refuses missing, empty and oversized files, and
    anything but a regular file (a FIFO nobody writes, a device that never ends, a socket): opened
    without blocking and read at most ``max_bytes + 1`` bytes, it can neither hang nor flood."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise CollectionError("source", f"{path} does not exist") from None
    except OSError as exc:
        raise CollectionError("source", f"cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CollectionError("source", f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise CollectionError("source", f"{path} is {info.st_size} bytes, over the {max_bytes}-byte limit")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise CollectionError("source", f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew while being read
        raise CollectionError("source", f"{path} grew over the {max_bytes}-byte limit while being read")
    if not data.strip():
        raise CollectionError("source", f"{path} is empty")
    return data, info.st_mtime


def parse_coverage(data: bytes, path: Path) -> dict[str, float]:
    """Ratios 0..1 per coverage kind from an Istanbul json-summary document."""
    try:
        total = json.loads(data)["total"]
    except RecursionError:
        raise CollectionError("source", f"{path} nests too deeply to be a coverage summary") from None
    except (ValueError, KeyError, TypeError):
        raise CollectionError(
            "source", f"{path} is not an Istanbul json-summary report (no readable 'total')"
        ) from None
    ratios = {}
    for kind in COVERAGE_KINDS:
        pct = total.get(kind, {}).get("pct") if isinstance(total.get(kind), dict) else None
        # Istanbul writes "Unknown" when there is nothing to cover; that is not a number to export.
        if isinstance(pct, (int, float)) and not isinstance(pct, bool) and 0 <= pct <= 100:
            ratios[kind] = pct / 100.0
    if not ratios:
        raise CollectionError("source", f"{path} has no numeric pct in total")
    return ratios


@dataclass
class SuiteResult:
    """Test case counts and time of one JUnit test suite."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0


def parse_junit(data: bytes, path: Path) -> dict[str, SuiteResult]:
    """Counts per suite from a JUnit XML report, parsed without entity expansion or external fetches."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CollectionError("source", f"{path} was refused: {type(exc).__name__} (unsafe XML)") from None
    except SafeET.ParseError as exc:
        raise CollectionError("source", f"{path} is not well-formed XML: {exc}") from None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites:
        raise CollectionError("source", f"{path} has no <testsuite> element")
    result: dict[str, SuiteResult] = {}
    for suite in suites:
        if suite.find("testsuite") is not None:
            continue  # a grouping suite; its children are counted themselves
        name = (suite.get("name") or "unnamed").strip() or "unnamed"
        entry = result.setdefault(name, SuiteResult())
        _count_cases(suite, entry)
        entry.seconds += _float(suite.get("time"))
    return result


def _count_cases(suite: Element, entry: SuiteResult) -> None:
    cases = suite.findall("testcase")
    if not cases:  # some reporters give only the counts
        tests = int(_float(suite.get("tests")))
        failed = int(_float(suite.get("failures")) + _float(suite.get("errors")))
        skipped = int(_float(suite.get("skipped")))
        entry.failed += failed
        entry.skipped += skipped
        entry.passed += max(0, tests - failed - skipped)
        return
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            entry.failed += 1
        elif case.find("skipped") is not None:
            entry.skipped += 1
        else:
            entry.passed += 1


def _float(text: str | None) -> float:
    try:
        value = float(text) if text is not None else 0.0
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value >= 0 else 0.0


def report_job(
    name: str,
    path: Path,
    explicit: bool,
    interval: float,
    max_bytes: int,
    parse: Callable[[bytes, float], list[MetricData]],
) -> Job:
    """A report file beside the database: a default path that does not exist means the source is
    not in use (no data, no error); a path the user set must exist."""

    def run(_now: float) -> list[MetricData]:
        if not explicit and not os.path.lexists(path):
            return []
        data, mtime = read_bounded(path, max_bytes)
        try:
            return parse(data, mtime)
        except RecursionError:
            raise CollectionError("source", f"{path} nests too deeply to be read") from None

    return Job(JobInfo(name, "file", interval, interval * 3), run)


def coverage_job(files: FilesConfig) -> Job:
    """Coverage ratios and the report's modification time."""
    path = files.coverage

    def parse(data: bytes, mtime: float) -> list[MetricData]:
        ratios = parse_coverage(data, path)
        return [
            MetricData.gauge(
                "pipeline_code_coverage_ratio",
                "Code coverage of the pipeline's test suite, 0 to 1, by kind.",
                ("metric",),
                {(kind,): ratio for kind, ratio in ratios.items()},
            ),
            MetricData.gauge(
                "pipeline_code_coverage_report_timestamp_seconds",
                "Modification time of the coverage summary file, in Unix seconds.",
                (),
                {(): mtime},
            ),
        ]

    return report_job("coverage_report", path, files.coverage_explicit, files.interval, files.max_bytes, parse)


E2E_TESTS = MetricSpec(
    "pipeline_e2e_tests",
    "gauge",
    "Test cases in the latest end-to-end report, by suite and result.",
    (LabelSpec("suite", "suite", "unnamed"), LabelSpec("result", "result", cap=0)),
    value="n",
)
E2E_DURATION = MetricSpec(
    "pipeline_e2e_duration_seconds",
    "gauge",
    "Time the suite took in the latest end-to-end report.",
    (LabelSpec("suite", "suite", "unnamed"),),
    value="seconds",
)


def e2e_job(files: FilesConfig, memory: CapMemory) -> Job:
    """End-to-end test counts per suite from the latest JUnit report; suite names are a capped label."""
    capper = Capper(memory)
    path = files.e2e_report
    for spec in (E2E_TESTS, E2E_DURATION):
        memory.register(spec.name)

    def parse(data: bytes, mtime: float) -> list[MetricData]:
        suites = {label_value(name, "unnamed"): counts for name, counts in parse_junit(data, path).items()}
        tests: dict[tuple[str, ...], float] = {}
        for suite, counts in suites.items():
            tests.update(
                {
                    (suite, "passed"): float(counts.passed),
                    (suite, "failed"): float(counts.failed),
                    (suite, "skipped"): float(counts.skipped),
                }
            )
        durations: dict[tuple[str, ...], float] = {(suite,): counts.seconds for suite, counts in suites.items()}
        return [
            capper.cap(E2E_TESTS, MetricData.gauge(E2E_TESTS.name, E2E_TESTS.help, E2E_TESTS.label_names, tests)),
            capper.cap(E2E_DURATION, MetricData.gauge(E2E_DURATION.name, E2E_DURATION.help, ("suite",), durations)),
            MetricData.gauge(
                "pipeline_e2e_report_timestamp_seconds",
                "Modification time of the end-to-end JUnit report, in Unix seconds.",
                (),
                {(): mtime},
            ),
        ]

    return report_job("e2e_report", path, files.e2e_report_explicit, files.interval, files.max_bytes, parse)
