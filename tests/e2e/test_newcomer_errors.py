"""What a newcomer gets wrong, the real command line says in one line on stderr, exits 2, and shows no
secret (issue 22): each case runs ``python -m pipeline_exporter`` as a process with a password planted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from pipeline_exporter.packloader import names as builtin_pack_names
from tests.support.pki import CertificateAuthority
from tests.support.procs import free_port, require_binary

SECRET = "S3CRETPART"
CLI = [sys.executable, "-m", "pipeline_exporter"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI with no PIPELINE_EXPORTER_* of the caller's environment, bounded in time."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_EXPORTER_")}
    return subprocess.run([*CLI, *args], cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=120)


def one_line_failure(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr holding ``words`` and no secret."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_demo_db_with_an_unreachable_server(tmp_path, scheme):
    closed = free_port()  # nothing listens there
    result = run("demo-db", "--database.url", f"{scheme}://user:{SECRET}@127.0.0.1:{closed}/pipeline",
                 "--sites", "10", cwd=tmp_path)
    line = one_line_failure(result, "cannot fill", f"{scheme}://user:***@127.0.0.1:{closed}/pipeline")
    assert "OperationalError" in line


@pytest.mark.parametrize(("url", "words"), [
    ("sqlite:///demo.db", ("for SQLite give the file", "demo-db PATH")),
    ("oracle://user:{secret}@db/x", ("'oracle' is not a database demo-db fills",)),
    ("no url at all", ("not a valid URL",)),
])
def test_demo_db_with_a_sqlite_or_unknown_url(tmp_path, url, words):
    one_line_failure(run("demo-db", "--database.url", url.format(secret=SECRET), cwd=tmp_path), *words)
    assert not (tmp_path / "demo.db").exists()


def test_backfill_into_a_closed_pipe_ends_quietly(tmp_path, demo):
    proc = subprocess.Popen([*CLI, "backfill", "--out", "-", "--database.url", f"sqlite:///{demo['db']}",
                             "--instance", "exporter:9333", "--days", "7", "--step", "1m"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"# ")  # `| head -1`: one line read, then the pipe closes
        proc.stdout.close()
        code = proc.wait(timeout=120)
        stderr = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert code == 0, stderr
    # Quiet about the pipe: what stderr may hold is the backfill's own notes on windows it cannot write.
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Errno" not in stderr, stderr
    assert all("not backfilled" in line for line in stderr.splitlines()), stderr


@pytest.mark.parametrize("command", [["--config.check"], ["backfill", "--out", "x.om"], ["demo-db", "--sites", "5"]])
def test_a_database_url_with_a_port_that_is_no_number(tmp_path, command):
    url = f"postgresql://user:{SECRET}@db.example:5432x/pipeline"
    one_line_failure(run(*command, "--database.url", url, cwd=tmp_path), "URL", "the port, if any, a number")


def web_config_check(tmp_path: Path, text: str | bytes) -> subprocess.CompletedProcess[str]:
    web = tmp_path / "web.yml"
    if isinstance(text, bytes):
        web.write_bytes(text)
    else:
        web.write_text(text, encoding="utf-8")
    return run("--web.config.file", str(web), "--config.check", cwd=tmp_path)


def test_a_version_0_bcrypt_hash(tmp_path):
    hashed = "$2$" + bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(rounds=4)).decode()[4:]
    line = one_line_failure(web_config_check(tmp_path, f'basic_auth_users:\n  prometheus: "{hashed}"\n'),
                            "web.yml: basic_auth_users.prometheus:", "$2$", "$2b$")
    assert hashed not in line


@pytest.mark.parametrize("flag", ["--config.file", "--web.config.file"])
def test_a_config_file_that_is_not_utf8(tmp_path, flag):
    path = tmp_path / "latin1.yml"
    path.write_bytes(f"# caf\xe9 {SECRET}\npacks: [method333]\n".encode("latin-1"))
    one_line_failure(run(flag, str(path), "--config.check", cwd=tmp_path), "latin1.yml: line 1:", "not UTF-8")


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_port_above_65535(tmp_path, how):
    if how == "flag":
        result = run("--web.listen-address", ":70000", cwd=tmp_path)
    else:
        result = run(cwd=tmp_path, env={"PIPELINE_EXPORTER_WEB_LISTEN_ADDRESS": "127.0.0.1:99999"})
    one_line_failure(result, "port must be 0..65535")


@pytest.mark.parametrize(("command", "typo", "meant"), [
    ([], "--web.listen-adress", "--web.listen-address"),
    (["demo-db", "x.db"], "--site", "--sites"),
    (["backfill", "--out", "x.om"], "--databse.url", "--database.url"),
])
def test_a_misspelt_flag_is_one_line_and_a_pointer_to_help(tmp_path, command, typo, meant):
    line = one_line_failure(run(*command, typo, "1", cwd=tmp_path), typo, f"did you mean {meant}?", "--help")
    assert "usage:" not in line


def test_an_unknown_pack_lists_the_known_ones(tmp_path):
    line = one_line_failure(run("--pack", "nope", "--config.check", cwd=tmp_path), "'nope'")
    for name in builtin_pack_names():
        assert name in line


def test_demo_db_speaks_of_the_force_flag(tmp_path):
    (tmp_path / "sites.db").write_bytes(b"the real pipeline")
    line = one_line_failure(run("demo-db", "sites.db", "--sites", "5", cwd=tmp_path), "--force", "already exists")
    assert "force=True" not in line
    assert (tmp_path / "sites.db").read_bytes() == b"the real pipeline"


@pytest.mark.parametrize("spelling", ["--database.url", "--database-url"])
def test_subcommands_take_both_spellings_of_the_database_url(tmp_path, demo, spelling):
    out = tmp_path / "history.om"
    done = run("backfill", "--out", str(out), spelling, f"sqlite:///{demo['db']}", "--instance", "e:9333",
               "--days", "1", "--step", "1h", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").endswith("# EOF\n")
    closed = free_port()
    # Parsed, not refused as an unknown flag: demo-db goes as far as the (absent) server.
    one_line_failure(run("demo-db", spelling, f"postgresql://u:{SECRET}@127.0.0.1:{closed}/x", cwd=tmp_path),
                     "cannot fill")


def test_a_misspelt_web_config_key_is_an_unknown_key(tmp_path):
    line = one_line_failure(web_config_check(tmp_path, "tls_server_config:\n  cert_fle: a.crt\n  key_file: a.key\n"),
                            "tls_server_config.cert_fle: unknown key", "did you mean cert_file?")
    assert "is required" not in line


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    require_binary("openssl")
    folder = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(folder)
    cert, key = ca.server("server")
    _, other_key = ca.server("other")
    encrypted = folder / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-aes256", "-passout", f"pass:{SECRET}", "-out",
                    str(encrypted)], check=True, capture_output=True, timeout=60)
    garbage = folder / "garbage.pem"
    garbage.write_text(f"not a certificate {SECRET}\n")
    return {"cert": cert, "key": key, "other_key": other_key, "encrypted": encrypted, "garbage": garbage}


@pytest.mark.parametrize(("cert", "key", "field", "words"), [
    ("garbage", "key", "cert_file", "garbage.pem holds no PEM certificate"),
    ("cert", "garbage", "key_file", "garbage.pem holds no PEM private key"),
    ("cert", "other_key", "key_file", "other.key is not the private key of the certificate in"),
    ("cert", "encrypted", "key_file", "encrypted.key is encrypted with a passphrase"),
])
def test_a_bad_certificate_names_the_file_and_the_problem(tmp_path, pki, cert, key, field, words):
    text = f"tls_server_config:\n  cert_file: {pki[cert]}\n  key_file: {pki[key]}\n"
    line = one_line_failure(web_config_check(tmp_path, text), f"tls_server_config.{field}:", words)
    assert "PEM lib" not in line and "_ssl.c" not in line


def test_config_check_without_a_database_says_the_columns_were_not_checked(tmp_path):
    result = run("--config.check", cwd=tmp_path)  # the default sqlite:///db/sites.db is not there
    assert result.returncode == 0, result.stderr  # the config itself is valid
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert "columns NOT checked" in lines[0] and "did not answer" in lines[0]
    assert not (tmp_path / "db").exists()  # read-only: the check created nothing


def test_mixin_with_a_misspelt_flag(tmp_path):
    """The mixin's flags fail as the exporter's do: one line, a close name, no usage block."""
    line = one_line_failure(run("mixin", "--out", str(tmp_path / "out"), "--grafana-ur", "http://g", cwd=tmp_path),
                            "--grafana-ur", "did you mean --grafana-url?", "see pipeline-exporter mixin --help")
    assert not line.startswith("usage:")
    assert not (tmp_path / "out").exists()


def test_a_pack_file_that_is_not_utf8(tmp_path):
    pack = tmp_path / "pack.yaml"
    pack.write_bytes("name: shop\n# caf\u00e9\n".encode("latin-1"))
    line = one_line_failure(run("mixin", "--pack", str(pack), "--out", str(tmp_path / "out"), cwd=tmp_path),
                            str(pack), "line 2", "not UTF-8")
    assert "pack" in line
