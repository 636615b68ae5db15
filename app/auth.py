"""Who is investigating: a login against a user list, an identity header, or single-user mode.

- ``ui_users_file`` names a YAML file ``users: {name: "scrypt$<salt hex>$<hash hex>"}`` (or a
  list of ``{name, password_hash}``); make a hash with ``python -m app.auth PASSWORD``.
- ``ui_identity_header`` names an HTTP header an authenticating proxy sets (e.g.
  ``X-Forwarded-User``); the app trusts it, so only use it behind such a proxy.
- Neither: single-user mode; audit events name the local OS user, and the UI says so.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<key hex>`` for a password (stored in the users file)."""
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a ``hash_password`` string."""
    try:
        scheme, salt_hex, key_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return hmac.compare_digest(key.hex(), key_hex)


def load_users(path: Path) -> dict[str, str]:
    """name -> password hash from the users YAML file."""
    data = yaml.safe_load(path.read_text()) or {}
    users = data.get("users", data) if isinstance(data, dict) else data
    if isinstance(users, dict):
        return {str(k): str(v) for k, v in users.items()}
    if isinstance(users, list):
        return {str(u["name"]): str(u["password_hash"]) for u in users}
    raise ValueError(f"{path}: expected 'users:' as a mapping or a list")


@dataclass(frozen=True)
class AuthMode:
    kind: str  # "users", "header" or "single"
    users: dict[str, str]
    header: str

    @property
    def explanation(self) -> str:
        if self.kind == "users":
            return f"Sign-in against {len(self.users)} configured investigators."
        if self.kind == "header":
            return f"Identity from the proxy header {self.header}."
        return "Single-user mode: no users file or identity header is configured; actions are recorded as the local user."


def auth_mode(users_file: str, identity_header: str) -> AuthMode:
    """Which way investigators are identified, from the two settings."""
    if users_file:
        return AuthMode("users", load_users(Path(users_file).expanduser()), "")
    if identity_header:
        return AuthMode("header", {}, identity_header)
    return AuthMode("single", {}, "")


def identity_from_headers(headers: Mapping[str, str], header: str) -> str | None:
    """The investigator named by the proxy header (case-insensitive), if present."""
    wanted = header.lower()
    for name, value in headers.items():
        if name.lower() == wanted and value.strip():
            return value.strip()
    return None


def login(mode: AuthMode, name: str, password: str) -> bool:
    stored = mode.users.get(name)
    return stored is not None and verify_password(password, stored)


def single_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "analyst"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m app.auth PASSWORD", file=sys.stderr)
        raise SystemExit(2)
    print(hash_password(sys.argv[1]))
