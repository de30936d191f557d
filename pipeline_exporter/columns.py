"""The result-column check of every run: a query returns each column its metrics read."""

from __future__ import annotations

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.model import QuerySpec


def check_columns(query: QuerySpec, columns: list[str]) -> None:
    """Raise a ConfigError when a query's result lacks a column its metrics (or its windows) read."""
    have = set(columns)
    if query.windows and query.windows.time not in have:
        raise ConfigError(query.origin, f"queries.{query.name}.windows.time",
                          f"the query does not return the time column {query.windows.time!r} "
                          f"(it returns: {', '.join(columns)})")
    if query.incremental:
        missing = sorted(query.incremental.columns() - have)
        if missing:
            raise ConfigError(query.origin, f"queries.{query.name}.incremental",
                              f"the incremental query does not return column(s) {', '.join(missing)} "
                              f"(it returns: {', '.join(columns)})")
    for i, metric in enumerate(query.metrics):
        missing = sorted(metric.columns() - have)
        if missing:
            raise ConfigError(query.origin, f"queries.{query.name}.metrics[{i}]",
                              f"metric {metric.name} reads column(s) {', '.join(missing)} that the query "
                              f"does not return (it returns: {', '.join(columns)})")
