"""A per-day panel's own query, as rendered, on hand-made series in a real Prometheus (issue 21).

The cases the live test cannot stage: a label set first seen within the day, a Prometheus that
started today without a backfill, an exporter restarted after a prune, and an exporter whose
instance label changed (a redeployed pod) with both instances selected. The series are written
as OpenMetrics, made into blocks by promtool and loaded into a Prometheus (promtool's own rule
tests load samples only up to the evaluation time, so a negative offset sees nothing there). Day 1
is [B, B + 24h), day 2 is [B + 24h, B + 48h); the bar of a day is the query at its start (hourly
samples, values by the hour).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.dashboards.conftest import DASHBOARDS, panels_of
from tests.support.backfill import backfilled_prometheus

pytestmark = pytest.mark.e2e

DAY, HOUR = 86400, 3600
SERIES = 'pipeline_opt_outs_total{{job="pipeline-exporter",instance="{instance}",channel="{channel}"}}'
# (instance, channel) -> {hour: value}
INPUT = {
    # a: email counts one opt-out an hour both days; sms has its first opt-out at 30h, then one an hour.
    ("a", "email"): {h: h for h in range(49)},
    ("a", "sms"): {h: h - 29 for h in range(30, 49)},
    # b: a Prometheus started at 30h, without a backfill: the first sample holds every opt-out ever.
    ("b", "email"): {h: 1000 + h - 30 for h in range(30, 49)},
    # c: 100 opt-outs before day 1, one an hour; the exporter restarts at 30h after 80 rows were pruned.
    ("c", "email"): {h: 100 + h if h < 30 else 50 + h - 30 for h in range(49)},
    # d moves to e at 30h (a redeployed pod, a new port: a new instance label), both on one
    # database: e's first sample holds every opt-out ever, d's series ends at 29h.
    ("d", "email"): {h: h for h in range(30)},
    ("e", "email"): {h: h for h in range(30, 49)},
}


def opt_outs_per_day(instance: str) -> str:
    (panel,) = [p for p in panels_of(json.loads((DASHBOARDS / "pipeline-compliance.json").read_text()))
                if p["title"] == "Opt-outs per day"]
    return panel["targets"][0]["expr"].replace('instance=~"$instance"', f'instance=~"{instance}"')


def test_the_bar_of_a_day_on_new_series_a_fresh_prometheus_and_a_restart_after_a_prune(tmp_path: Path) -> None:
    base = (int(time.time()) // DAY - 3) * DAY
    lines = ["# TYPE pipeline_opt_outs counter"]
    for (instance, channel), values in INPUT.items():
        lines += [f"{SERIES.format(instance=instance, channel=channel)} {value} {base + hour * HOUR}"
                  for hour, value in sorted(values.items())]
    out = tmp_path / "series.om"
    out.write_text("\n".join(lines) + "\n# EOF\n")
    with backfilled_prometheus(out, tmp_path) as prom:
        def bars(instance: str, day: int) -> dict[str, float]:
            result = prom.api("/api/v1/query", query=opt_outs_per_day(instance), time=base + day * DAY)
            return {r["metric"]["channel"]: float(r["value"][1]) for r in result}

        # email: 48 - 24; sms: its 19 opt-outs of day 2, counted from 0 since the counter was there.
        assert bars("a", 1) == {"email": 24, "sms": 19}
        assert bars("a", 0) == {"email": 24}
        # No sample before day 2: no bar, rather than a bar of every opt-out ever.
        assert bars("b", 1) == {}
        # The counter came back 80 lower: day 2's bar is 24 - 80, day 1's is unmoved.
        assert bars("c", 1) == {"email": 24 - 80}
        assert bars("c", 0) == {"email": 24}
        # Both instances selected (the dashboard's "All"): each series is differenced before the sum,
        # so day 2 has d's 5 opt-outs until the move (e, new in the day, adds nothing rather than
        # its whole counter: a sum before the difference drew 53) and day 3 is not minus d's counter
        # (-29 that way): the move costs the moved-to instance's first day, nothing more.
        assert bars("d|e", 0) == {"email": 24}
        assert bars("d|e", 1) == {"email": 29 - 24}
        assert bars("d|e", 2) == {"email": 0}
