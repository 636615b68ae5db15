"""Real-browser end-to-end fixtures: a world in a workspace, the UI served by ``sybilscope ui``
on a free port, and Debian's chromium driven by Playwright.

Two worlds, each built once per run:

- ``e2e_world``: a generated one (``generate --scale tiny`` -> ``load`` -> ``detect``) when
  those commands exist, else the hand-made fixture world (``SYBILSCOPE_E2E_WORLD=fixture|generated``
  forces one), for the investigator's main path (test_browser.py);
- ``big_world``: ``generate --scale small`` -> ``load`` -> ``detect``, then the analyst merges the
  largest clusters until one flagged cluster holds at least ``BIG`` accounts, leaving the
  smallest flagged cluster apart (the merge test merges it in); its busiest IP is used by more
  accounts than the default ``ui_degree_cap``. Every numbered point of issue 15 has a test on it
  (test_canvas.py, test_pivot.py, test_merge_split.py). ``SYBILSCOPE_E2E_CANVAS_WORKSPACE`` names
  a workspace prepared so already (the world takes a few minutes to make on a busy machine);
  the fixture then only checks it. ``big_url`` serves it with the default settings.

Screenshots go to ``test-artifacts/e2e/``.
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


BIG = 500


def _merge_to_big(workspace: Path) -> tuple[str, str | None]:
    """The analyst's merges that make one flagged cluster of at least ``BIG`` accounts: the
    largest flagged cluster absorbs the other flagged ones, largest first, then the largest
    unflagged ones, until it is big enough; the smallest flagged cluster is kept apart while
    the others suffice. Returns the big cluster and the one kept apart (None when none is)."""
    from graph import cases
    from graph.investigate import triage
    from graph.settings import Settings
    from graph.stores.embedded import EmbeddedStore
    from graph.workspace import embedded_dir

    # The workspace's settings, as the app passes them: the merges refigure from its staging.
    settings = Settings({"workspace": str(workspace), "store": "embedded"}, environ={})
    store = EmbeddedStore(embedded_dir(workspace))
    try:
        live = [c for c in triage.load_clusters(store) if c["status"] != "merged" and c["size"] > 0]
        flagged = sorted((c for c in live if c["flagged"]), key=lambda c: (-c["size"], c["cluster_id"]))
        if not flagged:
            raise AssertionError("the generated world has no flagged cluster")
        keep, size = flagged[0]["cluster_id"], flagged[0]["size"]
        apart = flagged[-1]["cluster_id"] if len(flagged) > 1 else None
        unflagged = sorted((c for c in live if not c["flagged"]), key=lambda c: (-c["size"], c["cluster_id"]))
        for other in [c for c in flagged[1:] if c["cluster_id"] != apart] + unflagged:
            if size >= BIG:
                break
            cases.merge_clusters(store, keep, other["cluster_id"], who="e2e", rationale="one cluster above the group threshold",
                                 settings=settings)
            size += other["size"]
        if size < BIG and apart is not None:  # the world is too small to keep one apart
            cases.merge_clusters(store, keep, apart, who="e2e", rationale="one cluster above the group threshold", settings=settings)
            apart = None
    finally:
        store.close()
    return keep, apart


@pytest.fixture(scope="session")
def big_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated small world with one flagged cluster of at least ``BIG`` accounts, another
    flagged cluster apart from it, and an IP shared by more than ``ui_degree_cap`` accounts."""
    from collections import Counter

    from graph.cases import members
    from graph.schema import Label, Rel
    from graph.settings import Settings
    from graph.stores.embedded import EmbeddedStore
    from graph.workspace import embedded_dir

    prepared = os.environ.get("SYBILSCOPE_E2E_CANVAS_WORKSPACE")
    if prepared:
        workspace = Path(prepared)
    else:
        root = tmp_path_factory.mktemp("e2e-big")
        bundle, workspace = root / "bundle", root / "ws"
        _cli("generate", str(bundle), "--scale", "small", "--seed", "7")
        _cli("load", str(bundle), "--workspace", str(workspace), "--store", "embedded")
        _cli("detect", "--workspace", str(workspace), "--store", "embedded")
    keep, apart = _merge_to_big(workspace)
    store = EmbeddedStore(embedded_dir(workspace))
    try:
        size = len(members(store, keep))
        big = store.get_node(Label.CLUSTER, keep)
        ip, users = Counter(r.end[1] for r in store.iter_relationships(Rel.USED_IP)).most_common(1)[0]
    finally:
        store.close()
    cap = int(Settings({}, environ={})["ui_degree_cap"])
    assert size >= BIG, f"the merged cluster has {size} accounts"
    assert big is not None and big.props.get("flagged"), f"the merged cluster {keep} is not flagged"
    assert apart is not None, "the generated world has no second flagged cluster to merge in"
    assert users > cap, f"no IP is shared by more than ui_degree_cap={cap} accounts"
    return {"workspace": workspace, "cluster": keep, "members": size, "other_flagged": apart,
            "busy_ip": ip, "busy_ip_accounts": users, "cap": cap}


@pytest.fixture(scope="session")
def big_url(big_world: dict[str, Any]) -> Iterator[str]:
    """``sybilscope ui`` serving the big world with the default settings."""
    with serve_ui(Path(big_world["workspace"]), log_name="streamlit-big") as url:
        yield url


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


# Every URL the browser asked for in this run's app pages (test_pivot.py checks none leaves the machine).
REQUESTS: list[str] = []


@pytest.fixture()
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1600, "height": 1100})  # type: ignore[attr-defined]
    context.on("request", lambda r: REQUESTS.append(r.url))
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


def canvas_frame(page: Any, timeout: float = 180_000) -> Any:
    """The cluster canvas's frame (app/canvas_component) once it has drawn. The iframe element
    is attached before its document loads, so the frame is looked up until it has the
    component's address, rather than once."""
    page.locator("iframe[src*='sybilscope_canvas']").wait_for(timeout=timeout)
    deadline = time.monotonic() + timeout / 1000
    while True:
        frame = next((f for f in page.frames if "sybilscope_canvas" in f.url), None)
        if frame is not None:
            break
        if time.monotonic() > deadline:
            raise AssertionError("the canvas frame never loaded its document")
        page.wait_for_timeout(100)
    frame.wait_for_function("() => window.canvasReady === true && window.canvasView().nodes.length > 0", timeout=timeout)
    return frame


def settled(page: Any, frame: Any, timeout: float = 60_000) -> None:
    """Wait until the app has finished its run and the canvas draws the same view twice in a
    row (same nodes, zoom and viewpoint, 400 ms apart), so a point computed now is still where
    that node or edge is drawn when the click lands."""
    page.locator("[data-testid='stStatusWidgetRunningIcon']").wait_for(state="detached", timeout=timeout)
    read = ("() => { const n = window.canvasNetwork, v = n.getViewPosition();"
            " return [window.canvasView().nodes.length, n.getScale(), v.x, v.y].join(','); }")
    deadline = time.monotonic() + timeout / 1000
    last = frame.evaluate(read)
    while time.monotonic() < deadline:
        page.wait_for_timeout(400)
        now = frame.evaluate(read)
        if now == last:
            return
        last = now
    raise AssertionError("the canvas kept moving")


def idle(page: Any, timeout: float = 60_000) -> None:
    """Wait until the app has finished the run a widget change started (each change reruns the
    page, and a field typed into during a run can be redrawn empty)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidgetRunningIcon']").wait_for(state="detached", timeout=timeout)


def fill_field(page: Any, label: str, text: str) -> None:
    """Type ``text`` into the field labelled ``label``, leave it (Streamlit takes a value on
    blur) and wait for the run that starts; the field then holds the text."""
    field = page.get_by_label(label)
    field.fill(text)
    field.press("Tab")
    idle(page)
    assert field.input_value() == text
