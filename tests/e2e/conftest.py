"""Real-browser end-to-end fixtures: a world in a workspace, the UI served by ``sybilscope ui``
on a free port, and Debian's chromium driven by Playwright.

The world is a generated one (``generate --scale tiny`` -> ``load`` -> ``detect``) when those
commands exist, else the hand-made fixture world; ``SYBILSCOPE_E2E_WORLD=fixture|generated``
forces one. Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = os.environ.get("SYBILSCOPE_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 1200) -> None:
    result = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"sybilscope {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")


def _pipeline_available() -> bool:
    return all((ROOT / "app" / "commands" / f"{m}.py").exists() for m in ("generate", "data", "detection"))


def _world_kind() -> str:
    forced = os.environ.get("SYBILSCOPE_E2E_WORLD")
    if forced:
        return forced
    return "generated" if _pipeline_available() else "fixture"


@pytest.fixture(scope="session")
def e2e_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A workspace with clusters in its embedded store and staging."""
    workspace = tmp_path_factory.mktemp("e2e-ws")
    kind = _world_kind()
    if kind == "generated":
        bundle = tmp_path_factory.mktemp("e2e-bundle") / "bundle"
        scale = os.environ.get("SYBILSCOPE_E2E_SCALE", "tiny")
        _cli("generate", str(bundle), "--scale", scale, "--seed", "7")
        _cli("load", str(bundle), "--workspace", str(workspace), "--store", "embedded")
        _cli("detect", "--workspace", str(workspace), "--store", "embedded")
    else:
        from graph.stores.embedded import EmbeddedStore
        from graph.workspace import embedded_dir
        from tests.worlds.ui import build_world

        build_world(EmbeddedStore(embedded_dir(workspace)), workspace, ring=8)
    return {"workspace": workspace, "kind": kind}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_ui(workspace: Path, settings: dict[str, str] | None = None, log_name: str = "streamlit") -> Iterator[str]:
    """``sybilscope ui`` serving ``workspace`` on a free port with these SYBILSCOPE_UI_*
    ``settings`` (none from the caller's environment); yields its base URL, stops it afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYBILSCOPE_UI_")} | (settings or {})
    log = (ARTIFACTS / f"{log_name}.log")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "ui", "--port", str(port), "--address", "127.0.0.1",
             "--workspace", str(workspace), "--store", "embedded"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:  # noqa: S310 - local test server
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"streamlit did not come up; see {log}")
            time.sleep(0.5)
        try:
            yield url
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


# One Playwright and one chromium per test process: another test directory that imports the
# ``browser`` fixture gets a fixture of its own, and a second sync Playwright would fail.
_BROWSER: dict[str, Any] = {"users": 0}


@pytest.fixture(scope="session")
def ui_url(e2e_world: dict[str, object]) -> Iterator[str]:
    """``sybilscope ui`` serving the world; yields its base URL, stops it afterwards."""
    with serve_ui(Path(str(e2e_world["workspace"]))) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    if not _BROWSER["users"]:
        _BROWSER["playwright"] = sync_playwright().start()
        _BROWSER["browser"] = _BROWSER["playwright"].chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    _BROWSER["users"] += 1
    try:
        yield _BROWSER["browser"]
    finally:
        _BROWSER["users"] -= 1
        if not _BROWSER["users"]:
            _BROWSER.pop("browser").close()
            _BROWSER.pop("playwright").stop()


@pytest.fixture()
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1600, "height": 1100})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


@pytest.fixture()
def shot(page: object) -> object:
    """``shot("01-triage")`` writes a full-page screenshot to test-artifacts/e2e/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path

    return take
