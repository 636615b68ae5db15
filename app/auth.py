"""Who is investigating: a login against a user list, an identity header, or single-user mode.

- ``ui_users_file`` names a YAML file ``users: {name: "<hash>"}`` (or a list of
  ``{name, password_hash}``); make a hash with ``python -m app.auth PASSWORD``. Failed
  sign-ins are throttled per name and per client (``SignInThrottle``), and an unknown name
  costs the same scrypt as a known one, so timing does not tell which names exist.
- ``ui_identity_header`` names an HTTP header an authenticating proxy sets (e.g.
  ``X-Forwarded-User``). The header alone proves nothing (any client that reaches the app can
  send it), so the mode also needs ``ui_proxy_secret``: the proxy sends it in
  ``ui_proxy_secret_header`` and a request without it is refused.
- Neither: single-user mode; audit events name the local OS user, and the UI says so.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# scrypt cost of new hashes: 128 MiB and ~0.4 s per check, so an offline guess costs as much.
_N, _R, _P = 2**17, 8, 1
# Hashes written as ``scrypt$<salt>$<key>`` (no parameters) were made with N=2^14.
_LEGACY_N = 2**14
# A users file naming a cost outside this range is refused rather than obeyed (2^20 is 1 GiB).
_MIN_N, _MAX_N = 2**14, 2**20
# At most this many scrypt checks run at once: each one holds 128 MiB.
_KDF_SLOTS = threading.BoundedSemaphore(2)

DEFAULT_SECRET_HEADER = "X-Sybilscope-Proxy-Secret"
# Longest investigator name taken from a proxy header; longer values are refused.
_MAX_NAME = 128


class AuthConfigError(ValueError):
    """The sign-in settings cannot be used as given (unreadable users file, no proxy secret, …)."""


# --- Password hashes ----------------------------------------------------------------------

@dataclass(frozen=True)
class ScryptHash:
    """A parsed ``scrypt$n=…,r=…,p=…$<salt hex>$<key hex>`` string."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def text(self) -> str:
        return f"scrypt$n={self.n},r={self.r},p={self.p}${self.salt.hex()}${self.key.hex()}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """One scrypt derivation; ``maxmem`` is raised to what the cost needs (OpenSSL's default
    of 32 MiB refuses N=2^17), and the semaphore bounds how much memory sign-ins hold."""
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    with _KDF_SLOTS:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=maxmem)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The users-file string for a password, carrying its scrypt parameters."""
    salt = salt if salt is not None else os.urandom(16)
    return ScryptHash(_N, _R, _P, salt, _scrypt(password, salt, _N, _R, _P)).text()


def parse_hash(stored: str) -> ScryptHash | None:
    """A stored hash, or None when it is malformed or names a cost outside the allowed range.
    The old three-part form ``scrypt$<salt>$<key>`` is read as N=2^14, r=8, p=1."""
    parts = stored.split("$")
    try:
        if len(parts) == 3 and parts[0] == "scrypt":
            n, r, p = _LEGACY_N, 8, 1
            salt_hex, key_hex = parts[1], parts[2]
        elif len(parts) == 4 and parts[0] == "scrypt":
            params = dict(item.split("=", 1) for item in parts[1].split(","))
            n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
            salt_hex, key_hex = parts[2], parts[3]
        else:
            return None
        salt, key = bytes.fromhex(salt_hex), bytes.fromhex(key_hex)
    except (KeyError, ValueError):
        return None
    if not (_MIN_N <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 4 and salt and key):
        return None
    return ScryptHash(n, r, p, salt, key)


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a ``hash_password`` string."""
    parsed = parse_hash(stored)
    if parsed is None:
        return False
    key = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p)
    return hmac.compare_digest(key, parsed.key)


# Checked in place of a missing user's hash: same parameters as a new hash, a random key no
# password derives, so "no such user" costs what "wrong password" costs.
_DUMMY_HASH = ScryptHash(_N, _R, _P, os.urandom(16), os.urandom(32)).text()


def load_users(path: Path) -> dict[str, str]:
    """name -> password hash from the users YAML file."""
    data = yaml.safe_load(path.read_text()) or {}
    users = data.get("users", data) if isinstance(data, dict) else data
    if isinstance(users, dict):
        return {str(k): str(v) for k, v in users.items()}
    if isinstance(users, list):
        return {str(u["name"]): str(u["password_hash"]) for u in users}
    raise ValueError(f"{path}: expected 'users:' as a mapping or a list")


# --- Modes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuthMode:
    kind: str  # "users", "header" or "single"
    users: dict[str, str]
    header: str
    secret: str = field(default="", repr=False)
    secret_header: str = DEFAULT_SECRET_HEADER

    @property
    def explanation(self) -> str:
        if self.kind == "users":
            return f"Sign-in against {len(self.users)} configured investigators."
        if self.kind == "header":
            return f"Identity from the proxy header {self.header}, vouched for by {self.secret_header}."
        return "Single-user mode: no users file or identity header is configured; actions are recorded as the local user."


def auth_mode(
    users_file: str,
    identity_header: str,
    proxy_secret: str = "",
    secret_header: str = DEFAULT_SECRET_HEADER,
) -> AuthMode:
    """Which way investigators are identified, from the settings. The identity-header mode
    without a proxy secret is refused: anyone reaching the app could name themselves."""
    if users_file:
        try:
            return AuthMode("users", load_users(Path(users_file).expanduser()), "")
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise AuthConfigError(f"cannot read the users file {users_file}: {exc}") from exc
    if identity_header:
        if not proxy_secret:
            raise AuthConfigError(
                f"ui_identity_header ({identity_header}) needs ui_proxy_secret "
                "(SYBILSCOPE_UI_PROXY_SECRET): the secret the authenticating proxy sends in "
                f"{secret_header or DEFAULT_SECRET_HEADER}; without it any client could choose its identity"
            )
        if not secret_header or secret_header.lower() == identity_header.lower():
            raise AuthConfigError("ui_proxy_secret_header must name a header other than ui_identity_header")
        return AuthMode("header", {}, identity_header, proxy_secret, secret_header)
    return AuthMode("single", {}, "")


def mode_from_settings(settings: Any) -> AuthMode:
    """``auth_mode`` from a ``graph.settings.Settings``."""
    return auth_mode(
        str(settings["ui_users_file"]),
        str(settings["ui_identity_header"]),
        str(settings["ui_proxy_secret"]),
        str(settings["ui_proxy_secret_header"]),
    )


Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def _values(headers: Headers, header: str) -> list[str]:
    """Every value of ``header`` (case-insensitive), repeats included."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    wanted = header.lower()
    return [value for name, value in pairs if name.lower() == wanted]


def proxy_vouches(headers: Headers, mode: AuthMode) -> bool:
    """True when the request carries the proxy secret exactly once (compared in constant
    time). A repeated header is refused: a proxy that appends rather than replaces would
    otherwise let the client's own copy through."""
    values = _values(headers, mode.secret_header)
    if len(values) != 1 or not mode.secret:
        return False
    return hmac.compare_digest(values[0].strip().encode(), mode.secret.encode())


def identity_from_headers(headers: Headers, header: str) -> str | None:
    """The investigator named by the proxy header, if it is there exactly once and is a
    plain printable name of at most 128 characters."""
    values = [v.strip() for v in _values(headers, header)]
    if len(values) != 1 or not values[0]:
        return None
    name = values[0]
    if len(name) > _MAX_NAME or not name.isprintable():
        return None
    return name


def login(mode: AuthMode, name: str, password: str) -> bool:
    """Whether ``password`` is ``name``'s. An unknown name is checked against a dummy hash of
    the same cost, so the answer takes as long either way."""
    stored = mode.users.get(name)
    matched = verify_password(password, stored if stored is not None else _DUMMY_HASH)
    return matched and stored is not None


def single_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "analyst"


# --- Throttling -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backoff:
    """``free`` failures cost nothing; each one after doubles the wait, from ``base`` seconds
    up to ``cap``."""

    free: int
    base: float
    cap: float

    def wait(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** min(failures - self.free, 30)))


# Per name: 3 free tries, then 2 s, 4 s, … up to 15 minutes (about four guesses an hour).
USER_BACKOFF = Backoff(free=3, base=2.0, cap=900.0)
# Per client: more slack (several investigators may share an address), same ceiling.
CLIENT_BACKOFF = Backoff(free=10, base=2.0, cap=900.0)
# A record with no failure for this long is forgotten.
FORGET_AFTER = 3600.0
# The file keeps at most this many records (oldest dropped), however many names are tried.
_MAX_RECORDS = 10_000

THROTTLE_FILE = "ui-sign-in-throttle.json"


def _user_key(name: str) -> str:
    # Hashed: a password typed into the name field is not written to disk.
    return "user:" + hashlib.sha256(name.encode()).hexdigest()[:32]


def _client_key(client: str) -> str:
    return "client:" + client


class SignInThrottle:
    """Failed sign-ins per name and per client, in a 0600 JSON file in the workspace, so a
    reload, a new session or a restart does not reset them. Every change is made under an
    exclusive lock on the file, so concurrent sessions (and servers) count every attempt."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock

    @classmethod
    def in_workspace(cls, workspace: Path) -> SignInThrottle:
        return cls(workspace / THROTTLE_FILE)

    def _update(self, change: Callable[[dict[str, dict[str, float]], float], float]) -> float:
        """Read the records, apply ``change`` under the lock, write them back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r+") as fh:
                try:
                    raw = json.loads(fh.read() or "{}")
                except ValueError:
                    raw = {}
                now = self.clock()
                records = {
                    k: v for k, v in (raw.items() if isinstance(raw, dict) else [])
                    if isinstance(v, dict) and now - float(v.get("last", 0)) < FORGET_AFTER
                }
                result = change(records, now)
                if len(records) > _MAX_RECORDS:
                    keep = sorted(records, key=lambda k: records[k]["last"])[-_MAX_RECORDS:]
                    records = {k: records[k] for k in keep}
                fh.seek(0)
                fh.truncate()
                json.dump(records, fh)
            return result
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _wait(records: dict[str, dict[str, float]], key: str, backoff: Backoff, now: float) -> float:
        record = records.get(key)
        if not record:
            return 0.0
        return max(0.0, record["last"] + backoff.wait(int(record["failures"])) - now)

    def _waits(self, records: dict[str, dict[str, float]], name: str, client: str, now: float) -> float:
        return max(self._wait(records, _user_key(name), USER_BACKOFF, now),
                   self._wait(records, _client_key(client), CLIENT_BACKOFF, now))

    def wait(self, name: str, client: str) -> float:
        """Seconds before ``client`` may try ``name`` again (0 when it may now)."""
        return self._update(lambda records, now: self._waits(records, name, client, now))

    def admit(self, name: str, client: str) -> float:
        """0 when an attempt may go ahead, and it is counted as a failure until ``succeeded``
        says otherwise (counting first means concurrent attempts cannot slip past the
        limit); else the seconds to wait, with nothing counted."""
        def change(records: dict[str, dict[str, float]], now: float) -> float:
            wait = self._waits(records, name, client, now)
            if wait > 0:
                return wait
            for key in (_user_key(name), _client_key(client)):
                record = records.setdefault(key, {"failures": 0, "last": now})
                record["failures"] = int(record["failures"]) + 1
                record["last"] = now
            return 0.0

        return self._update(change)

    def succeeded(self, name: str, client: str) -> None:
        """The admitted attempt was right: the name starts afresh, the client's count drops
        the attempt again."""
        def change(records: dict[str, dict[str, float]], now: float) -> float:
            records.pop(_user_key(name), None)
            record = records.get(_client_key(client))
            if record:
                record["failures"] = max(0, int(record["failures"]) - 1)
                if not record["failures"]:
                    records.pop(_client_key(client))
            return 0.0

        self._update(change)


@dataclass(frozen=True)
class SignIn:
    """The outcome of one sign-in attempt."""

    ok: bool
    known_user: bool
    throttled: bool  # refused before the password was looked at
    retry_after: float  # seconds before this name or client may try again (0: now)


def sign_in(mode: AuthMode, throttle: SignInThrottle, name: str, password: str, client: str) -> SignIn:
    """Check a sign-in under the throttle: a throttled attempt is refused without hashing
    (the same answer for known and unknown names); any other costs one scrypt."""
    wait = throttle.admit(name, client)
    known = name in mode.users
    if wait > 0:
        return SignIn(False, known, True, wait)
    if login(mode, name, password):
        throttle.succeeded(name, client)
        return SignIn(True, True, False, 0.0)
    return SignIn(False, known, False, throttle.wait(name, client))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m app.auth PASSWORD", file=sys.stderr)
        raise SystemExit(2)
    print(hash_password(sys.argv[1]))
