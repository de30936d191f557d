"""A throwaway certificate authority made with the openssl CLI: server and client certificates."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.procs import require_binary


class CertificateAuthority:
    """``server(name)`` and ``client(name)`` return (certificate, key) paths signed by this CA."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.openssl = require_binary("openssl")
        self.cert, self.key = folder / "ca.crt", folder / "ca.key"
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(self.key),
                  "-out", str(self.cert), "-subj", "/CN=pipeline-exporter test CA")

    def _run(self, *args: str) -> None:
        subprocess.run([self.openssl, *args], check=True, capture_output=True, timeout=60, cwd=self.folder)

    def _signed(self, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
        key, csr, cert = self.folder / f"{name}.key", self.folder / f"{name}.csr", self.folder / f"{name}.crt"
        ext = self.folder / f"{name}.ext"
        ext.write_text(extensions)
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject)
        self._run("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                  "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext))
        return cert, key

    def server(self, name: str) -> tuple[Path, Path]:
        return self._signed(name, "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                                   "extendedKeyUsage=serverAuth\n")

    def client(self, name: str, dns: str = "scraper.example") -> tuple[Path, Path]:
        return self._signed(name, f"/CN={dns}", f"subjectAltName=DNS:{dns}\nextendedKeyUsage=clientAuth\n")
