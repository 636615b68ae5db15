"""Start ``sybilscope ui`` as a real process for the UI security tests, and find what it
listens on. Browser fixtures come from tests/e2e/conftest.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import ARTIFACTS, ROOT, _free_port


@dataclass
class RunningUI:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        """Pids of the ``sybilscope ui`` process's children (the Streamlit server)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []


def ui_environment(**settings: str) -> dict[str, str]:
    """This environment without any SYBILSCOPE_UI_* value, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYBILSCOPE_UI_")}
    env.update(settings)
    return env


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:  # noqa: S310 - local test server
            return resp.status == 200
    except OSError:
        return False


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def running_ui(workspace: Path, *args: str, env: dict[str, str] | None = None, name: str = "ui") -> Iterator[RunningUI]:
    """``sybilscope ui`` on a free port (``args`` appended), once it answers on 127.0.0.1;
    stopped (its whole session) afterwards."""
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"security-{name}-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "ui", "--port", str(port), "--workspace", str(workspace), "--store", "embedded", *args],
            cwd=ROOT, env=env if env is not None else ui_environment(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ui = RunningUI(proc, port, log)
    try:
        deadline = time.monotonic() + 60
        while not answers(ui.url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sybilscope ui did not come up:\n{ui.output()[-3000:]}")
            time.sleep(0.3)
        yield ui
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _hex_address(raw: str) -> str:
    """A /proc/net/tcp{,6} address as text (the kernel writes it as host-order words)."""
    data = bytes.fromhex(raw)
    words = b"".join(data[i:i + 4][::-1] for i in range(0, len(data), 4))
    return socket.inet_ntop(socket.AF_INET if len(words) == 4 else socket.AF_INET6, words)


def listening_addresses(port: int) -> list[str]:
    """Local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.append(_hex_address(address))
    return found


def non_loopback_address() -> str | None:
    """An address of this machine other than loopback (the route to a public address, found
    without sending anything), or None when the machine has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect only picks a route
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104
