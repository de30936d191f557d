"""Reading what the exporter exposes: the one exposition parser, and lookups in families."""

from __future__ import annotations

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(body: str) -> Samples:
    """An exposition's samples: (sample name, sorted label items) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }



def registry_samples(families: dict[str, Metric]) -> Samples:
    """Every sample of collected families: (sample name, sorted label items) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families.values() for s in family.samples}


def value(fams: dict[str, Metric], sample: str, **labels: str) -> float | None:
    """The value of one sample (by its full name and exact labels), or None if absent."""
    for family in fams.values():
        for s in family.samples:
            if s.name == sample and s.labels == labels:
                return s.value
    return None


def series(fams: dict[str, Metric], sample: str) -> dict[tuple, float]:
    """Every sample of that name: sorted label items -> value."""
    return {tuple(sorted(s.labels.items())): s.value
            for family in fams.values() for s in family.samples if s.name == sample}
