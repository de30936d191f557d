"""The scale suites' pipelines and rule copies."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import yaml

from tests.support.paths import REPO

EXAMPLES = REPO / "prometheus" / "examples"
NOW = datetime.now(timezone.utc).replace(microsecond=0)

# Two pipelines that differ in size and seed, so their numbers differ and a mix-up shows.
# The names are the ones prometheus/examples/multi-pipeline.yml gives its two targets.
PIPELINES = {"outreach-uk": {"sites": 1500, "seed": 11}, "outreach-us": {"sites": 2500, "seed": 29}}


def fast_recording_rules(tmp: Path) -> Path:
    """alerts/recording-rules.yml with every group evaluated each second (the outreach group's
    `interval: 1m` would otherwise delay its first sample by up to a minute)."""
    doc = yaml.safe_load((REPO / "alerts" / "recording-rules.yml").read_text(encoding="utf-8"))
    for group in doc["groups"]:
        group["interval"] = "1s"
    path = tmp / "recording-rules-1s.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
