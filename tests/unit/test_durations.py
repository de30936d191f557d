"""One duration parser for flags, the config file, packs and the mixin: Prometheus's syntax."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline_exporter import durations, flags
from pipeline_exporter.config import load_config
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin import config as mixin_config
from pipeline_exporter.mixin import render as render_mixin


@pytest.mark.parametrize("text,seconds", [
    ("500ms", 0.5), ("30s", 30), ("90s", 90), ("5m", 300), ("1m30s", 90), ("1h", 3600), ("1h30m", 5400),
    ("1d", 86400), ("1w", 604800), ("2w3d", 17 * 86400), ("1y", 365 * 86400), ("1h0m5s", 3605),
    ("1s500ms", 1.5), ("1.5h", 5400), ("0.5s", 0.5), ("90", 90), ("2.5", 2.5), (90, 90), (1.5, 1.5), (0, 0),
    ("0s", 0), (" 15m ", 900),
])
def test_prometheus_durations_and_seconds_are_read(text, seconds):
    assert durations.parse(text) == seconds


@pytest.mark.parametrize("value", [
    "soon", "", "1m1h", "30s1m", "1h 30m", "1.5m30s", "1x", "-5s", "1.", "nan", "inf", "1e3s", "s", "ms",
    True, None, [1], {"s": 1}, -1, math.nan, math.inf, -math.inf,
])
def test_anything_else_is_refused_with_the_forms_it_takes(value):
    with pytest.raises(ValueError, match="duration"):
        durations.parse(value)


def test_zero_passes_parse_but_not_parse_positive():
    assert durations.parse("0s") == 0
    with pytest.raises(ValueError, match="above zero"):
        durations.parse_positive("0s")


@pytest.mark.parametrize("text,ok", [("1m30s", True), ("6h", True), ("1.5h", False), ("90", False),
                                     ("0s", False), ("", False)])
def test_promql_durations_are_the_units_form_only(text, ok):
    if ok:
        assert durations.parse_promql(text) > 0
    else:
        with pytest.raises(ValueError):
            durations.parse_promql(text)


def test_a_flag_takes_a_prometheus_duration_and_refuses_garbage(capsys):
    assert flags.parse_run_flags(["--web.write-timeout", "1m30s"], environ={}).write_timeout == 90
    assert flags.parse_run_flags(["--web.write-timeout", "500ms"], environ={}).write_timeout == 0.5
    with pytest.raises(SystemExit):
        flags.parse_run_flags(["--web.write-timeout", "1m1h"], environ={})
    assert "must be a duration such as" in capsys.readouterr().err


def test_a_config_and_a_pack_take_a_prometheus_duration(tmp_path: Path):
    (tmp_path / "c.yml").write_text(
        "packs: []\ndefaults: {interval: 1m30s}\nchecks: {integrity_interval: 1h30m}\n"
        "queries:\n  q:\n    sql: SELECT 1 AS n\n    timeout: 1s500ms\n"
        "    metrics: [{name: demo_n, type: gauge, help: N., value: n}]\n")
    config = load_config(tmp_path / "c.yml")
    assert config.queries[0].interval == 90 and config.queries[0].timeout == 1.5
    assert config.checks.integrity_interval == 5400


def test_a_bad_duration_in_a_config_names_file_key_and_problem(tmp_path: Path):
    (tmp_path / "c.yml").write_text("checks: {size_interval: 1m1h}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "c.yml")
    assert str(caught.value).startswith(f"{tmp_path / 'c.yml'}: checks.size_interval: must be a duration such as")


def test_the_mixin_thresholds_take_prometheus_durations(tmp_path: Path):
    path = tmp_path / "m.yml"
    path.write_text("thresholds: {query_failing_for: 1m30s}\n")
    config = mixin_config.load(path)
    assert config.parameters["query_failing_for"] == "1m30s"
    assert "for: 1m30s" in render_mixin(config)["alerts/pipeline-alerts.yml"]
    assert mixin_config.seconds("1m30s") == 90
    path.write_text("thresholds: {query_failing_for: 1.5h}\n")
    with pytest.raises(ConfigError, match="parameters.query_failing_for: must be a Prometheus duration"):
        render_mixin(mixin_config.load(path))
