"""What the Docker image installs, in a fresh virtualenv: the wheel with its [postgresql,mysql]
extras reads PostgreSQL (through psycopg 3, psycopg2 absent) and MariaDB. There is no Docker
engine here, so the Dockerfile's own lines are checked statically and the same install is run."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.servers import Server

DOCKERFILE = REPO / "Dockerfile"


def test_the_dockerfile_installs_the_wheel_with_both_drivers():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^RUN pip wheel --no-deps --wheel-dir /wheels \.$", text, re.M)
    install = re.search(r'^RUN pip install --constraint /tmp/requirements\.lock '
                        r'"\$\(ls /wheels/pipeline_exporter-\*\.whl\)\[(.+?)\]"', text, re.M)
    assert install and set(install.group(1).split(",")) == {"postgresql", "mysql"}
    assert re.search(r"^COPY requirements\.lock /tmp/requirements\.lock$", text, re.M), "installs with the lock"
    assert re.search(r"^USER 10001:10001$", text, re.M), "the image runs as a non-root user"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the image builds."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels),
                    str(REPO)], check=True, capture_output=True, timeout=600)
    [built] = wheels.glob("pipeline_exporter-*.whl")
    return built


def test_the_wheel_carries_every_file_of_every_pack(wheel: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "pipeline_exporter/packs"], cwd=REPO, capture_output=True,
                             text=True, check=True, timeout=60).stdout.split()
    assert any(path.endswith("/pack.yaml") for path in tracked) and any("/schema/" in p for p in tracked)
    with zipfile.ZipFile(wheel) as archive:
        carried = set(archive.namelist())
    assert sorted(set(tracked) - carried) == []


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh virtualenv holding what the image installs: the built wheel with [postgresql,mysql]."""
    root = tmp_path_factory.mktemp("image")
    target = root / "venv"
    venv.create(target, with_pip=True)
    done = subprocess.run([str(target / "bin" / "pip"), "install", "--quiet", "--constraint",
                           str(REPO / "requirements.lock"), f"{wheel}[postgresql,mysql]"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def test_the_image_install_is_the_lock_and_says_its_licence(image_venv: Path) -> None:
    """What the image installs is exactly requirements.lock, and the wheel declares Apache-2.0."""
    listed = subprocess.run([str(image_venv / "bin" / "pip"), "list", "--format=freeze", "--exclude",
                             "pipeline-exporter", "--exclude", "pip", "--exclude", "setuptools"],
                            capture_output=True, text=True, timeout=120).stdout
    installed = {line.lower().replace("_", "-") for line in listed.split()}
    locked = {line.lower().replace("_", "-") for line in (REPO / "requirements.lock").read_text().split()
              if "==" in line}
    assert installed == locked
    meta = subprocess.run([str(image_venv / "bin" / "python"), "-c",
                           "import importlib.metadata as m; d = m.metadata('pipeline-exporter'); "
                           "print(d['License-Expression'], d.get_all('License-File'))"],
                          capture_output=True, text=True, timeout=120)
    assert meta.stdout.split() == ["Apache-2.0", "['LICENSE']"], meta.stderr


def test_the_image_install_reads_both_servers(image_venv: Path, server: Server, demo_database: str) -> None:
    listed = subprocess.run([str(image_venv / "bin" / "pip"), "list", "--format=freeze"], capture_output=True,
                            text=True, timeout=120).stdout.lower()
    assert "psycopg==" in listed and "psycopg2" not in listed and "pymysql==" in listed
    url = server.url(demo_database).replace("postgresql+psycopg://", "postgresql://").replace(
        "mysql+pymysql://", "mysql://")  # driverless, as a user writes it
    done = subprocess.run([str(image_venv / "bin" / "pipeline-exporter"), "--config.check", "--database.url", url],
                          capture_output=True, text=True, timeout=120, cwd=image_venv)
    assert done.returncode == 0, done.stderr[-2000:]
    # Every query of the default pack had its columns checked on the server (none left out).
    checked = re.search(r"configuration OK: (\d+) queries .*; columns checked for (\d+) against", done.stdout)
    assert checked and checked.group(1) == checked.group(2), done.stdout


def test_the_installed_wheel_finds_its_packs_and_writes_their_demos(image_venv: Path, tmp_path: Path) -> None:
    exporter = str(image_venv / "bin" / "pipeline-exporter")
    for pack in ("crm", "method333"):
        db = tmp_path / f"{pack}.db"
        args = ["--sites", "200"] if pack == "method333" else []
        written = subprocess.run([exporter, "demo-db", str(db), "--pack", pack, *args], capture_output=True,
                                 text=True, timeout=300, cwd=tmp_path)
        assert written.returncode == 0, written.stderr[-2000:]
        checked = subprocess.run([exporter, "--config.check", "--pack", pack, "--database.url", f"sqlite:///{db}"],
                                 capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert checked.returncode == 0 and "configuration OK" in checked.stdout, checked.stderr[-2000:]
