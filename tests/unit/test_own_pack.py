"""`pipeline-exporter mixin --pack PATH` for a pack file anywhere: derived declarations, rendered by
the one renderer, written as YAML that the renderer reads back to the same files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline_exporter.mixin import own
from pipeline_exporter.mixin.cli import main
from pipeline_exporter.mixin.config import DEFAULT, load
from pipeline_exporter.mixin.render import load_pack as load_declarations
from pipeline_exporter.mixin.render import render_pack
from tests.support.paths import REPO

EXAMPLE = REPO / "examples" / "ticket-desk" / "ticket_desk.yaml"
SMALL = """
name: {name}
queries:
  jobs:
    sql: SELECT state, COUNT(*) AS n FROM jobs GROUP BY state
    metrics:
      - {{name: {prefix}_jobs, type: gauge, help: Jobs by state., labels: [state], value: n}}
"""


def write_pack(folder: Path, name: str, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}.yaml"
    path.write_text(SMALL.format(name=name, prefix=prefix), encoding="utf-8")
    return path


def alert_names(text: str) -> set[str]:
    return {rule["alert"] for group in yaml.safe_load(text)["groups"] for rule in group["rules"]}


def test_a_pack_file_anywhere_gets_a_dashboard_rules_and_its_derived_declarations(tmp_path: Path, capsys) -> None:
    pack = shutil.copy(EXAMPLE, tmp_path / "mine.yaml")
    out = tmp_path / "out"
    assert main(["--pack", str(pack), "--job", "desk", "--out", str(out)]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["alerts/packs/ticket-desk/ticket-desk-alerts.yml",
                       "grafana/packs/ticket-desk/ticket-desk-overview.json",
                       "packs/ticket-desk/alerts.yaml",
                       "packs/ticket-desk/dashboards/ticket-desk-overview.yaml"]
    board = json.loads((out / written[1]).read_text(encoding="utf-8"))
    assert board["uid"] == "ticket-desk-overview"
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert exprs and all('job="desk"' in expr for expr in exprs) and "%{" not in json.dumps(board)
    assert alert_names((out / written[0]).read_text(encoding="utf-8")) == {
        "TicketDeskQueryFailing", "TicketDeskDataStale", "TicketDeskExporterDown"}
    # --check agrees with what was just written.
    assert main(["--pack", str(pack), "--job", "desk", "--out", str(out), "--check"]) == 0
    capsys.readouterr()


def test_the_derived_declarations_read_back_render_the_same_files(tmp_path: Path) -> None:
    pack = shutil.copy(EXAMPLE, tmp_path / "mine.yaml")
    files = {**own.derived_files([str(pack)])}
    for name, text in files.items():
        (tmp_path / "copy" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "copy" / name).write_text(text, encoding="utf-8")
    declared = load_declarations(tmp_path / "copy" / "packs" / "ticket-desk", "ticket-desk")
    # The headers name where each came from (the copy's folder, the pack file's); the rest is the same.
    copied, derived = render_pack(declared, DEFAULT), render_pack(own.load(str(pack)), DEFAULT)
    assert sorted(copied) == sorted(derived)
    for name in copied:
        assert without_header(copied[name]) == without_header(derived[name]), name
    head = " ".join(line.lstrip("# ") for line in copied["alerts/packs/ticket-desk/ticket-desk-alerts.yml"]
                    .splitlines()[:8])
    assert f"from {tmp_path}/copy/packs/ticket-desk/ " in head


def without_header(text: str) -> str:
    """A rendered file without the comment block that opens a rule file."""
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(lines)


def test_declared_alerts_beside_the_pack_win_and_the_dashboard_is_still_derived(tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "mine", "queue", "queue")
    (tmp_path / "mine" / "queue").mkdir()
    (tmp_path / "mine" / "queue" / "alerts.yaml").write_text(yaml.safe_dump({
        "format": 1, "title": "Queue", "groups": [{"name": "queue.alerts", "rules": [{
            "alert": "QueueJobsPiling", "severity": "warning", "expr": 'sum(queue_jobs{%{job}}) > 100\n',
            "for": "10m", "summary": "Jobs pile up.", "description": "{{ $value }} jobs.",
            "resolved": "Fewer jobs.", "dashboard": "queue-overview", "condition": "> 100 jobs"}]}]}),
        encoding="utf-8")
    files = render_pack(own.load(str(pack)), DEFAULT)
    assert alert_names(files["alerts/packs/queue/queue-alerts.yml"]) == {"QueueJobsPiling"}
    assert "grafana/packs/queue/queue-overview.json" in files
    assert set(own.derived_files([str(pack)])) == {"packs/queue/dashboards/queue-overview.yaml"}


def test_several_own_packs_at_once_never_share_a_uid_or_an_alert_name(tmp_path: Path, capsys) -> None:
    first = write_pack(tmp_path / "a", "job queue", "jobq")
    second = write_pack(tmp_path / "b", "Job-Queue " + "x" * 50, "jobx")
    out = tmp_path / "out"
    assert main(["--pack", str(first), "--pack", str(second), "--out", str(out)]) == 0
    boards = sorted(out.glob("grafana/packs/*/*.json"))
    uids = [json.loads(p.read_text(encoding="utf-8"))["uid"] for p in boards]
    assert len(set(uids)) == 2 and all(len(uid) <= 40 for uid in uids)
    names = [alert_names(p.read_text(encoding="utf-8")) for p in sorted(out.glob("alerts/packs/*/*-alerts.yml"))]
    assert len(names) == 2 and not names[0] & names[1]
    capsys.readouterr()


@pytest.mark.parametrize("bad, message", [
    ("missing/mine.yaml", "cannot read pack"),
    ("bad.yaml", "queries.q.metrics[0].type: must be one of"),
])
def test_a_bad_pack_file_is_one_line_and_exit_2(tmp_path: Path, capsys, bad: str, message: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nqueries:\n  q:\n    sql: SELECT 1 AS n\n    metrics:\n"
        "      - {name: bad_n, type: guage, help: N., value: n}\n", encoding="utf-8")
    assert main(["--pack", bad, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_derived_alerts_durations_are_parameters_a_mixin_config_overrides() -> None:
    config = load(None, {"query_failing_for": "30m", "exporter_down_for": "2m"}, job="desk")
    rules = yaml.safe_load(render_pack(own.load(str(EXAMPLE)), config)[
        "alerts/packs/ticket-desk/ticket-desk-alerts.yml"])["groups"][0]["rules"]
    assert {rule["alert"]: rule["for"] for rule in rules} == {
        "TicketDeskQueryFailing": "30m", "TicketDeskDataStale": "5m", "TicketDeskExporterDown": "2m"}
    assert all('job="desk"' in rule["expr"] for rule in rules)


def test_a_pack_folder_of_the_user_s_with_its_pack_yaml_works_like_its_file(tmp_path: Path) -> None:
    folder = tmp_path / "queue"
    write_pack(folder, "queue", "queue").rename(folder / "pack.yaml")
    assert own.is_own(str(folder)) and not own.is_own(str(tmp_path))
    files = render_pack(own.load(str(folder)), DEFAULT)
    assert set(files) == {"alerts/packs/queue/queue-alerts.yml", "grafana/packs/queue/queue-overview.json"}
    assert set(own.derived_files([str(folder)])) == {"packs/queue/alerts.yaml",
                                                     "packs/queue/dashboards/queue-overview.yaml"}


def test_a_pack_s_own_text_passes_the_placeholders_and_templates_untouched(tmp_path: Path) -> None:
    path = write_pack(tmp_path, "50%{off} {{shop}}", "shop")
    path.write_text(path.read_text(encoding="utf-8").replace("help: Jobs by state.", "help: 'Jobs, %{x} {{y}}.'"),
                    encoding="utf-8")
    files = render_pack(own.load(str(path)), DEFAULT)
    rules = yaml.safe_load(files["alerts/packs/50-off-shop/50-off-shop-alerts.yml"])["groups"][0]["rules"]
    assert {rule["labels"]["pack"] for rule in rules} == {"50%{off} { {shop} }"}
    board = json.loads(files["grafana/packs/50-off-shop/50-off-shop-overview.json"])
    # Grafana shows {{ as text: a dashboard keeps the user's words exactly, only alerts escape it.
    assert any("Jobs, %{x} {{y}}." in p.get("description", "") for p in board["panels"])
    assert board["title"] == "50%{off} {{shop}} (derived)" and "{ {" not in json.dumps(board)


def test_two_pack_files_in_one_folder_share_no_declaration(tmp_path: Path, capsys) -> None:
    first, second = write_pack(tmp_path, "queue", "queue"), write_pack(tmp_path, "jobs", "jobs")
    out = tmp_path / "out"
    assert main(["--pack", str(first), "--out", str(out)]) == 0
    # The derived files say where to put them, and read back from there, declared wins.
    derived = (out / "packs" / "queue" / "alerts.yaml").read_text(encoding="utf-8")
    assert f"into {tmp_path / 'queue'}/" in derived and "pack: queue\n" in derived
    (tmp_path / "alerts.yaml").write_text(derived, encoding="utf-8")  # in the shared folder: not queue's
    assert set(own.derived_files([str(first)])) == {"packs/queue/alerts.yaml",
                                                    "packs/queue/dashboards/queue-overview.yaml"}
    shutil.copytree(out / "packs" / "queue", tmp_path / "queue")
    assert set(own.derived_files([str(first)])) == set()
    assert set(own.derived_files([str(second)])) == {"packs/jobs/alerts.yaml",
                                                     "packs/jobs/dashboards/jobs-overview.yaml"}
    # jobs given queue's declarations: refused, naming both.
    shutil.copytree(tmp_path / "queue", tmp_path / "jobs")
    assert main(["--pack", str(second), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "declares pack 'queue'" in err and "is pack 'jobs'" in err and len(err.strip().splitlines()) == 1
