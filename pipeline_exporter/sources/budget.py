"""The monthly LLM budget from the config, beside the month-to-date cost the pack computes."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline_exporter.model import Job, JobInfo, MetricData


def budget_job(budget: Mapping[str, float]) -> Job:
    """``pipeline_llm_budget_usd{provider}``: constant until the config changes."""
    data = [MetricData.gauge("pipeline_llm_budget_usd",
                             "Monthly LLM budget in US dollars from the exporter's config, by provider "
                             "(total: all together).", ("provider",),
                             {(provider,): float(usd) for provider, usd in budget.items()})]
    return Job(JobInfo("llm_budget", "config", 300.0, 900.0), lambda _now: data)
