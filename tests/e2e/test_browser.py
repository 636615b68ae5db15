"""The investigator's main path in a real browser (chromium via Playwright) against
``sybilscope ui``: triage -> top cluster -> double-click expands a node in the graph -> click a
link for its evidence -> attribute to a new operator -> audit trail -> reload, still there."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import canvas_frame, fill_field, idle, settled

pytestmark = pytest.mark.e2e


def _graph_frame(page: Any) -> Any:
    """The canvas's frame, drawn, and the app idle (see conftest.settled)."""
    frame = canvas_frame(page, timeout=120_000)
    settled(page, frame)
    return frame


def _count(frame: Any) -> int:
    return int(frame.evaluate("() => window.canvasView().nodes.length"))


def _click(page: Any, point: dict[str, float], double: bool = False) -> None:
    """Click a point of the canvas's frame (the frame is scrolled into view first)."""
    target = page.locator("iframe[src*='sybilscope_canvas']")
    (target.dblclick if double else target.click)(position={"x": point["x"], "y": point["y"]})


def test_investigation_path(page: Any, ui_url: str, shot: Any, e2e_world: dict[str, object]) -> None:
    page.goto(ui_url)
    page.get_by_role("heading", name="Triage", exact=True).wait_for()
    page.get_by_role("button", name="Open cluster").wait_for()
    shot("01-triage")

    # The queue is ranked by score, so the pre-selected cluster is the top one.
    page.get_by_role("button", name="Open cluster").click()
    heading = page.locator("h1", has_text="Cluster ")
    heading.wait_for()
    cluster_title = heading.inner_text()
    cluster_id = cluster_title.split("Cluster ", 1)[1].strip()
    frame = _graph_frame(page)
    shot("02-cluster")

    # Double-click a node on the canvas: the app expands it in place (by its first kind).
    target = frame.evaluate("() => window.canvasLoneNode(['Account', 'Group'])")
    assert target, "no account or group drawn"
    before = _count(frame)
    _click(page, frame.evaluate("(id) => window.canvasPoint(id)", target), double=True)
    page.get_by_text(f"expanded {target}").wait_for(timeout=120_000)
    frame.wait_for_function(f"() => window.canvasView().nodes.length > {before}", timeout=60_000)
    settled(page, frame)  # the expansion's redraw (and any refit) is over before a point is picked
    shot("03-expanded")

    # Click a LINKED edge: the evidence panel explains the pair.
    edge = frame.evaluate("() => window.canvasLoneEdge('LINKED')")
    if not edge:
        pytest.fail("no LINKED edge on screen after the expansion")
    _click(page, edge)
    page.get_by_text("Link weight").wait_for()
    page.get_by_text("Shared infrastructure").wait_for()
    assert page.get_by_text("↔").count() >= 1
    shot("04-link-evidence")

    page.get_by_role("tab", name="Timeline").click()
    page.get_by_text("Onsets").wait_for()
    shot("04b-timeline")

    # Attribute the cluster to a new operator with a rationale.
    page.get_by_role("tab", name="Case & attribution").click()
    idle(page)
    fill_field(page, "New operator name (when creating one)", "E2E Distill Ops")
    fill_field(page, "Attribution rationale", "Shared proxy exit, one card fingerprint and one CoT template across members")
    page.get_by_role("button", name="Attribute", exact=True).click()
    page.get_by_text("Attribution recorded").wait_for()
    page.get_by_text("E2E Distill Ops").first.wait_for()
    shot("05-attributed")

    # The audit trail shows it, and still does after a reload.
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_role("heading", name="Audit trail", exact=True).wait_for()
    entry = page.get_by_text(f"Cluster:{cluster_id}").first
    entry.wait_for()
    page.locator("td[role=gridcell]", has_text="operator_id: op-e2e-distill-ops").first.wait_for(state="attached")
    shot("06-audit")
    page.reload()
    page.get_by_role("heading", name="Audit trail", exact=True).wait_for()
    page.get_by_text(f"Cluster:{cluster_id}").first.wait_for()
    page.goto(f"{ui_url}/cluster?cluster={cluster_id}")
    page.get_by_role("heading", name=f"Cluster {cluster_id}", exact=True).wait_for()
    page.get_by_text("E2E Distill Ops").first.wait_for()
    # The reloaded view draws the attribution in the graph too: the new operator's node.
    frame = _graph_frame(page)
    frame.wait_for_function("() => window.canvasView().nodes.some(n => n.id === 'Operator|op-e2e-distill-ops')", timeout=60_000)
    shot("07-after-reload")


def test_search_and_path(page: Any, ui_url: str, shot: Any, e2e_world: dict[str, object]) -> None:
    from pathlib import Path

    from graph.schema import Rel
    from graph.stores.embedded import EmbeddedStore

    store = EmbeddedStore(Path(str(e2e_world["workspace"])) / "embedded")
    link = next(iter(store.iter_relationships(Rel.LINKED)))
    ip = next(iter(store.iter_relationships(Rel.USED_IP)))
    page.goto(f"{ui_url}/search")
    page.get_by_role("heading", name="Search & paths", exact=True).wait_for()
    box = page.get_by_label("Account id, IP or network, payment id", exact=False)
    box.fill(ip.end[1])
    box.press("Enter")
    page.get_by_text(f"Searched '{ip.end[1]}' as IP").wait_for()
    page.get_by_text("Accounts 1–").wait_for()
    page.get_by_label("From account").fill(link.start[1])
    page.get_by_label("To account").fill(link.end[1])
    page.get_by_role("button", name="Find path").click()
    page.get_by_text(f"hop: {link.start[1]} → {link.end[1]}").or_(page.get_by_text(f"hops: {link.start[1]} → {link.end[1]}")).first.wait_for()
    page.locator("[data-testid='stDataFrame']").nth(1).wait_for()
    page.wait_for_timeout(1000)  # let the data grid paint before the screenshot
    shot("08-search-path")
