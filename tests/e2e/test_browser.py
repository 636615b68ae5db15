"""The investigator's main path in a real browser (chromium via Playwright) against
``sybilscope ui``: triage -> top cluster -> double-click expands a node in the graph -> click a
link for its evidence -> attribute to a new operator -> audit trail -> reload, still there."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

CY = "document.getElementById('cy')._cyreg.cy"


def _graph_frame(page: Any) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "st_link_analysis" in frame.url:
                try:
                    if frame.evaluate(f"() => !!({CY}) && {CY}.nodes().length > 0"):
                        return frame
                except Exception:  # noqa: BLE001 - frame still loading
                    pass
        page.wait_for_timeout(500)  # (time.sleep would not let Playwright see new frames)
    raise AssertionError("the graph component did not render")


def _settle(frame: Any) -> None:
    """Wait until the layout animation stops moving nodes."""
    last = None
    for _ in range(40):
        now = frame.evaluate(f"() => {CY}.nodes().map(n => [Math.round(n.position('x')), Math.round(n.position('y'))])")
        if now == last:
            return
        last = now
        frame.page.wait_for_timeout(400)


def _page_point(page: Any, frame: Any, rendered: dict[str, float]) -> tuple[float, float]:
    box = page.locator("iframe[src*='st_link_analysis'], iframe[title*='st_link_analysis']").first.bounding_box()
    rect = frame.evaluate("() => { const r = document.getElementById('cy').getBoundingClientRect(); return {x: r.left, y: r.top}; }")
    return box["x"] + rect["x"] + rendered["x"], box["y"] + rect["y"] + rendered["y"]


def _focus(frame: Any, pick_js: str) -> dict[str, Any]:
    """Centre and zoom the viewport on the element ``pick_js`` returns (as an analyst would
    before clicking in a dense graph); returns its id, on-screen point and the node count."""
    result: dict[str, Any] = frame.evaluate(
        f"""() => {{
            const cy = {CY};
            const el = ({pick_js})(cy);
            if (!el) return null;
            cy.zoom(1.6);
            cy.center(el);
            const pos = el.isNode() ? el.renderedPosition() : el.renderedMidpoint();
            return {{id: el.id(), pos: pos, count: cy.nodes().length}};
        }}"""
    )
    return result


# The least-connected account on screen (or a group node when the cluster opens grouped).
PICK_ACCOUNT = """cy => cy.nodes().filter(n => n.data('kind') === 'Account').sort((a, b) => a.degree() - b.degree())[0]
                      || cy.nodes().filter(n => n.data('label') === 'Group')[0]"""
# A LINKED edge whose midpoint is farthest from every node, so the click cannot land on one.
PICK_LINK = """cy => {
    let best = null, bestGap = -1;
    cy.edges().filter(e => e.data('label') === 'LINKED').slice(0, 300).forEach(e => {
        const m = e.midpoint();
        let gap = Infinity;
        cy.nodes().forEach(n => { const p = n.position(); gap = Math.min(gap, Math.hypot(p.x - m.x, p.y - m.y)); });
        if (gap > bestGap) { bestGap = gap; best = e; }
    });
    return best;
}"""


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
    _settle(frame)
    shot("02-cluster")

    # Double-click a node inside the graph canvas: the app expands its neighbours in place.
    target = _focus(frame, PICK_ACCOUNT)
    x, y = _page_point(page, frame, target["pos"])
    page.mouse.dblclick(x, y)
    frame.wait_for_function(f"() => {CY}.nodes().length > {target['count']}", timeout=30_000)
    page.get_by_text(f"expanded {target['id']}").wait_for()
    _settle(frame)
    frame.evaluate(f"() => {CY}.fit()")
    shot("03-expanded")

    # Click a LINKED edge: the evidence panel explains the pair.
    if frame.evaluate(f"() => {CY}.edges().filter(e => e.data('label') === 'LINKED').length") == 0:
        pytest.fail("no LINKED edge on screen after the expansion")
    edge = _focus(frame, PICK_LINK)
    x, y = _page_point(page, frame, edge["pos"])
    page.mouse.click(x, y)
    page.get_by_text("Link weight").wait_for()
    page.get_by_text("Shared infrastructure").wait_for()
    assert page.get_by_text("↔").count() >= 1
    shot("04-link-evidence")

    page.get_by_role("tab", name="Timeline").click()
    page.get_by_text("Onsets").wait_for()
    shot("04b-timeline")

    # Attribute the cluster to a new operator with a rationale.
    page.get_by_role("tab", name="Case & attribution").click()
    page.get_by_label("New operator name (when creating one)").fill("E2E Distill Ops")
    page.get_by_label("Attribution rationale").fill("Shared proxy exit, one card fingerprint and one CoT template across members")
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
    frame.wait_for_function(f"() => {CY}.nodes().some(n => n.id() === 'Operator|op-e2e-distill-ops')")
    _settle(frame)
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
