"""The ``--web.config.file`` of the Prometheus exporter-toolkit: TLS and basic auth for the HTTP endpoints.

Format (a subset of exporter-toolkit's; unknown keys are refused)::

    tls_server_config:
      cert_file: server.crt          # relative paths are resolved against this file's folder
      key_file: server.key
      min_version: TLS12             # TLS10, TLS11, TLS12 (default), TLS13
      max_version: TLS13
      client_ca_file: ca.crt         # with client_auth_type, for mutual TLS
      client_auth_type: RequireAndVerifyClientCert
    basic_auth_users:
      prometheus: $2b$12$...         # bcrypt hash, e.g. from htpasswd -nBC 12 "" or python -c 'import bcrypt; ...'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.errors import ConfigError
from exporter.validation import Node, read_yaml

TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
BCRYPT_HASH = re.compile(r"^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$")
CACHE_SIZE = 1024
BCRYPT_MAX_PASSWORD = 72  # bcrypt reads no further: a longer password would match on its first 72 bytes
BCRYPT_CONCURRENCY = 2  # checks at once: a flood of wrong passwords queues here, not in every thread
BCRYPT_WAIT = 2.0  # seconds a request waits for a check slot before it is told to come back


@dataclass(frozen=True)
class TLSConfig:
    """Validated TLS settings; ``context()`` builds the server-side SSL context."""

    cert_file: Path
    key_file: Path
    min_version: str = "TLS12"
    max_version: str | None = None
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        if self.client_ca_file:
            ctx.load_verify_locations(str(self.client_ca_file))
        ctx.verify_mode = CLIENT_AUTH[self.client_auth_type]
        return ctx


@dataclass(frozen=True)
class WebConfig:
    """TLS (or None for plain HTTP) and the basic-auth users (empty: no authentication)."""

    origin: str = "<none>"
    tls: TLSConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)


def load_web_config(path: Path) -> WebConfig:
    """Read and validate a web config file; every problem is a ConfigError naming file, key and problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read web config file: {exc.strerror}") from None
    base = path.resolve().parent
    root = Node(read_yaml(text, source, base) or {}, source, "")
    tls = _read_tls(root.mapping("tls_server_config"), base) if root.get("tls_server_config") is not None else None
    users = _read_users(root.mapping("basic_auth_users")) if root.get("basic_auth_users") is not None else {}
    root.done()
    return WebConfig(origin=source, tls=tls, users=users)


def _read_tls(node: Node, base: Path) -> TLSConfig:
    def choice(name: str, options: Mapping[str, Any], default: str | None) -> str | None:
        value = node.string(name, default)
        if value is not None and value not in options:
            raise node.fail(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value

    cert, key, client_ca = node.required_string("cert_file"), node.required_string("key_file"), node.string(
        "client_ca_file")
    min_version = choice("min_version", TLS_VERSIONS, "TLS12") or "TLS12"
    max_version = choice("max_version", TLS_VERSIONS, None)
    client_auth = choice("client_auth_type", CLIENT_AUTH, "NoClientCert") or "NoClientCert"
    node.done()  # a misspelt key is named before any file is looked for

    def existing(name: str, value: str) -> Path:
        path = base / value
        if not path.is_file():
            raise node.fail(name, f"{path} does not exist or is not a file")
        return path

    tls = TLSConfig(cert_file=existing("cert_file", cert), key_file=existing("key_file", key),
                    min_version=min_version, max_version=max_version,
                    client_ca_file=existing("client_ca_file", client_ca) if client_ca else None,
                    client_auth_type=client_auth)
    if tls.max_version and TLS_VERSIONS[tls.max_version] < TLS_VERSIONS[tls.min_version]:
        raise node.fail("max_version", f"{tls.max_version} is below min_version {tls.min_version}")
    if tls.client_auth_type != "NoClientCert" and tls.client_ca_file is None:
        raise node.fail("client_ca_file", f"is required with client_auth_type {tls.client_auth_type}")
    try:
        tls.context()  # a key that does not match the certificate fails here, at start
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(node.origin, node.path, f"cannot load the certificate and key: {exc}") from None
    return tls


def _read_users(node: Node) -> dict[str, bytes]:
    users = {}
    for user in list(node.data):
        if not isinstance(user, str) or not user or ":" in user:
            raise node.fail(str(user), "user names are non-empty strings without ':'")
        hashed = node.get(user)
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            # Never echo the value: a plain-text password put here by mistake must not reach the logs.
            raise node.fail(user, "must be a bcrypt hash ($2b$..., 60 characters), not a plain-text password")
        users[user] = hashed.encode()
    return users


def _wait() -> float:
    return BCRYPT_WAIT  # read at call time (tests shorten it)


class AuthBusy(Exception):
    """Every bcrypt slot stayed busy (a flood of wrong passwords): answer 503, try again later."""


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, caching successful checks.

    bcrypt costs ~100-250 ms on purpose; like exporter-toolkit we remember a successful
    (user, password, hash) triple by its SHA-256, so frequent scrapes stay cheap while a wrong
    password always pays the full bcrypt price. An unknown user pays it too, against a hash of the
    configured cost, so the answer's timing tells no user names apart. At most
    ``BCRYPT_CONCURRENCY`` checks run at once; cached successes never wait for them. A password
    longer than bcrypt's 72 bytes never matches (bcrypt would compare only its start).
    """

    def __init__(self, users: Mapping[str, bytes]):
        import bcrypt  # imported here: the exporter without basic auth does not need it

        self.users = dict(users)
        self._ok: dict[bytes, None] = {}  # insertion-ordered: the oldest entry is evicted first
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(BCRYPT_CONCURRENCY)
        cost = max((int(hashed[4:6]) for hashed in self.users.values()), default=12)
        self._dummy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(rounds=cost))
        self._bcrypt = bcrypt

    def check(self, header: str | None) -> str | None:
        """The authenticated user name, or None; raises AuthBusy when no check slot frees in time."""
        credentials = _parse_basic(header)
        if credentials is None:
            return None
        user, password = credentials
        stored = self.users.get(user)
        key = hashlib.sha256(b"\0".join([user.encode(), password, stored or b""])).digest()
        with self._lock:
            if stored is not None and key in self._ok:
                return user
        too_long = len(password) > BCRYPT_MAX_PASSWORD
        if not self._slots.acquire(timeout=_wait()):
            raise AuthBusy()
        try:
            # The same work whatever the outcome: unknown users and over-long passwords check a dummy.
            against = self._dummy if stored is None or too_long else stored
            ok = self._bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], against) and stored is not None and not too_long
        except ValueError:
            ok = False
        finally:
            self._slots.release()
        if not ok:
            return None
        with self._lock:
            self._ok[key] = None
            while len(self._ok) > CACHE_SIZE:
                self._ok.pop(next(iter(self._ok)))
        return user


def _parse_basic(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None
