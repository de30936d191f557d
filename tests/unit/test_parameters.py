"""Typed pack parameters: declared or inferred types, every value checked at start; no NaN, ever."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline_exporter.cli import main
from pipeline_exporter.config import load_config
from pipeline_exporter.errors import ConfigError
from tests.support.exposition import series
from tests.support.sqlite import scrape

PACK = """\
name: mine
parameters:
  stuck_after: {type: duration, default: 1d, min: 1s, help: A site in one status longer than this is stuck.}
  budget_usd: {type: number, default: 500, min: 0}
  top: {type: integer, default: 3, min: 1, max: 10}
  word: {type: string, default: found}
  statuses: {type: list, default: [found, scraped]}
  bare_int: 42
  bare_number: 0.25
  bare_string: hello
  bare_list: [1, 2]
queries:
  q:
    sql: SELECT 1 AS n
    metrics: [{name: demo_n, type: gauge, help: N., value: n}]
"""


def write(tmp_path: Path, pack: str = PACK, config: str = "") -> Path:
    (tmp_path / "mine.yaml").write_text(pack)
    path = tmp_path / "c.yml"
    path.write_text("packs: [./mine.yaml]\n" + textwrap.dedent(config))
    return path


def test_declared_and_bare_parameters_are_read_with_their_types(tmp_path):
    config = load_config(write(tmp_path))
    assert dict(config.parameters) == {
        "stuck_after": 86400, "budget_usd": 500, "top": 3, "word": "found", "statuses": ["found", "scraped"],
        "bare_int": 42, "bare_number": 0.25, "bare_string": "hello", "bare_list": [1, 2]}
    types = {name: spec.type for name, spec in config.parameter_specs.items()}
    assert types == {"stuck_after": "duration", "budget_usd": "number", "top": "integer", "word": "string",
                     "statuses": "list", "bare_int": "integer", "bare_number": "number", "bare_string": "string",
                     "bare_list": "list"}
    assert config.parameter_specs["stuck_after"].help == "A site in one status longer than this is stuck."


def test_every_built_in_pack_declares_a_type_and_help_for_each_parameter():
    for pack in ("method333", "botflow", "crm", "scraper"):
        specs = load_config(None, {"packs": [pack]}).parameter_specs
        assert specs, pack
        assert all(spec.help for spec in specs.values()), pack
    method333 = load_config(None, {"packs": ["method333"]})
    assert method333.parameter_specs["stuck_threshold_seconds"].type == "duration"
    assert method333.parameters["stuck_threshold_seconds"] == 86400  # bound as whole seconds, as before


@pytest.mark.parametrize("override,bound", [
    ("12h", 43200), ("1m30s", 90), (3600, 3600), (1.5, 1.5), ("'90'", 90)])
def test_a_duration_override_takes_prometheus_durations_and_binds_seconds(tmp_path, override, bound):
    path = write(tmp_path, config=f"parameters: {{stuck_after: {override}}}\n")
    assert load_config(path).parameters["stuck_after"] == bound


@pytest.mark.parametrize("parameter,value,problem", [
    ("stuck_after", ".nan", "must be a finite duration"),
    ("stuck_after", "abc", "must be a duration such as"),
    ("stuck_after", "[1, 2]", "must be a duration such as"),
    ("stuck_after", "-5", "must be a finite duration of 0 or more seconds, got -5"),
    ("budget_usd", ".nan", "must be a finite number, got nan"),
    ("budget_usd", ".inf", "must be a finite number, got inf"),
    ("budget_usd", "-.inf", "must be a finite number"),
    ("budget_usd", "lots", "must be a number, got a string"),
    ("budget_usd", "true", "must be a number, got a boolean"),
    ("budget_usd", "[1]", "must be a number, got a list"),
    ("top", "1.5", "must be an integer, got 1.5"),
    ("word", "7", "must be a string, got int"),
    ("statuses", "found", "must be a non-empty list, got a string"),
    ("statuses", "[]", "must be a non-empty list"),
    ("statuses", "[.nan]", "item 0 must be a finite number"),
    ("statuses", "[[a]]", "item 0 must be a number or a string, got a list"),
    ("bare_int", "2.5", "must be an integer"),
    ("bare_number", ".nan", "must be a finite number"),
    ("bare_number", "", "needs a value"),
    ("budget_usd", "-1", "must be at least 0, got -1"),
    ("top", "0", "must be at least 1, got 0"),
    ("top", "11", "must be at most 10, got 11"),
    ("stuck_after", "0.5", "must be at least 1s, got 0.5"),
])
def test_an_override_of_the_wrong_type_names_file_key_and_problem(tmp_path, parameter, value, problem):
    path = write(tmp_path, config=f"parameters:\n  {parameter}: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: parameters.{parameter}: {problem}")


@pytest.mark.parametrize("declaration,key,problem", [
    ("x: .nan", "parameters.x", "must be a finite number, got nan"),
    ("x: .inf", "parameters.x", "must be a finite number, got inf"),
    ("x: true", "parameters.x", "true/false is not a parameter type"),
    ("x:", "parameters.x", "needs a value"),
    ("x: {type: duration, default: soon}", "parameters.x.default", "must be a duration such as"),
    ("x: {type: number, default: .nan}", "parameters.x.default", "must be a finite number"),
    ("x: {type: integer, default: 2.5}", "parameters.x.default", "must be an integer"),
    ("x: {type: number}", "parameters.x.default", "is required"),
    ("x: {type: float, default: 1}", "parameters.x.type", "must be one of number, integer, duration, string, list"),
    ("x: {default: 1}", "parameters.x.type", "is required"),
    ("x: {type: number, default: 1, unit: usd}", "parameters.x.unit", "unknown key"),
    ("now: 1", "parameters.now", "parameter names are identifiers other than now"),
    ("x: {type: number, default: -1, min: 0}", "parameters.x.default", "must be at least 0, got -1"),
    ("x: {type: integer, default: 5, max: 4}", "parameters.x.default", "must be at most 4, got 5"),
    ("x: {type: number, default: 1, min: 2, max: 1}", "parameters.x.max", "must be at least min (2), got 1"),
    ("x: {type: number, default: 1, min: low}", "parameters.x.min", "must be a number, got a string"),
    ("x: {type: string, default: a, min: 0}", "parameters.x.min", "only a number, integer, duration parameter"),
])
def test_a_pack_parameter_of_the_wrong_type_is_refused_at_start(tmp_path, declaration, key, problem):
    pack = PACK.replace("parameters:\n", f"parameters:\n  {declaration}\n", 1)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, pack))
    assert str(caught.value).startswith(f"{tmp_path / 'mine.yaml'}: {key}: {problem}")


def test_config_check_refuses_a_nan_parameter_in_one_line_with_exit_2(tmp_path, capsys):
    path = tmp_path / "c.yml"
    path.write_text("parameters: {stuck_threshold_seconds: .nan}\n")
    code = main(["--config.file", str(path), "--config.check", "--database-url", f"sqlite:///{tmp_path}/none.db"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{path}: parameters.stuck_threshold_seconds: must be a finite duration" in err


def test_bounds_are_inclusive(tmp_path):
    path = write(tmp_path, config="parameters: {budget_usd: 0, top: 10, stuck_after: 1s}\n")
    parameters = load_config(path).parameters
    assert (parameters["budget_usd"], parameters["top"], parameters["stuck_after"]) == (0, 10, 1)


def test_config_check_refuses_a_negative_threshold_of_a_built_in_pack(tmp_path, capsys):
    path = tmp_path / "c.yml"
    path.write_text("packs: [crm]\nparameters: {monthly_revenue_target_usd: -5}\n")
    code = main(["--config.file", str(path), "--config.check", "--database-url", f"sqlite:///{tmp_path}/none.db"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{path}: parameters.monthly_revenue_target_usd: must be at least 0, got -5" in err


@pytest.mark.parametrize("budget", [".nan", ".inf", "{openrouter: .nan}", "{openrouter: .inf}"])
def test_the_llm_budget_can_never_be_nan_or_infinite(tmp_path, budget):
    path = tmp_path / "c.yml"
    path.write_text(f"llm_monthly_budget_usd: {budget}\n")
    with pytest.raises(ConfigError, match=r"llm_monthly_budget_usd(\.openrouter)?: must be a finite number"):
        load_config(path)


def test_typed_parameters_reach_the_sql_a_list_expanding_for_in(make_db, tmp_path):
    db = make_db({"sites": [{"domain": f"s{i}.example", "status": status}
                            for i, status in enumerate(["found", "scraped", "scraped", "sold", "replied"])]})
    pack = """\
    name: mine
    parameters:
      statuses: {type: list, default: [found, scraped]}
      long_ago: {type: duration, default: 1h}
    queries:
      listed:
        sql: SELECT COUNT(*) AS n, :long_ago AS s FROM sites WHERE status IN :statuses
        metrics:
          - {name: demo_listed_sites, type: gauge, help: Sites in the listed statuses., value: n}
          - {name: demo_long_ago_seconds, type: gauge, help: The duration parameter., value: s}
    """
    (tmp_path / "mine.yaml").write_text(textwrap.dedent(pack))
    config = tmp_path / "c.yml"
    config.write_text("packs: [./mine.yaml]\nparameters: {statuses: [sold, replied, found], long_ago: 1m30s}\n")
    fams = scrape(db, config)
    assert series(fams, "demo_listed_sites") == {(): 3}
    assert series(fams, "demo_long_ago_seconds") == {(): 90}
