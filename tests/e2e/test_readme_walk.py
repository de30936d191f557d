"""The README's commands run as written, in order, in a folder of their own (issue 22): the packs'
demos and their exporters, `mixin`, the config check of its two YAML files, the backfill and
promtool. Left out: `make` (it installs; `make run` is the same `demo-db` and exporter), `docker
compose` (no engine here) and the pip install into a venv (tests/databases/test_wheel_with_extras.py
installs the same wheel). A command that serves gets a free port added: 9333 may be taken."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pipeline_exporter.packs.method333.demo import build_demo
from tests.support.paths import REPO
from tests.support.procs import free_port, require_binary, running, wait_for
from tests.support.readme import README, command_lines

ENV = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_EXPORTER_")}
BIN = str(Path(sys.executable).parent)  # pipeline-exporter is installed beside this Python
ENV["PATH"] = BIN + os.pathsep + ENV.get("PATH", "")


def readme_commands() -> list[list[str]]:
    """The README's runnable command lines (the `pipeline-exporter` and `promtool` ones), in order."""
    return [c for c in command_lines() if c[0] in ("pipeline-exporter", "promtool")]


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


def serves(argv: list[str]) -> bool:
    return argv[0] == "pipeline-exporter" and (len(argv) == 1 or argv[1] not in ("demo-db", "backfill", "mixin")) \
        and "--check-config" not in argv and "--config.check" not in argv and "--version" not in argv


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder with what `make run` leaves (a small demo/) and the README's mypack.yaml and config.yml."""
    root = tmp_path_factory.mktemp("readme")
    build_demo(root / "demo" / "db" / "sites.db", sites=500, files_dir=root / "demo")
    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S):
        first = block.splitlines()[0]
        if first in ("# mypack.yaml", "# config.yml"):
            (root / first[2:]).write_text(block, encoding="utf-8")
    assert (root / "mypack.yaml").exists() and (root / "config.yml").exists()
    # "Your own pack": `cp -r examples/ticket-desk ~/my-desk && cd ~/my-desk` and `python fill.py desk.db`
    shutil.copytree(REPO / "examples" / "ticket-desk", root, dirs_exist_ok=True)
    subprocess.run([sys.executable, "fill.py", "desk.db"], cwd=root, check=True, capture_output=True, timeout=120)
    return root


def test_the_readme_commands_run_as_written_in_order(folder, tmp_path):
    commands = readme_commands()
    assert len(commands) >= 10, commands
    for argv in commands:
        argv = [a.replace("NAME", "botflow").replace("DIR", str(tmp_path / "mixin")) for a in argv]
        shown = shlex.join(argv)
        if argv[0] == "promtool":
            argv[0] = require_binary("promtool")
        # a shell would expand the README's globs (promtool check rules out/alerts/packs/ticket-desk/*.yml)
        argv = [m for a in argv for m in (sorted(str(f) for f in folder.glob(a)) if "*" in a else [a])]
        if serves(argv):
            port = free_port()
            with running([*argv, "--web.listen-address", f"127.0.0.1:{port}"], tmp_path / "serve.log", ENV,
                         folder) as proc:
                def ready() -> bool:
                    assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                    status = requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=5).status_code
                    return status == 200
                wait_for(ready, timeout=60, what=f"{shown} to serve")
            continue
        done = run(argv, folder)
        assert done.returncode == 0, f"{shown}: exit {done.returncode}: {done.stderr[-1500:]}"
        assert "Traceback" not in done.stderr, shown
    assert (folder / "history.om").read_text(encoding="utf-8").endswith("# EOF\n")
    assert list((folder / "blocks").iterdir()), "promtool wrote blocks"
    assert list((tmp_path / "mixin").rglob("*.yml")), "mixin wrote rules"
