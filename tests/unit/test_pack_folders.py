"""Every pack is one folder, found by listing the packs folder; a user's pack may be a file or a folder."""

from __future__ import annotations

import shutil

import pytest

from pipeline_exporter import demowriter, flags, packloader
from pipeline_exporter.cli import demo_parser
from pipeline_exporter.config import load_config
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin.cli import parser as mixin_parser
from tests.support.paths import REPO

PACKS = REPO / "pipeline_exporter" / "packs"
BUILT_IN = {"method333", "botflow", "crm", "scraper"}


def test_the_built_in_packs_are_the_folders_holding_a_pack_yaml():
    folders = {p.name for p in PACKS.iterdir() if (p / "pack.yaml").is_file()}
    assert folders >= BUILT_IN
    assert set(packloader.names()) == folders
    assert {p.name for p in PACKS.iterdir() if p.is_file()} == {"__init__.py"}, "a pack is a folder, not a file"


def test_a_new_folder_is_a_new_pack_and_nothing_lists_them_by_hand(tmp_path, monkeypatch):
    for name in ("crm", "method333"):
        shutil.copytree(PACKS / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PACKS / "crm", tmp_path / "crm2", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "notes").mkdir()  # a folder without pack.yaml is no pack
    monkeypatch.setattr(packloader, "PACKS_DIR", tmp_path)
    assert packloader.names() == ["crm", "crm2", "method333"]
    assert packloader.having("history.yaml") == ["method333"]
    assert load_config(None, {"packs": ["crm2"]}).parameter_specs["response_target_seconds"].type == "duration"


@pytest.mark.parametrize("pack", sorted(BUILT_IN))
def test_each_built_in_pack_folder_holds_its_queries_schema_and_demo(pack):
    folder = packloader.folder(pack)
    assert folder == PACKS / pack
    assert {p.name for p in (folder / "schema").iterdir()} == {"sqlite.sql", "postgresql.sql", "mysql.sql"}
    assert (folder / "demo.py").is_file()
    for dialect in ("sqlite", "postgresql", "mysql"):
        assert any(s.upper().startswith("CREATE TABLE") for s in demowriter.schema_statements(pack, dialect))
    assert load_config(None, {"packs": [pack]}).queries


def test_the_old_places_of_a_pack_are_gone():
    package = REPO / "pipeline_exporter"
    assert not (package / "schema").exists() and not (package / "demos").exists()
    assert not (package / "demo.py").exists() and not (PACKS / "history").exists()


def test_unknown_pack_names_the_known_ones():
    with pytest.raises(KeyError, match="known: botflow, crm, method333, scraper"):
        packloader.folder("nope")


def test_a_pack_folder_anywhere_loads_its_pack_and_history(tmp_path):
    mine = tmp_path / "packs" / "mine"
    shutil.copytree(PACKS / "method333", mine, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    config_path = tmp_path / "c.yml"
    config_path.write_text("packs: [./packs/mine]\n")
    from_folder = load_config(config_path)
    built_in = load_config(None, {"packs": ["method333"]})
    assert [q.name for q in from_folder.queries] == [q.name for q in built_in.queries]
    assert dict(from_folder.history) == dict(built_in.history) and from_folder.history
    assert from_folder.queries[0].origin == str(mine / "pack.yaml")
    by_flag = load_config(None, {"packs": [str(mine)]})  # --pack PATH, a folder
    assert dict(by_flag.history) == dict(built_in.history)


def test_a_pack_file_anywhere_still_works(tmp_path):
    (tmp_path / "x.yaml").write_text((PACKS / "crm" / "pack.yaml").read_text().replace("\nname: crm\n", "\nname: x\n"))
    (tmp_path / "c.yml").write_text("packs: [./x.yaml]\n")
    assert load_config(tmp_path / "c.yml").queries[0].origin == str(tmp_path / "x.yaml")
    assert load_config(None, {"packs": [str(tmp_path / "x.yaml")]}).queries


def test_a_folder_without_pack_yaml_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"packs": [str(tmp_path / "empty")]})
    assert str(caught.value) == f"{tmp_path / 'empty'}: a pack folder holds a pack.yaml, and this one has none"


def test_the_help_texts_name_the_packs_found():
    names = packloader.names()
    assert all(name in flags.run_parser().format_help() for name in names)
    demo_help = " ".join(demo_parser().format_help().split())
    assert all(name in demo_help for name in packloader.having("demo.py"))
    mixin_help = " ".join(mixin_parser().format_help().split())
    assert all(name in mixin_help for name in names if name != "method333")
