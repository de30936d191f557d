"""Rule declarations to Prometheus rule files: each rule's reason stays as a comment above it."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

SERVICE = "pipeline"


@dataclass(frozen=True)
class Recording:
    """A recording rule; ``why`` becomes the comment above it."""

    record: str
    expr: str
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": _block(self.expr)}


@dataclass(frozen=True)
class Alert:
    """An alerting rule with the annotations every notification and the docs table read."""

    name: str
    severity: str
    expr: str
    for_: str
    summary: str                 # a fixed sentence: what is wrong
    description: str             # the value, where, and what to do (templated)
    resolved: str                # a fixed sentence for the resolved notification: it is back
    runbook_url: str
    dashboard_url: str
    condition: str               # "fires when", in words, for the thresholds table
    value: str = ""              # the formatted value, for the notification templates
    area: str = "system"         # the overview status stat that counts it
    why: str = ""
    keep_firing_for: str = ""
    hold: str = ""               # the span ``expr`` must have held, counted inside the expression
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        annotations = {"summary": self.summary, "description": self.description}
        if self.value:
            annotations["value"] = self.value
        annotations.update({"resolved": self.resolved, "runbook_url": self.runbook_url,
                            "dashboard_url": self.dashboard_url, **self.annotations})
        rule: dict[str, Any] = {"alert": self.name, "expr": _block(self.expr), "for": self.for_}
        if self.keep_firing_for not in ("", "0s", "0m"):
            rule["keep_firing_for"] = self.keep_firing_for
        rule["labels"] = {"severity": self.severity, "service": SERVICE, **self.labels}
        rule["annotations"] = annotations
        return rule


@dataclass(frozen=True)
class Raw:
    """The escape hatch: a rule exactly as Prometheus reads it."""

    rule: Mapping[str, Any]
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.rule)


Rule = Recording | Alert | Raw

# A held alert tolerates this much missing data in its span (HOLD_STEP evaluations each): an
# exporter restart or a failed scrape or two, never a quiet hour.
HOLD_GAPS = 600
HOLD_STEP = 60


def held(expr: str, hold_seconds: int) -> str:
    """``expr`` that fires only once it has held for ``hold_seconds`` of the last ``hold_seconds +
    HOLD_GAPS``, one point a minute: the time a `for` would wait, counted over stored samples, so
    a missing evaluation (a restart, a failed scrape: staleness) delays the alert by the gap
    instead of restarting its timer. A Prometheus younger than the span has too few points.

    Inside the subquery the points are ``0 * (expr)``: arithmetic drops the metric name, so an
    ``expr`` whose result keeps a metric name that changes over time (``a > x or b > y``: the
    name of the branch that holds) is one series per label set, not two series that
    count_over_time refuses ("vector cannot contain metrics with the same labelset")."""
    body = expr.strip("\n")
    window = f"[{(hold_seconds + HOLD_GAPS) // 60}m:{HOLD_STEP // 60}m]"
    outer, inner = textwrap.indent(body, "  "), textwrap.indent(body, "      ")
    return (f"(\n{outer}\n)\nand\ncount_over_time(\n  (\n    0 * (\n{inner}\n    )\n  ){window}\n)"
            f" >= {hold_seconds // HOLD_STEP}\n")


def _block(expr: str) -> str:
    """Every expression ends with a newline, so the YAML shows it as a literal block."""
    return expr if expr.endswith("\n") else expr + "\n"


@dataclass(frozen=True)
class Group:
    """A rule group; ``interval`` only when it differs from the global evaluation interval."""

    name: str
    rules: tuple[Rule, ...]
    interval: str = ""
    why: str = ""
    alerts: tuple[Alert, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alerts", tuple(r for r in self.rules if isinstance(r, Alert)))


class _Dumper(yaml.SafeDumper):
    """Block literals for multi-line text (expressions), so the YAML reads like the PromQL."""


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """Expressions as literal blocks, long sentences folded, everything else plain."""
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    if len(data) > 80 and " " in data and "  " not in data and not data.startswith(" "):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=">")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _text)


def _comment(text: str, indent: str) -> str:
    """``text`` as comment lines of at most 100 characters."""
    lines = textwrap.wrap(text.strip(), width=100 - len(indent) - 2, break_long_words=False,
                          break_on_hyphens=False)
    return "".join(f"{indent}# {line}\n" for line in lines)


def _dump(data: Any, indent: str) -> str:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)
    return "".join(indent + line if line.strip() else line for line in text.splitlines(True))


def render(header: str, groups: Iterable[Group]) -> str:
    """A rule file: the header comment, then every group with its rules and their reasons."""
    out = [_comment(header, ""), "\ngroups:\n"]
    for group in groups:
        out.append(_comment(group.why, "  "))
        head: dict[str, Any] = {"name": group.name}
        if group.interval:
            head["interval"] = group.interval
        out.append("  - " + _dump(head, "    ").lstrip())
        out.append("    rules:\n")
        for rule in group.rules:
            out.append(_comment(rule.why, "      "))
            out.append("      - " + _dump(rule.to_dict(), "        ").lstrip())
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"
