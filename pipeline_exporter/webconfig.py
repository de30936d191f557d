"""The ``--web.config.file`` of the Prometheus exporter-toolkit: TLS, HTTP headers and basic auth.

The same file works for node_exporter (unknown keys are refused, every problem names the file and key)::

    tls_server_config:
      cert_file: server.crt          # relative paths are resolved against this file's folder
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # NoClientCert (default), VerifyClientCertIfGiven,
                                     # RequestClientCert, RequireAnyClientCert (both: verified, see below)
      client_ca_file: ca.crt
      client_allowed_sans: [scraper.example]        # a client certificate must name one of these
      min_version: TLS12             # TLS10, TLS11, TLS12 (default), TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...]   # TLS 1.2 and below
      curve_preferences: [CurveP256] # only the first is applied (Python's ssl sets one ECDH curve)
      prefer_server_cipher_suites: true
    http_server_config:
      http2: true                    # accepted; this exporter serves HTTP/1.1
      headers: {Strict-Transport-Security: max-age=31536000, X-Frame-Options: deny}
    basic_auth_users:
      prometheus: $2b$12$...         # bcrypt hash, e.g. from htpasswd -nBC 12 ""

What Python's ssl cannot do, said plainly: it cannot ask for a client certificate without checking
it, so ``RequestClientCert`` and ``RequireAnyClientCert`` verify against ``client_ca_file`` like
``VerifyClientCertIfGiven`` and ``RequireAndVerifyClientCert``; it sets one ECDH curve, so
``curve_preferences`` applies its first entry and ``X25519`` is refused; TLS 1.3 cipher suites are
OpenSSL's (as in Go, where they are not configurable either). The file is read again on SIGHUP and
``POST /-/reload``: a rotated certificate serves the next connection.
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

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.validation import Node, read_text, read_yaml

TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "RequestClientCert": ssl.CERT_OPTIONAL,
               "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL, "RequireAnyClientCert": ssl.CERT_REQUIRED,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
# Go's names of TLS 1.2 cipher suites -> OpenSSL's.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1"}
# The response headers exporter-toolkit lets a web config set.
HEADERS = ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "X-XSS-Protection",
           "Content-Security-Policy")
BCRYPT_HASH = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
# bcrypt's first version: Go's bcrypt checks it, Python's bcrypt cannot (it says "Invalid salt" at every login).
BCRYPT_V0 = re.compile(r"^\$2\$\d\d\$[./A-Za-z0-9]{53}$")
CACHE_SIZE = 1024
BCRYPT_MAX_PASSWORD = 72  # bcrypt reads no further: a longer password would match on its first 72 bytes
BCRYPT_CONCURRENCY = 2  # checks at once: a flood of wrong passwords queues here, not in every thread
BCRYPT_WAIT = 2.0  # seconds a request waits for a check slot before it is told to come back
BCRYPT_COSTS = (4, 16)  # bcrypt's minimum, and the most a scrape can wait for (~5 s a check)


@dataclass(frozen=True)
class TLSConfig:
    """Validated TLS settings; ``context()`` builds the server-side SSL context."""

    cert_file: Path
    key_file: Path
    min_version: str = "TLS12"
    max_version: str | None = None
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    cipher_suites: tuple[str, ...] = ()
    curve: str | None = None
    prefer_server_cipher_suites: bool = True

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        # A passphrase callback that gives none: OpenSSL would otherwise ask for one on the terminal.
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file), password=_no_passphrase)
        if self.client_ca_file:
            ctx.load_verify_locations(str(self.client_ca_file))
        ctx.verify_mode = CLIENT_AUTH[self.client_auth_type]
        if self.cipher_suites:
            ctx.set_ciphers(":".join(CIPHER_SUITES[name] for name in self.cipher_suites))
        if self.curve:
            ctx.set_ecdh_curve(CURVES[self.curve])
        if self.prefer_server_cipher_suites:
            ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        return ctx

    def allows(self, peer: dict[str, Any] | None) -> bool:
        """True when ``client_allowed_sans`` is empty or the client's certificate names one of them."""
        if not self.client_allowed_sans:
            return True
        names = {value for _, value in (peer or {}).get("subjectAltName", ())}
        return bool(names & set(self.client_allowed_sans))


@dataclass(frozen=True)
class WebConfig:
    """TLS (or None for plain HTTP) and the basic-auth users (empty: no authentication)."""

    origin: str = "<none>"
    tls: TLSConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()  # set on every response


def load_web_config(path: Path) -> WebConfig:
    """Read and validate a web config file; every problem is a ConfigError naming file, key and problem."""
    source = str(path)
    text = read_text(path, "web config file")
    base = path.resolve().parent
    root = Node(read_yaml(text, source, base) or {}, source, "")
    tls = _read_tls(root.mapping("tls_server_config"), base) if root.get("tls_server_config") is not None else None
    headers = _read_http(root.mapping("http_server_config"))
    users = _read_users(root.mapping("basic_auth_users")) if root.get("basic_auth_users") is not None else {}
    root.done()
    return WebConfig(origin=source, tls=tls, users=users, headers=headers)


def _read_http(node: Node) -> tuple[tuple[str, str], ...]:
    """``http_server_config``: ``headers`` (the ones exporter-toolkit allows); ``http2`` is accepted."""
    node.boolean("http2", True)
    headers = node.mapping("headers")
    pairs = []
    for name in list(headers.data):
        canonical = next((h for h in HEADERS if h.lower() == str(name).lower()), None)
        if canonical is None:
            raise headers.fail(str(name), f"is not a header a web config may set (one of: {', '.join(HEADERS)})")
        value = headers.required_string(str(name))
        if "\n" in value or "\r" in value:
            raise headers.fail(str(name), "a header value is one line")
        pairs.append((canonical, value))
    headers.done()
    node.done()
    return tuple(pairs)


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
    sans = tuple(str(name) for name in node.sequence("client_allowed_sans"))
    suites = tuple(node.sequence("cipher_suites"))
    for i, suite in enumerate(suites):
        if suite not in CIPHER_SUITES:
            raise ConfigError(node.origin, f"{node.key('cipher_suites')}[{i}]",
                              f"{suite!r} is not a TLS 1.2 cipher suite Python's ssl can use "
                              f"(TLS 1.3 suites are OpenSSL's and not configurable)")
    curves = node.sequence("curve_preferences")
    for i, curve in enumerate(curves):
        if curve not in CURVES:
            raise ConfigError(node.origin, f"{node.key('curve_preferences')}[{i}]",
                              f"{curve!r} cannot be set through Python's ssl (it can: {', '.join(CURVES)})")
    prefer = node.boolean("prefer_server_cipher_suites", True)
    node.done()  # a misspelt key is named before any file is looked for

    def existing(name: str, value: str) -> Path:
        path = base / value
        if not path.is_file():
            raise node.fail(name, f"{path} does not exist or is not a file")
        return path

    tls = TLSConfig(cert_file=existing("cert_file", cert), key_file=existing("key_file", key),
                    min_version=min_version, max_version=max_version,
                    client_ca_file=existing("client_ca_file", client_ca) if client_ca else None,
                    client_auth_type=client_auth, client_allowed_sans=sans, cipher_suites=suites,
                    curve=curves[0] if curves else None, prefer_server_cipher_suites=prefer)
    if tls.max_version and TLS_VERSIONS[tls.max_version] < TLS_VERSIONS[tls.min_version]:
        raise node.fail("max_version", f"{tls.max_version} is below min_version {tls.min_version}")
    if tls.client_auth_type != "NoClientCert" and tls.client_ca_file is None:
        raise node.fail("client_ca_file", f"is required with client_auth_type {tls.client_auth_type}")
    if sans and tls.client_auth_type == "NoClientCert":
        raise node.fail("client_allowed_sans", "needs a client_auth_type that asks for a client certificate")
    try:
        tls.context()  # a key that does not match the certificate fails here, at start
    except (ssl.SSLError, OSError) as exc:
        name, problem = _tls_problem(tls, exc)
        raise node.fail(name, problem) from None
    return tls


def _no_passphrase() -> bytes:
    raise ssl.SSLError("the key is encrypted with a passphrase")


PRIVATE_KEY = re.compile(rb"-----BEGIN (?:(?:RSA|EC|DSA) )?PRIVATE KEY-----")


def _tls_problem(tls: TLSConfig, exc: Exception) -> tuple[str, str]:
    """Which file of a TLS config OpenSSL refused, and why, in words (its own message is
    ``[SSL] PEM lib (_ssl.c:3905)`` for most of them)."""
    def loads_as_certificate(path: Path) -> bool:
        try:
            ssl.create_default_context(cafile=str(path))
            return True
        except (ssl.SSLError, OSError, ValueError):
            return False

    if not loads_as_certificate(tls.cert_file):
        return "cert_file", f"{tls.cert_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    key = tls.key_file.read_bytes()
    if b"ENCRYPTED" in key.split(b"-----END", 1)[0]:
        return "key_file", f"{tls.key_file} is encrypted with a passphrase; the exporter needs an unencrypted key"
    if not PRIVATE_KEY.search(key):
        return "key_file", f"{tls.key_file} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
    if tls.client_ca_file and not loads_as_certificate(tls.client_ca_file):
        return "client_ca_file", f"{tls.client_ca_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
        return "key_file", f"{tls.key_file} is not the private key of the certificate in {tls.cert_file}"
    reason = getattr(exc, "reason", None) or type(exc).__name__
    return "cert_file", f"the certificate {tls.cert_file} and key {tls.key_file} cannot be loaded ({reason})"


def bcrypt_cost(hashed: str | bytes) -> int:
    """The cost of a bcrypt hash (``$2b$12$...``: 12)."""
    text = hashed.decode() if isinstance(hashed, bytes) else hashed
    return int(text.split("$")[2])


def _read_users(node: Node) -> dict[str, bytes]:
    users = {}
    for user in list(node.data):
        if not isinstance(user, str) or not user or ":" in user:
            raise node.fail(str(user), "user names are non-empty strings without ':'")
        hashed = node.get(user)
        if isinstance(hashed, str) and BCRYPT_V0.match(hashed):
            raise node.fail(user, "is a $2$ bcrypt hash (bcrypt's first version), which cannot be checked here: "
                                  "make a $2b$ or $2y$ one, e.g. with htpasswd -nBC 12 \"\"")
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            # Never echo the value: a plain-text password put here by mistake must not reach the logs.
            raise node.fail(user, "must be a bcrypt hash ($2b$..., 60 characters), not a plain-text password")
        cost = bcrypt_cost(hashed)
        if not BCRYPT_COSTS[0] <= cost <= BCRYPT_COSTS[1]:
            raise node.fail(user, f"a bcrypt cost of {cost} is outside {BCRYPT_COSTS[0]}..{BCRYPT_COSTS[1]} "
                                  "(higher costs take seconds to minutes per check)")
        users[user] = hashed.encode()
    costs = {bcrypt_cost(hashed) for hashed in users.values()}
    if len(costs) > 1:
        raise node.fail(str(next(iter(users))), f"every user needs the same bcrypt cost (found {sorted(costs)}): "
                        "with different costs, answer times would tell user names apart")
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
        cost = max((bcrypt_cost(hashed) for hashed in self.users.values()), default=12)
        self._dummy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(rounds=cost))
        self._bcrypt = bcrypt

    def known(self, header: str | None) -> bool:
        """True when these credentials already passed a check (no bcrypt: the HTTP server's event
        loop asks this before answering a scrape itself; anything else goes through ``check``)."""
        credentials = _parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        stored = self.users.get(user)
        if stored is None:
            return False
        key = hashlib.sha256(b"\0".join([user.encode(), password, stored])).digest()
        with self._lock:
            return key in self._ok

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
