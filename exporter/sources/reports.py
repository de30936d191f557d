"""Read the Istanbul coverage summary and the JUnit end-to-end report, defensively."""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from exporter.errors import QueryError

COVERAGE_KINDS = ("lines", "statements", "functions", "branches")


def read_bounded(path: Path, max_bytes: int) -> tuple[bytes, float]:
    """The file's bytes and modification time; refuses missing, empty and oversized files, and
    anything but a regular file (a FIFO nobody writes, a device that never ends, a socket): opened
    without blocking and read at most ``max_bytes + 1`` bytes, it can neither hang nor flood."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise QueryError("source", f"{path} does not exist") from None
    except OSError as exc:
        raise QueryError("source", f"cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise QueryError("source", f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise QueryError("source", f"{path} is {info.st_size} bytes, over the {max_bytes}-byte limit")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise QueryError("source", f"cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew while being read
        raise QueryError("source", f"{path} grew over the {max_bytes}-byte limit while being read")
    if not data.strip():
        raise QueryError("source", f"{path} is empty")
    return data, info.st_mtime


def parse_coverage(data: bytes, path: Path) -> dict[str, float]:
    """Ratios 0..1 per coverage kind from an Istanbul json-summary document."""
    try:
        total = json.loads(data)["total"]
    except RecursionError:
        raise QueryError("source", f"{path} nests too deeply to be a coverage summary") from None
    except (ValueError, KeyError, TypeError):
        raise QueryError("source", f"{path} is not an Istanbul json-summary report (no readable 'total')") from None
    ratios = {}
    for kind in COVERAGE_KINDS:
        pct = total.get(kind, {}).get("pct") if isinstance(total.get(kind), dict) else None
        # Istanbul writes "Unknown" when there is nothing to cover; that is not a number to export.
        if isinstance(pct, (int, float)) and not isinstance(pct, bool) and 0 <= pct <= 100:
            ratios[kind] = pct / 100.0
    if not ratios:
        raise QueryError("source", f"{path} has no numeric pct in total")
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
        raise QueryError("source", f"{path} was refused: {type(exc).__name__} (unsafe XML)") from None
    except SafeET.ParseError as exc:
        raise QueryError("source", f"{path} is not well-formed XML: {exc}") from None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites:
        raise QueryError("source", f"{path} has no <testsuite> element")
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
