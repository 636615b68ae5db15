"""The standalone HTML graph opens in a real headless Chromium with no network at all: every
request the page makes is recorded and must stay on file:// (or data:/blob:), and the graph
must actually render its nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graph.export.run import export_graph
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import build_world

LOCAL_SCHEMES = ("file://", "data:", "blob:", "about:")

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("redact", [False, True])
def test_html_graph_opens_offline_in_chromium(tmp_path: Path, redact: bool, browser: Any) -> None:
    """Uses the suite's one Chromium (tests/e2e/conftest.py): Playwright's sync API allows one
    running instance per process."""
    store = EmbeddedStore(None)
    build_world(store)
    result = export_graph(store, tmp_path / "graph.html", "html", cluster_ids=["c-1"], redact=redact, degree_cap=50)
    requests: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(result.path.resolve().as_uri(), wait_until="load")
        page.wait_for_function("typeof network !== 'undefined' && network.body.data.nodes.length > 0", timeout=20_000)
        shown = page.evaluate("network.body.data.nodes.length")
        edges = page.evaluate("network.body.data.edges.length")
        canvas = page.locator("#mynetwork canvas").count()
    finally:
        context.close()
    remote = [u for u in requests if not u.startswith(LOCAL_SCHEMES)]
    assert remote == [], f"the page reached out to {remote}"
    assert failed == [] and errors == []
    assert shown == result.nodes and edges == result.relationships
    assert canvas == 1
