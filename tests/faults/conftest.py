"""Fault injection against the real exporter process: real files, real SQLite writers, real signals."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipeline_exporter.packs.method333.demo import build_demo


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """A pristine 1,500-site demo database; tests copy it before touching it."""
    root = tmp_path_factory.mktemp("fault-demo")
    db = root / "sites.db"
    build_demo(db, sites=1500, seed=333, now=datetime.now(timezone.utc).replace(microsecond=0), files_dir=root)
    return db


@pytest.fixture(scope="session")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    import subprocess

    from tests.support.procs import require_binary

    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "server.key", folder / "server.crt"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return crt, key
