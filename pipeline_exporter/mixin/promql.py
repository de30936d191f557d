"""PromQL building blocks shared by the rules and the dashboards."""

from __future__ import annotations

from dataclasses import dataclass

# Labels every rule keeps so that a Prometheus scraping several exporters keeps them apart.
TARGET = ("job", "instance")


@dataclass(frozen=True)
class Selectors:
    """Writes ``metric{<base matchers>, <more matchers>}`` for one fixed set of base matchers."""

    base: tuple[str, ...]

    def of(self, metric: str, *matchers: str) -> str:
        """``metric{job="pipeline-exporter", channel="email"}``."""
        return metric + "{" + ", ".join((*self.base, *matchers)) + "}"

    def sum_by(self, labels: str, metric: str, *matchers: str) -> str:
        """``sum by (job, instance, <labels>) (metric{...})``: the target labels are always kept."""
        return f"sum by ({by_target(labels)}) ({self.of(metric, *matchers)})"


def by_target(labels: str = "") -> str:
    """``job, instance`` followed by ``labels``."""
    return ", ".join([*TARGET, *([labels] if labels else [])])


def on_target(labels: str = "") -> str:
    """``on (job, instance, <labels>)``: the vector matching of every rule."""
    return f"on ({by_target(labels)})"


def window(name: str) -> str:
    """The matcher of one of the exporter's windows: ``window="24h"``."""
    return f'window="{name}"'


def percent(ratio: float) -> str:
    """0.05 -> ``5 %``, 0.001 -> ``0.1 %`` (how the docs and annotations write levels)."""
    return f"{ratio * 100:g} %"


def or_zero(expr: str) -> str:
    """Show 0 instead of "No data" when no series match (``on()`` keeps real series' labels)."""
    return f"({expr}) or on() vector(0)"


SPOKEN = {"15m": "15 minutes", "1h": "hour", "24h": "24 hours", "7d": "7 days"}


def spoken(span: str) -> str:
    """How prose names a window: "the last 24 hours", "the last hour"."""
    return SPOKEN.get(span, span)
