"""`pipeline-exporter mixin`: a user's own job name, URLs and budget give rules that work.

The rules are generated into a temporary folder and checked with the real promtool: accepted,
and evaluated by a small unit test written here against the generated files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.alerts.conftest import REPO, run


def generate(out: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline_exporter", "mixin", "--out", str(out), *args],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def promtool_test(promtool: str, folder: Path, tests: list[dict]) -> subprocess.CompletedProcess:
    """Run promtool unit tests against the rule files generated in ``folder``."""
    document = {"rule_files": [str(path) for path in sorted((folder / "alerts").glob("*.yml"))],
                "evaluation_interval": "1m", "tests": tests}
    path = folder / "unit-test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return run([promtool, "test", "rules", str(path)])


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    matchers = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{metric}{{{matchers}}}", "values": values}


def test_rules_for_another_job_select_that_job_only(promtool, tmp_path):
    generate(tmp_path, "--job", "my-pipeline")
    for path in (tmp_path / "alerts").glob("*.yml"):
        result = run([promtool, "check", "rules", str(path)])
        assert result.returncode == 0, result.stdout + result.stderr
    result = promtool_test(promtool, tmp_path, [{
        "name": "my-pipeline down, pipeline-exporter is another job",
        "interval": "1m",
        "input_series": [series("up", "0x10", job="my-pipeline", instance="a:9333"),
                         series("up", "0x10", job="pipeline-exporter", instance="b:9333")],
        "promql_expr_test": [{
            "expr": 'ALERTS{alertname="PipelineExporterDown", alertstate="firing"}',
            "eval_time": "6m",
            "exp_samples": [{"labels": 'ALERTS{alertname="PipelineExporterDown", alertstate="firing", '
                                       'instance="a:9333", job="my-pipeline", service="pipeline", '
                                       'severity="critical"}', "value": 1}]}]}])
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_budget_in_the_mixin_config_counts_where_the_exporter_reports_none(promtool, tmp_path):
    """--llm-budget 300: exporter a (no budget of its own) is over it; exporter b reports $1000."""
    generate(tmp_path, "--llm-budget", "300")
    a = {"job": "pipeline-exporter", "instance": "a:9333"}
    b = {"job": "pipeline-exporter", "instance": "b:9333"}
    result = promtool_test(promtool, tmp_path, [{
        "name": "the mixin's budget where the exporter has none",
        "interval": "1m",
        "input_series": [
            series("pipeline_exporter_build_info", "1x20", **a, version="1"),
            series("pipeline_exporter_build_info", "1x20", **b, version="1"),
            series("pipeline_llm_cost_usd_month_to_date", "350x20", **a, provider="openrouter"),
            series("pipeline_llm_cost_usd_month_to_date", "350x20", **b, provider="openrouter"),
            series("pipeline_llm_budget_usd", "1000x20", **b, provider="total"),
        ],
        "promql_expr_test": [
            {"expr": "provider:pipeline_llm_budget_usd:max", "eval_time": "10m",
             "exp_samples": [
                 {"labels": 'provider:pipeline_llm_budget_usd:max{job="pipeline-exporter", instance="a:9333", '
                            'provider="total"}', "value": 300},
                 {"labels": 'provider:pipeline_llm_budget_usd:max{job="pipeline-exporter", instance="b:9333", '
                            'provider="total"}', "value": 1000}]},
            {"expr": 'ALERTS{alertname="LlmBudgetExceeded", alertstate="firing"}', "eval_time": "10m",
             "exp_samples": [
                 {"labels": 'ALERTS{alertname="LlmBudgetExceeded", alertstate="firing", instance="a:9333", '
                            'job="pipeline-exporter", provider="total", service="pipeline", severity="critical"}',
                  "value": 1}]},
        ]}])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_committed_rules_have_no_budget_of_their_own():
    """Without --llm-budget, only the exporter's pipeline_llm_budget_usd is a budget."""
    rules = (REPO / "alerts" / "recording-rules.yml").read_text(encoding="utf-8")
    record = rules.split("record: provider:pipeline_llm_budget_usd:max", 1)[1]
    assert "pipeline_exporter_build_info" not in record


def test_a_packs_thresholds_come_from_the_config_and_the_exporter_config(promtool, tmp_path, monkeypatch):
    """`--pack botflow --config x.yml` and the exporter config's parameters reach botflow's rules,
    and only the pack's own files are written (the main ones are not rendered). The exporter config
    is one the exporter itself accepts: one parameter list per pack, its SQL's and its alerts'."""
    mixin_config = tmp_path / "mixin.yml"
    mixin_config.write_text("parameters: {error_rate: 0.3, min_conversations: 50}\n", encoding="utf-8")
    exporter_config = tmp_path / "exporter.yml"
    exporter_config.write_text("database_url: !env MIXIN_TEST_DB_URL\npacks: [botflow]\n"
                               "parameters: {handoff_rate: 0.4, active_window_seconds: 600}\n", encoding="utf-8")
    monkeypatch.setenv("MIXIN_TEST_DB_URL", f"sqlite:///{tmp_path / 'none.db'}")
    checked = subprocess.run([sys.executable, "-m", "pipeline_exporter", "--config.file", str(exporter_config),
                              "--config.check"], cwd=REPO, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    out = tmp_path / "out"
    generate(out, "--pack", "botflow", "--config", str(mixin_config), "--exporter-config", str(exporter_config))
    assert not (out / "alerts" / "pipeline-alerts.yml").exists()
    assert not (out / "grafana" / "dashboards").exists()
    rules = out / "alerts" / "packs" / "botflow"
    text = (rules / "botflow-alerts.yml").read_text(encoding="utf-8")
    assert 'outcome="failed"} > 0.3\n' in text and ">= 50\n" in text and 'outcome="handoff"} > 0.4\n' in text
    assert "> 0.1\n" not in text and ">= 20\n" in text          # min_messages keeps its default
    result = run([promtool, "check", "rules", *map(str, sorted(rules.glob("*.yml")))])
    assert result.returncode == 0, result.stdout + result.stderr
    board = (out / "grafana" / "packs" / "botflow" / "botflow-bot-performance.json").read_text(encoding="utf-8")
    assert board


def test_an_unknown_parameter_is_refused_naming_the_file(tmp_path):
    config = tmp_path / "mixin.yml"
    config.write_text("parameters: {eror_rate: 0.3}\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pipeline_exporter", "mixin", "--pack", "botflow",
                             "--config", str(config), "--out", str(tmp_path / "out")],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert str(config) in result.stderr and "eror_rate" in result.stderr and "Traceback" not in result.stderr


def test_the_exporter_refuses_an_alert_threshold_of_the_wrong_type_as_the_mixin_does(tmp_path):
    config = tmp_path / "exporter.yml"
    config.write_text("packs: [botflow]\nparameters: {handoff_rate: lots}\n", encoding="utf-8")
    for command in (["--config.file", str(config), "--config.check"],
                    ["mixin", "--pack", "botflow", "--exporter-config", str(config), "--out", str(tmp_path / "out")]):
        result = subprocess.run([sys.executable, "-m", "pipeline_exporter", *command],
                                cwd=REPO, capture_output=True, text=True, check=False)
        assert result.returncode == 2 and "parameters.handoff_rate: must be a number" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_pack_folder_outside_the_repository_renders_rules_promtool_accepts(promtool, tmp_path):
    """`mixin --pack DIR`: a user's own declarations, rendered for their job; promtool accepts them."""
    from tests.unit.test_mixin_render import ALERTS, DASHBOARD, write_pack

    folder = write_pack(tmp_path / "shop", ALERTS, DASHBOARD)
    out = tmp_path / "out"
    generate(out, "--pack", str(folder), "--job", "shop-exporter", "--llm-budget", "5")
    rules = sorted((out / "alerts" / "packs" / "shop").glob("*.yml"))
    assert [p.name for p in rules] == ["shop-alerts.yml", "shop-recording-rules.yml"]
    result = run([promtool, "check", "rules", *map(str, rules)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'shop_orders_stuck{job="shop-exporter"} > 50' in rules[0].read_text(encoding="utf-8")
    assert (out / "grafana" / "packs" / "shop" / "shop-home.json").exists()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "alerts/packs/shop/shop-alerts.yml", "alerts/packs/shop/shop-recording-rules.yml",
        "grafana/packs/shop/shop-home.json"]


def test_windows_set_to_the_same_span_render_rules_promtool_accepts(promtool, tmp_path):
    """windows.fast = windows.burst = 15m: the shared recording rules are written once, not twice."""
    config = tmp_path / "mixin.yml"
    config.write_text("windows: {fast: 15m}\n", encoding="utf-8")
    generate(tmp_path / "out", "--config", str(config))
    for path in sorted((tmp_path / "out" / "alerts").glob("*.yml")):
        result = run([promtool, "check", "rules", str(path)])
        assert result.returncode == 0 and "duplicate" not in result.stdout + result.stderr, result.stdout


def mixin_failure(tmp_path: Path, *args: str) -> str:
    """The one line a refused `mixin` run prints; nothing written."""
    result = subprocess.run([sys.executable, "-m", "pipeline_exporter", "mixin", "--out", str(tmp_path / "out"),
                             *args], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    return result.stderr.strip()


def test_a_negative_budget_or_a_rate_over_one_is_refused_naming_where_it_came_from(tmp_path):
    """Thresholds declare min/max (inclusive); an override outside is one line naming its file and key."""
    mixin_config = tmp_path / "mixin.yml"
    mixin_config.write_text("parameters: {llm_monthly_budget_usd: -5}\n", encoding="utf-8")
    assert mixin_failure(tmp_path, "--config", str(mixin_config)).endswith(
        f"{mixin_config}: parameters.llm_monthly_budget_usd: must be at least 0.01, got -5")
    # 0 would be taken as "no budget" by the rules' `if:`, so the budget's bound is a cent.
    assert mixin_failure(tmp_path, "--llm-budget", "0").endswith("--llm-budget: must be at least 0.01, got 0")
    exporter_config = tmp_path / "exporter.yml"
    exporter_config.write_text("packs: [botflow]\nparameters: {error_rate: 1.5}\n", encoding="utf-8")
    mixin_config.write_text("parameters: {min_conversations: 50}\n", encoding="utf-8")
    assert mixin_failure(tmp_path, "--pack", "botflow", "--config", str(mixin_config), "--exporter-config",
                         str(exporter_config)).endswith(
        f"{exporter_config}: parameters.error_rate: must be at most 1, got 1.5")


def test_a_bound_is_inclusive(tmp_path):
    mixin_config = tmp_path / "mixin.yml"
    mixin_config.write_text("parameters: {error_rate: 1, min_conversations: 0}\n", encoding="utf-8")
    generate(tmp_path, "--pack", "botflow", "--config", str(mixin_config))
    text = (tmp_path / "alerts" / "packs" / "botflow" / "botflow-alerts.yml").read_text(encoding="utf-8")
    assert 'outcome="failed"} > 1\n' in text and ">= 0\n" in text
