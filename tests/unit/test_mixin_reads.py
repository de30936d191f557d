"""`pipeline-exporter mixin` reads each built-in pack's YAML once per run, with libyaml's parser
where PyYAML has it, and names each rendered file's real source in its header."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import yaml

from pipeline_exporter import validation
from pipeline_exporter.mixin import cli
from pipeline_exporter.mixin.render import PACKS_DIR
from pipeline_exporter.mixin.render import format as fmt
from tests.unit.test_mixin_render import ALERTS, DASHBOARD, write_pack

# The package, not the function `pipeline_exporter.mixin.render` its __init__ exports.
render = importlib.import_module("pipeline_exporter.mixin.render")


def test_one_run_reads_each_declaration_file_once(tmp_path, monkeypatch):
    reads: Counter[Path] = Counter()

    def counting(path: Path) -> dict:
        reads[path] += 1
        return fmt.read(path)

    monkeypatch.setattr(render, "read", counting)
    render._builtin.cache_clear()
    try:
        assert cli.main(["--out", str(tmp_path)]) == 0
    finally:
        render._builtin.cache_clear()
    assert reads and max(reads.values()) == 1, {str(p): n for p, n in reads.items() if n > 1}
    assert (PACKS_DIR / "botflow" / "alerts.yaml") in reads


def test_the_fast_yaml_parser_reads_every_pack_file_as_the_exact_one_does():
    """The cheap check beside the fast path: libyaml and the pure-Python parser agree on every file."""
    if yaml.__with_libyaml__:
        assert validation.SafeLoader is yaml.CSafeLoader
    files = sorted(PACKS_DIR.rglob("*.yaml"))
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert validation.safe_load(text) == yaml.safe_load(text), path


def test_a_users_pack_header_names_the_users_folder(tmp_path):
    folder = write_pack(tmp_path / "shop", ALERTS, DASHBOARD)
    files = render.render_pack(render.load_pack(folder))
    head = " ".join(line.lstrip("# ") for line in files["alerts/packs/shop/shop-alerts.yml"].splitlines()[:12])
    assert f"from {folder}/ " in head
    assert "pipeline_exporter/packs/shop" not in head


def test_a_built_in_packs_header_names_its_folder_in_the_package():
    files = render.render_pack(render.packs()["botflow"])
    head = " ".join(line.lstrip("# ") for line in files["alerts/packs/botflow/botflow-alerts.yml"].splitlines()[:12])
    assert "from pipeline_exporter/packs/botflow/ " in head
