"""The UI in a real browser (Debian's chromium through Playwright, fixtures from
tests/e2e/conftest.py): every request the page makes stays on 127.0.0.1, a hostile note is
shown as text, and the identity-header mode refuses a browser that has no proxy secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from graph.stores.embedded import EmbeddedStore
from tests.e2e.conftest import browser, page  # noqa: F401 - fixtures shared with the e2e suite
from tests.security.ui_launch import RunningUI, running_ui, ui_environment
from tests.worlds.ui import build_world

pytestmark = pytest.mark.e2e

EVIL = "evil.example"
NOTE = (
    f"Pixel ![x](http://{EVIL}/pixel.png) raw <img src=\"http://{EVIL}/raw.png\" onerror=\"window.__pwned=2\"> "
    f"<script>window.__pwned=1</script> [proof](http://{EVIL}/link) http://{EVIL}/bare"
)
SECRET = "pr0xy-s3cret-for-tests"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("ui-security-ws")
    build_world(EmbeddedStore(workspace / "embedded"), workspace, ring=6)
    return workspace


@pytest.fixture(scope="module")
def single_user_ui(world: Path) -> Iterator[RunningUI]:
    with running_ui(world, name="browser") as ui:
        yield ui


@pytest.fixture(scope="module")
def proxied_ui(world: Path) -> Iterator[RunningUI]:
    env = ui_environment(SYBILSCOPE_UI_IDENTITY_HEADER="X-Forwarded-User", SYBILSCOPE_UI_PROXY_SECRET=SECRET)
    with running_ui(world, env=env, name="proxied") as ui:
        yield ui


def _off_machine(urls: list[str]) -> list[str]:
    """The URLs that would leave the machine (data:, blob: and about: never do)."""
    return [u for u in urls if urlparse(u).scheme not in {"data", "blob", "about"}
            and urlparse(u).hostname not in {"127.0.0.1", "localhost", "::1"}]


def test_every_request_stays_local_and_notes_are_text(page: Any, single_user_ui: RunningUI) -> None:  # noqa: F811
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda ws: requested.append(ws.url.replace("ws://", "http://", 1)))

    page.goto(single_user_ui.url)
    page.get_by_role("heading", name="Triage", exact=True).wait_for()
    page.get_by_role("button", name="Open cluster").click()
    page.locator("h1", has_text="Cluster ").wait_for()
    page.frame_locator("iframe[src*='sybilscope_canvas']").locator("#mynetwork canvas").first.wait_for()

    page.get_by_role("tab", name="Case & attribution").click()
    page.get_by_label("Add a note").fill(NOTE)
    page.get_by_role("button", name="Save note").click()
    page.get_by_text("Note saved").wait_for()
    page.reload()  # as the colleague opening the cluster later
    page.locator("h1", has_text="Cluster ").wait_for()
    page.get_by_role("tab", name="Case & attribution").click()
    page.get_by_text("Pixel").first.wait_for()
    page.wait_for_timeout(1000)
    _assert_nothing_evil(page, requested)
    shown = page.get_by_test_id("stText").get_by_text("Pixel ![x]")
    shown.wait_for()
    assert shown.inner_text().strip() == NOTE  # the note as typed, nothing rendered from it
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_role("heading", name="Audit trail", exact=True).wait_for()
    # the trail lists the note in its data grid (plain text cells drawn on a canvas)
    page.get_by_test_id("stDataFrame").first.wait_for()
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="Search & paths").click()
    page.get_by_role("heading", name="Search & paths", exact=True).wait_for()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)  # late fetches (icons, fonts) get their chance to show up

    assert requested, "the request log works"
    _assert_nothing_evil(page, requested)


def _assert_nothing_evil(page: Any, requested: list[str]) -> None:  # noqa: F811
    assert _off_machine(requested) == [], sorted(set(_off_machine(requested)))
    assert page.evaluate("() => window.__pwned") is None
    for frame in page.frames:
        assert frame.locator(f"img[src*='{EVIL}'], a[href*='{EVIL}'], script:has-text('__pwned')").count() == 0


def _open(browser: Any, url: str, headers: dict[str, str]) -> tuple[Any, Any]:  # noqa: F811
    context = browser.new_context(extra_http_headers=headers)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(url)
    return context, pg


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-User": "mallory"},
    {"X-Forwarded-User": "mallory", "X-Sybilscope-Proxy-Secret": "guess"},
], ids=["no-secret", "wrong-secret"])
def test_identity_header_without_the_secret_is_refused(browser: Any, proxied_ui: RunningUI, headers: dict[str, str]) -> None:  # noqa: F811
    context, pg = _open(browser, proxied_ui.url, headers)
    try:
        pg.get_by_text("Refused: open Sybilscope through the authenticating proxy.").wait_for()
        pg.wait_for_timeout(1000)
        assert pg.get_by_role("heading").count() == 0
        assert pg.locator("[data-testid='stSidebar']").count() == 0
        assert "mallory" not in pg.inner_text("body")
        pg.goto(proxied_ui.url + "/audit")  # a deep link gets the same refusal
        pg.get_by_text("Refused: open Sybilscope").wait_for()
        assert pg.get_by_role("heading", name="Audit trail").count() == 0
    finally:
        context.close()


def test_identity_header_with_the_secret_signs_in(browser: Any, proxied_ui: RunningUI) -> None:  # noqa: F811
    context, pg = _open(browser, proxied_ui.url, {"X-Forwarded-User": "dana", "X-Sybilscope-Proxy-Secret": SECRET})
    try:
        pg.get_by_role("heading", name="Triage", exact=True).wait_for()
        pg.get_by_text("Investigator: dana").wait_for()
    finally:
        context.close()
