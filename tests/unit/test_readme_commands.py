"""The README's commands are real: every ``pipeline-exporter`` command line in it parses with the
CLI's own parsers, every flag its tables document exists with that environment variable and
default, and every ``make`` target it names is in the Makefile (issue 22: the front door works)."""

from __future__ import annotations

import argparse
import re

import pytest

from pipeline_exporter import backfill, cli, flags
from pipeline_exporter.mixin import cli as mixin_cli
from tests.support.paths import REPO
from tests.support.readme import README, command_lines

PARSERS = {"demo-db": cli.demo_parser, "backfill": backfill.parser, "mixin": mixin_cli.parser}


def exporter_commands() -> list[list[str]]:
    return [c[1:] for c in command_lines() if c[0] == "pipeline-exporter"]


def test_the_readme_has_the_commands_a_newcomer_runs():
    found = exporter_commands()
    subcommands = {c[0] for c in found if c and c[0] in PARSERS}
    assert subcommands == set(PARSERS), subcommands
    assert any(c[:1] == ["--database.url"] or "--database.url" in c for c in found if c and c[0] not in PARSERS)
    assert any(c == [".", ".venv/bin/activate"] for c in command_lines()), "the README says to activate .venv"


@pytest.mark.parametrize("argv", exporter_commands(), ids=lambda argv: " ".join(argv)[:60])
def test_every_pipeline_exporter_command_in_the_readme_parses(argv, capsys):
    try:
        if argv and argv[0] in PARSERS:
            PARSERS[argv[0]]().parse_args(argv[1:])
        else:
            flags.parse_run_flags([a for a in argv if a != "--version"], environ={})
    except SystemExit as exc:
        pytest.fail(f"pipeline-exporter {' '.join(argv)}: refused ({exc.code}): {capsys.readouterr().err}")


def test_every_make_target_in_the_readme_exists():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.M))
    named = {c[1] for c in command_lines() if c[0] == "make" and len(c) > 1 and "=" not in c[1]}
    named |= set(re.findall(r"`make ([a-z][\w-]*)", README))
    assert named and named <= targets, named - targets
    assert re.search(r"^LISTEN \?= 127\.0\.0\.1:9333$", makefile, flags=re.M), "make run serves this machine only"


def table_rows(after: str) -> list[list[str]]:
    """The cells of the first flag table (``| flag |`` header) after the text ``after``."""
    section = README[README.index(after):]
    section = section[section.index("\n| flag |") + 1:]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions for name in action.option_strings}


def test_the_exporter_flag_table_is_the_flags():
    rows = table_rows("Flags follow Prometheus's style")
    by_name = {f"--{flag.name}": flag for flag in flags.FLAGS}
    known = option_strings(flags.run_parser())
    documented = set()
    for first, env, default, _meaning in rows:
        names = re.findall(r"`(--[\w.-]+)`", first)
        assert names and set(names) <= known, (names, known)
        documented.update(names)
        flag = by_name.get(names[0])
        if flag is None:
            assert names == ["--version"]
            continue
        assert env == f"`{flag.env}`", (names[0], env)
        shown = "" if flag.default in (None, False) else f"`{flag.default}`"
        if flag.boolean:
            assert default in ("off", "on"), default
        else:
            assert default == shown, (names[0], default, shown)
    assert set(by_name) <= documented, set(by_name) - documented


def test_the_backfill_and_demo_db_flags_in_the_readme_exist():
    rows = table_rows("## History backfill")
    backfill_flags = {name for row in rows for name in re.findall(r"`(--[\w.-]+)`", row[0])}
    assert {"--out", "--days", "--step", "--database.url"} <= backfill_flags
    assert backfill_flags <= option_strings(backfill.parser()), backfill_flags - option_strings(backfill.parser())
    synopsis = re.search(r"`pipeline-exporter demo-db PATH ([^`]+)`", README)
    assert synopsis is not None
    demo_flags = set(re.findall(r"--[\w.-]+", synopsis.group(1))) | {"--database.url"}
    assert demo_flags <= option_strings(cli.demo_parser())
