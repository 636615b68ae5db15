"""``sybilscope ui`` as a real process: where it listens by default, what it refuses to start
with, what it warns about, and that stopping it stops its Streamlit child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.commands import ui as ui_command
from tests.e2e.conftest import ROOT
from tests.security.ui_launch import (
    answers,
    listening_addresses,
    non_loopback_address,
    port_open,
    running_ui,
    ui_environment,
)


def test_default_bind_is_loopback_only(tmp_path: Path) -> None:
    with running_ui(tmp_path, name="bind") as ui:
        addresses = listening_addresses(ui.port)
        assert addresses and set(addresses) <= {"127.0.0.1", "::1"}, addresses
        other = non_loopback_address()
        if other is not None:  # this machine has another address: nothing answers there
            assert not port_open(other, ui.port)
        assert port_open("127.0.0.1", ui.port)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_sybilscope_ui_stops_streamlit(tmp_path: Path, signum: int) -> None:
    with running_ui(tmp_path, name=f"stop-{signum}") as ui:
        children = ui.children()
        assert children, "the Streamlit server runs as a child"
        os.kill(ui.proc.pid, signum)  # the parent only, as a service manager or kill(1) would
        ui.proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while (answers(ui.url) or any(Path(f"/proc/{pid}").exists() for pid in children)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not port_open("127.0.0.1", ui.port), "the port is still open"
        assert not any(Path(f"/proc/{pid}").exists() for pid in children), "the Streamlit child outlived its parent"
        assert "Stopping" in ui.output()  # Streamlit shut down rather than being killed


def test_identity_header_without_secret_refuses_to_start(tmp_path: Path) -> None:
    env = ui_environment(SYBILSCOPE_UI_IDENTITY_HEADER="X-Forwarded-User")
    result = subprocess.run(
        [sys.executable, "-m", "app", "ui", "--port", "1", "--workspace", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "refuses to start" in result.stderr and "SYBILSCOPE_UI_PROXY_SECRET" in result.stderr


@pytest.fixture()
def served(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The Streamlit command lines ``sybilscope ui`` would run (nothing is started)."""
    commands: list[list[str]] = []

    def fake_serve(cmd: list[str], env: dict[str, str]) -> int:
        commands.append(cmd)
        return 0

    monkeypatch.setattr(ui_command, "serve", fake_serve)
    for name in ("USERS_FILE", "IDENTITY_HEADER", "PROXY_SECRET", "HOST"):
        monkeypatch.delenv(f"SYBILSCOPE_UI_{name}", raising=False)
    return commands


def _ui(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    from app.cli import main

    return CliRunner().invoke(main, ["ui", "--port", "18999", "--workspace", str(tmp_path), *args], env=env)


def _option(cmd: list[str], name: str) -> list[str]:
    return [cmd[i + 1] for i, part in enumerate(cmd) if part == name]


def test_non_loopback_without_sign_in_warns(tmp_path: Path, served: list[list[str]]) -> None:
    result = _ui(tmp_path, "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    assert "WARNING" in result.stderr and "no sign-in configured" in result.stderr
    [cmd] = served
    assert _option(cmd, "--server.address") == ["0.0.0.0"]
    assert _option(cmd, "--server.allowedHosts") == []  # any Host name the network uses


def test_default_and_alias_stay_on_loopback_without_warning(tmp_path: Path, served: list[list[str]]) -> None:
    assert _ui(tmp_path).exit_code == 0
    assert _ui(tmp_path, "--address", "127.0.0.1").exit_code == 0
    result = _ui(tmp_path, "--host", "localhost")
    assert result.exit_code == 0 and "WARNING" not in result.stderr
    for cmd in served:
        assert _option(cmd, "--server.address")[0] in {"127.0.0.1", "localhost"}
        # On loopback only loopback Host names are served: a DNS-rebinding page gets nothing.
        assert set(_option(cmd, "--server.allowedHosts")) == {"localhost", "127.0.0.1", "::1"}
        assert _option(cmd, "--browser.gatherUsageStats") == ["false"]
        assert _option(cmd, "--server.enableXsrfProtection") == ["true"]
        assert _option(cmd, "--server.enableCORS") == ["true"]
        assert cmd[1:3] == ["-m", "app.ui_server"]


def test_non_loopback_with_a_users_file_warns_about_tls(tmp_path: Path, served: list[list[str]]) -> None:
    from app.auth import hash_password

    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  alice: \"{hash_password('pw')}\"\n")
    result = _ui(tmp_path, "--host", "0.0.0.0", env={"SYBILSCOPE_UI_USERS_FILE": str(users)})
    assert result.exit_code == 0 and "TLS" in result.stderr and "no sign-in" not in result.stderr


def test_streamlit_never_asks_for_the_external_address() -> None:
    """app.ui_server turns off Streamlit's lookup of the machine's public address (a request
    to checkip.amazonaws.com at startup on 0.0.0.0 and for unknown WebSocket origins)."""
    code = (
        "from app import ui_server; from streamlit import net_util; import streamlit.net_util as n;"
        "n._make_blocking_http_get = lambda *a, **k: (_ for _ in ()).throw(AssertionError('network'));"
        "ui_server.offline();"
        "from streamlit.web.server import server_util;"
        "assert net_util.get_external_ip() is None;"
        "assert not server_util.is_url_from_allowed_origins('http://evil.example');"
        "print('offline')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "offline" in result.stdout, result.stderr
