"""app/auth.py: password hashes, the dummy hash for unknown names, the sign-in throttle and
the proxy secret of the identity-header mode."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from app import auth


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every hashlib.scrypt call's parameters (the real function still runs)."""
    calls: list[dict[str, Any]] = []
    real = hashlib.scrypt

    def spy(password: bytes, **kwargs: Any) -> bytes:
        calls.append({k: v for k, v in kwargs.items() if k != "salt"})
        return real(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    return calls


def _users(**passwords: str) -> auth.AuthMode:
    return auth.AuthMode("users", {name: auth.hash_password(pw) for name, pw in passwords.items()}, "")


def test_new_hashes_carry_n_2_17_and_verify(scrypt_calls: list[dict[str, Any]]) -> None:
    stored = auth.hash_password("correct horse")
    assert stored.startswith("scrypt$n=131072,r=8,p=1$")
    parsed = auth.parse_hash(stored)
    assert parsed is not None and (parsed.n, parsed.r, parsed.p) == (2**17, 8, 1) and len(parsed.salt) == 16
    assert auth.verify_password("correct horse", stored) and not auth.verify_password("correct horsf", stored)
    assert {(c["n"], c["r"], c["p"]) for c in scrypt_calls} == {(2**17, 8, 1)}
    assert all(c["maxmem"] >= 128 * 8 * 2**17 for c in scrypt_calls)


def test_legacy_n_2_14_hashes_still_verify(scrypt_calls: list[dict[str, Any]]) -> None:
    salt = bytes(range(16))
    key = hashlib.scrypt(b"old pw", salt=salt, n=2**14, r=8, p=1, dklen=32)
    legacy = f"scrypt${salt.hex()}${key.hex()}"  # the form written before parameters were
    scrypt_calls.clear()
    assert auth.verify_password("old pw", legacy) and not auth.verify_password("old px", legacy)
    assert {c["n"] for c in scrypt_calls} == {2**14}


@pytest.mark.parametrize("stored", [
    "garbage", "scrypt$zz$00", "md5$00$00", "scrypt$n=1024,r=8,p=1$00$00",  # cost too low
    "scrypt$n=4194304,r=8,p=1$0011$0011",  # 4 GiB: refused, not obeyed
    "scrypt$n=100000,r=8,p=1$0011$0011",  # not a power of two
])
def test_malformed_or_out_of_range_hashes_never_match(stored: str, scrypt_calls: list[dict[str, Any]]) -> None:
    assert auth.parse_hash(stored) is None
    assert not auth.verify_password("pw", stored)
    assert scrypt_calls == []


def test_unknown_user_costs_one_scrypt_with_the_real_parameters(scrypt_calls: list[dict[str, Any]]) -> None:
    mode = _users(alice="s3cret")
    scrypt_calls.clear()
    assert not auth.login(mode, "alice", "wrong")
    known = list(scrypt_calls)
    scrypt_calls.clear()
    assert not auth.login(mode, "nobody", "s3cret")
    unknown = list(scrypt_calls)
    assert len(known) == len(unknown) == 1
    assert known == unknown  # same n, r, p, dklen and maxmem: the same work either way
    # The dummy hash is no password's: no guess for an unknown name ever signs in.
    assert not auth.login(mode, "nobody", "")


def test_throttle_backs_off_exponentially_per_name(tmp_path: Path) -> None:
    clock = Clock()
    throttle = auth.SignInThrottle(tmp_path / "t.json", clock)
    waits: list[float] = []
    for _ in range(8):
        clock.now += waits[-1] if waits else 0  # the attacker waits exactly as long as told
        assert throttle.admit("alice", "10.0.0.1") == 0
        waits.append(throttle.wait("alice", "10.0.0.1"))
    assert waits == [0, 0, 2, 4, 8, 16, 32, 64]
    # Trying again before the wait is over is refused without counting.
    assert throttle.admit("alice", "10.0.0.1") == 64
    clock.now += 63
    assert throttle.admit("alice", "10.0.0.1") == pytest.approx(1)
    clock.now += 1
    assert throttle.admit("alice", "10.0.0.1") == 0
    # The wait stops growing at the cap.
    for _ in range(10):
        clock.now += throttle.wait("alice", "10.0.0.1")
        throttle.admit("alice", "10.0.0.1")
    assert throttle.wait("alice", "10.0.0.1") == auth.USER_BACKOFF.cap


def test_throttle_per_client_across_names(tmp_path: Path) -> None:
    """One client spraying a password over many names is slowed too."""
    clock = Clock()
    throttle = auth.SignInThrottle(tmp_path / "t.json", clock)
    for i in range(auth.CLIENT_BACKOFF.free):
        assert throttle.admit(f"user{i}", "198.51.100.9") == 0
    assert throttle.admit("someone-else", "198.51.100.9") == auth.CLIENT_BACKOFF.base
    # Another client is not held up by it.
    assert throttle.admit("someone-else", "198.51.100.10") == 0


def test_throttle_survives_a_new_session_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "ws" / auth.THROTTLE_FILE
    clock = Clock()
    first = auth.SignInThrottle(path, clock)
    for _ in range(5):
        assert first.admit("alice", "local") == 0
        clock.now += first.wait("alice", "local")
    clock.now -= 1
    again = auth.SignInThrottle(path, clock)  # as a reload or a restarted server would
    assert again.wait("alice", "local") == 1
    assert again.admit("alice", "local") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Names are stored hashed: a password typed into the name field is not on disk.
    first.admit("hunter2-typed-as-name", "local")
    assert "hunter2" not in path.read_text()
    # An hour without failures forgets the name.
    clock.now += auth.FORGET_AFTER + 1
    assert again.wait("alice", "local") == 0
    assert json.loads(path.read_text()) == {}


def test_throttle_repairs_permissions(tmp_path: Path) -> None:
    path = tmp_path / auth.THROTTLE_FILE
    path.write_text("{}")
    path.chmod(0o644)
    auth.SignInThrottle(path).admit("alice", "local")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sign_in_success_resets_the_name_and_throttled_attempts_skip_scrypt(
        tmp_path: Path, scrypt_calls: list[dict[str, Any]]) -> None:
    mode = _users(alice="s3cret")
    clock = Clock()
    throttle = auth.SignInThrottle(tmp_path / "t.json", clock)
    scrypt_calls.clear()
    for _ in range(3):
        assert not auth.sign_in(mode, throttle, "alice", "wrong", "local").ok
    assert len(scrypt_calls) == 3
    # Locked now: even the right password is refused, without hashing, and unknown names get
    # the same answer as known ones.
    refused = auth.sign_in(mode, throttle, "alice", "s3cret", "local")
    assert not refused.ok and refused.throttled and refused.retry_after == 2
    assert len(scrypt_calls) == 3
    for _ in range(3):
        auth.sign_in(mode, throttle, "nobody", "x", "local")
    ghost = auth.sign_in(mode, throttle, "nobody", "x", "local")
    assert ghost.throttled and ghost.retry_after == refused.retry_after
    clock.now += 2
    ok = auth.sign_in(mode, throttle, "alice", "s3cret", "local")
    assert ok.ok and not ok.throttled
    assert throttle.wait("alice", "local") == 0  # a success starts the name afresh


def test_identity_header_mode_needs_a_secret() -> None:
    with pytest.raises(auth.AuthConfigError, match="ui_proxy_secret"):
        auth.auth_mode("", "X-Forwarded-User")
    with pytest.raises(auth.AuthConfigError, match="other than"):
        auth.auth_mode("", "X-Forwarded-User", "s", "x-forwarded-user")
    mode = auth.auth_mode("", "X-Forwarded-User", "s3cr3t")
    assert mode.kind == "header" and mode.secret_header == "X-Sybilscope-Proxy-Secret"
    assert "s3cr3t" not in repr(mode)


def test_users_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(auth.AuthConfigError, match="cannot read"):
        auth.auth_mode(str(tmp_path / "missing.yaml"), "")
    bad = tmp_path / "bad.yaml"
    bad.write_text("users: [{name: x}]\n")
    with pytest.raises(auth.AuthConfigError):
        auth.auth_mode(str(bad), "")


def test_proxy_secret_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    mode = auth.auth_mode("", "X-Forwarded-User", "s3cr3t")
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert auth.proxy_vouches([("x-sybilscope-proxy-secret", "s3cr3t")], mode)
    assert compared == [(b"s3cr3t", b"s3cr3t")]
    assert not auth.proxy_vouches({"X-Sybilscope-Proxy-Secret": "s3cr3"}, mode)
    assert not auth.proxy_vouches({"X-Forwarded-User": "dana"}, mode)
    # Sent twice (a proxy appending to the client's own copy): refused.
    assert not auth.proxy_vouches([("X-Sybilscope-Proxy-Secret", "guess"), ("X-Sybilscope-Proxy-Secret", "s3cr3t")], mode)


def test_identity_header_must_be_one_plain_name() -> None:
    assert auth.identity_from_headers([("x-forwarded-user", " dana ")], "X-Forwarded-User") == "dana"
    assert auth.identity_from_headers([("X-Forwarded-User", "a"), ("X-Forwarded-User", "b")], "X-Forwarded-User") is None
    assert auth.identity_from_headers({"X-Forwarded-User": "x" * 200}, "X-Forwarded-User") is None
    assert auth.identity_from_headers({"X-Forwarded-User": "eve\x1b[2J"}, "X-Forwarded-User") is None
