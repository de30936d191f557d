"""Metric names across every loaded pack: one query per metric, no name the exporter serves itself,
no two metrics putting the same sample name on the page."""

from __future__ import annotations

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.model import MetricSpec, QuerySpec

# Metric names the exporter itself serves: a pack may not take them.
RESERVED_PREFIX = "pipeline_exporter_"
BUILTIN_METRICS = frozenset({
    "pipeline_code_coverage_ratio", "pipeline_code_coverage_report_timestamp_seconds", "pipeline_e2e_tests",
    "pipeline_e2e_duration_seconds", "pipeline_e2e_report_timestamp_seconds", "pipeline_database_size_bytes",
    "pipeline_database_integrity_ok", "pipeline_host_cpu_utilization_ratio", "pipeline_host_memory_used_bytes",
    "pipeline_host_memory_total_bytes", "pipeline_host_disk_used_bytes", "pipeline_host_disk_total_bytes",
    "pipeline_llm_budget_usd"})


def sample_names(metric: MetricSpec) -> set[str]:
    """The sample names a metric puts on the page."""
    if metric.type == "histogram":
        return {f"{metric.name}_bucket", f"{metric.name}_count", f"{metric.name}_sum"}
    return {metric.name}


def check_metric_consistency(queries: list[QuerySpec]) -> None:
    """Each metric is fed by one query: two would each cap and aggregate on their own, and their
    series would overwrite each other. (UNION the rows in one query instead.) No metric takes a
    name the exporter serves itself, and no two metrics put the same sample name on the page, or a
    histogram's name beside another metric's (``x`` histogram beside ``x_total`` counter)."""
    seen: dict[str, QuerySpec] = {}
    samples: dict[str, str] = {}
    families: dict[str, MetricSpec] = {}
    for query in queries:
        for i, metric in enumerate(query.metrics):
            where = f"queries.{query.name}.metrics[{i}].name"
            if metric.name in seen and seen[metric.name].name != query.name:
                raise ConfigError(query.origin, f"queries.{query.name}.metrics[{i}]",
                                  f"metric {metric.name} is already fed by query {seen[metric.name].name}; "
                                  "a metric comes from one query (UNION the rows there)")
            seen[metric.name] = query
            if metric.name.startswith(RESERVED_PREFIX) or metric.name in BUILTIN_METRICS:
                raise ConfigError(query.origin, where, f"{metric.name} is a name the exporter serves itself")
            for sample in sample_names(metric):
                if sample in samples and samples[sample] != metric.name:
                    raise ConfigError(query.origin, where, f"{metric.name} would put {sample} on the page, "
                                      f"as {samples[sample]} does")
                samples[sample] = metric.name
            family = metric.name.removesuffix("_total") if metric.type == "counter" else metric.name
            other = families.get(family)
            if other is not None and other.name != metric.name:
                why = ("one is a histogram: the page would be invalid" if "histogram" in (other.type, metric.type)
                       else "OpenMetrics names both so (metrics.md, Version 3: no gauge x beside a counter x_total)")
                raise ConfigError(query.origin, where, f"{metric.name} and {other.name} are both the family "
                                  f"{family}; {why}")
            families.setdefault(family, metric)
    for sample, name in samples.items():  # a histogram's samples beside a metric of that very name
        if sample in families and families[sample].name != name and families[sample].type != "counter":
            query = seen[name]
            raise ConfigError(query.origin, f"queries.{query.name}", f"{name} would put {sample} on the page, "
                              f"the name of {families[sample].name}")
