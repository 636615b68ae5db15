"""The cluster canvas in a real browser, on the big generated world (issue 15, point 2).

The world is the session's ``big_world`` (tests/e2e/conftest.py: ``generate --scale small`` →
``load`` → ``detect``, then the analyst's merges until one flagged cluster holds at least 500
accounts, so the canvas opens on a cluster above the group threshold; its busiest IP is used
by more accounts than the default ``ui_degree_cap``), served with the default settings. The
tests read what the canvas draws from the component itself (``window.canvasView()`` in its
frame: the vis-network nodes and edges on screen and the zoom) and click on the nodes it
reports, then read the Streamlit page beside it.

Issue 15's point 2, test by test (screenshots in test-artifacts/e2e/):

- evidence graph, value nodes sized by members and coloured by kind, legend, labelled groups
  sized by count, readable labels, full width: ``test_canvas_draws_the_evidence_…`` (20-…);
- filter by link weight: ``test_weight_filter_removes_links`` (21-…);
- the canvas selection drives the evidence panel and the picker, expand one kind at a time:
  ``test_click_selects_and_expand_adds_only_the_chosen_kind`` (22-…, 23-…);
- double-click opens a group, a selected account drives the pair pickers:
  ``test_double_click_opens_a_group_and_an_account_drives_the_pickers`` (24-…).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import canvas_frame, settled

pytestmark = pytest.mark.e2e

WAIT = 180_000  # ms: two shared cores, a 500-account evidence graph on each first visit
GROUP_CAPTION = re.compile(r"^\d+ accounts · (IP address|network|payment instrument|BIN \+ billing pattern|device|"
                           r"client fingerprint|e-mail domain|prompt template) \S+")


@pytest.fixture(scope="module")
def app_url(big_url: str) -> str:
    return big_url


def _canvas(page: Any) -> Any:
    """The canvas's frame, once it has drawn and the app is idle."""
    frame = canvas_frame(page, timeout=WAIT)
    settled(page, frame, timeout=WAIT)
    return frame


def _view(frame: Any) -> dict[str, Any]:
    return dict(frame.evaluate("() => { const v = window.canvasView(); return {nodes: v.nodes, edges: v.edges, scale: v.scale}; }"))


def _open(page: Any, app_url: str, cluster: str) -> Any:
    page.goto(f"{app_url}/cluster?cluster={cluster}")
    page.get_by_text(f"Cluster {cluster}").first.wait_for(timeout=WAIT)
    frame = _canvas(page)
    page.locator("iframe[src*='sybilscope_canvas']").scroll_into_view_if_needed()
    return frame


def _shot(page: Any, shot: Any, name: str) -> None:
    """A screenshot of the page down to the evidence panel: Streamlit scrolls inside its main
    block, so the window is made as tall as that block's content first (at most 4,000 px)."""
    height = page.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll('[data-testid=stMain], section')).map(e => e.scrollHeight))")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 40, size["height"]), 4000)})
    page.wait_for_timeout(1500)  # the frame repaints at the new size
    shot(name)
    page.set_viewport_size(size)


def _selectbox(page: Any, label: str) -> Any:
    """The input of the Streamlit selectbox with this label (it shows the chosen option)."""
    return page.locator("[data-testid='stSelectbox']").filter(has=page.get_by_text(label, exact=True)).locator("input")


def _click_node(page: Any, frame: Any, node_id: str, double: bool = False) -> None:
    """Click where the canvas draws ``node_id``: once the app is idle and the canvas still,
    with the frame scrolled to the top of the window so the whole canvas is on screen (a
    rerun may have moved it, and a point below the window would hit the page instead)."""
    settled(page, frame, timeout=WAIT)
    target = page.locator("iframe[src*='sybilscope_canvas']")
    target.evaluate("el => el.scrollIntoView({block: 'start'})")
    point = frame.evaluate("(id) => window.canvasPoint(id)", node_id)
    if double:
        target.dblclick(position=point)
    else:
        target.click(position=point)


def _wait_drawn(frame: Any, test: str, timeout: float = WAIT) -> None:
    """Wait until the canvas's drawn nodes/edges satisfy a JavaScript test of ``v``."""
    frame.wait_for_function(f"() => {{ const v = window.canvasView(); return {test}; }}", timeout=timeout)


def test_canvas_draws_the_evidence_with_legend_sizes_colours_and_named_groups(
        page: Any, app_url: str, big_world: dict[str, Any], shot: Any) -> None:
    frame = _open(page, app_url, big_world["cluster"])
    view = _view(frame)
    # The legend names the kinds drawn, with counts; crowded kinds start hidden and say so.
    legend = [t.strip() for t in frame.locator("#legend .legend-item").all_inner_texts()]
    assert any(t.startswith("accounts sharing a value (") for t in legend), legend
    assert any(t.startswith(("IP address (", "network (")) for t in legend), legend
    # Value nodes differ in size (members using them) and colour (kind).
    values = [n for n in view["nodes"] if n["kind"] not in ("Account", "Group", "Cluster", "Operator", "Indicator", "Hub")]
    assert len({n["size"] for n in values}) >= 3 and len({n["color"] for n in values}) >= 3
    biggest = max(values, key=lambda n: n["members"])
    smallest = min(values, key=lambda n: n["members"])
    assert biggest["size"] > smallest["size"] and biggest["members"] > smallest["members"]
    # Groups are labelled with what their accounts share and sized by how many they are.
    groups = [n for n in view["nodes"] if n["kind"] == "Group"]
    assert len(groups) >= 3 and sum(1 for g in groups if GROUP_CAPTION.match(g["label"])) >= len(groups) - 1
    by_count = sorted(groups, key=lambda g: int(g["label"].split(" ", 1)[0]))
    assert by_count[-1]["size"] > by_count[0]["size"]
    # No account is drawn: the 500+ members are folded into the groups.
    assert not any(n["kind"] == "Account" for n in view["nodes"])
    # The most shared values' labels and the group labels read at the default zoom (at least 10 px).
    assert max(n["font"]["size"] for n in values) * view["scale"] >= 10
    assert max(g["font"]["size"] for g in groups) * view["scale"] >= 10
    # Full page width: the canvas spans the main column (no side panel over it).
    frame_box = page.locator("iframe[src*='sybilscope_canvas']").bounding_box()
    filters = page.locator("[data-testid='stHorizontalBlock']").filter(has=page.get_by_text("Minimum link weight")).first.bounding_box()
    assert frame_box["width"] >= 0.98 * filters["width"] and frame_box["width"] >= 0.7 * page.viewport_size["width"]
    _shot(page, shot, "20-canvas-groups")


def _open_a_group(page: Any, frame: Any) -> tuple[str, int]:
    """Double-click a group; returns it and how many accounts it opened into."""
    group = frame.evaluate("() => window.canvasLoneNode(['Group'])")
    assert group
    count = int(next(n for n in _view(frame)["nodes"] if n["id"] == group)["label"].split(" ", 1)[0])
    _click_node(page, frame, group, double=True)
    _wait_drawn(frame, f"v.nodes.filter(n => n.kind === 'Account').length >= {count}")
    return group, count


def test_weight_filter_removes_links(page: Any, app_url: str, big_world: dict[str, Any], shot: Any) -> None:
    frame = _open(page, app_url, big_world["cluster"])
    _open_a_group(page, frame)
    frame.locator("#edgekinds .edge-kind[data-type='LINKED']").wait_for(timeout=WAIT)
    before = _view(frame)["edges"]
    links = [e for e in before if e["type"] == "LINKED"]
    assert links, "an opened group draws its accounts' links"
    weights = sorted(float(e["weight"]) for e in links)
    slider = page.get_by_role("slider").first  # "Minimum link weight"
    slider.focus()
    # Step the minimum up past the weakest drawn link (0.01 a key press).
    steps = int(round((weights[0] + 0.01) * 100))
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
    _wait_drawn(frame, f"v.edges.filter(e => e.type === 'LINKED').length < {len(links)}")
    after = _view(frame)["edges"]
    kept = [e for e in after if e["type"] == "LINKED"]
    assert kept is not None and len(kept) < len(links)
    assert all(float(e["weight"]) >= steps / 100 - 1e-9 for e in kept)
    # Other kinds of edges are untouched by the weight filter.
    assert Counter(e["type"] for e in after if e["type"] != "LINKED") == Counter(e["type"] for e in before if e["type"] != "LINKED")
    page.get_by_text("hidden by the filters").first.wait_for(timeout=WAIT)
    _shot(page, shot, "21-canvas-weight-filter")


def test_click_selects_and_expand_adds_only_the_chosen_kind(page: Any, app_url: str, big_world: dict[str, Any], shot: Any) -> None:
    frame = _open(page, app_url, big_world["cluster"])
    target = frame.evaluate("() => window.canvasLoneNode(['IP', 'Network'])")
    assert target, "an IP or network node is drawn"
    label, key = target.split("|", 1)
    _click_node(page, frame, target)
    # The click drives the evidence panel and the picker.
    page.get_by_text(f"{label} {key}", exact=False).first.wait_for(timeout=WAIT)
    expect(_selectbox(page, "Selected node")).to_have_value(f"{key} [{label}]", timeout=WAIT)
    _shot(page, shot, "22-canvas-selected-value")
    before = _view(frame)
    before_ids = {e["id"] for e in before["edges"]}
    before_nodes = {n["id"] for n in before["nodes"]}
    kind = "USED_IP" if label == "IP" else "IN_NETWORK"
    box = _selectbox(page, "Expand by")
    if box.input_value() != kind:  # a node's first kind is chosen for it already
        box.click()
        page.get_by_role("option", name=kind, exact=True).click()
    expect(box).to_have_value(kind, timeout=WAIT)
    page.get_by_role("button", name="Expand", exact=True).click()
    page.get_by_text(f"expanded {target} by {kind}").first.wait_for(timeout=WAIT)
    _wait_drawn(frame, f"v.edges.length > {len(before['edges'])}")
    after = _view(frame)
    new_edges = [e for e in after["edges"] if e["id"] not in before_ids]
    assert new_edges and {e["type"] for e in new_edges} <= {kind, "HUB"}, Counter(e["type"] for e in new_edges)
    assert all(target in (e["from"], e["to"]) for e in new_edges)
    new_kinds = {n["kind"] for n in after["nodes"] if n["id"] not in before_nodes}
    assert new_kinds <= ({"Account", "Hub"} if kind == "USED_IP" else {"IP", "Hub"})
    _shot(page, shot, "23-canvas-expanded-one-kind")


def test_double_click_opens_a_group_and_an_account_drives_the_pickers(
        page: Any, app_url: str, big_world: dict[str, Any], shot: Any) -> None:
    frame = _open(page, app_url, big_world["cluster"])
    group, count = _open_a_group(page, frame)
    view = _view(frame)
    assert sum(1 for n in view["nodes"] if n["kind"] == "Account") == count
    assert group not in {n["id"] for n in view["nodes"]}
    account = frame.evaluate("() => window.canvasLoneNode(['Account'])")
    assert account
    _click_node(page, frame, account)
    key = account.split("|", 1)[1]
    page.get_by_text(f"Account {key}").first.wait_for(timeout=WAIT)
    # The pair pickers start from the selected account, not from a list of every member.
    expect(_selectbox(page, "Selected node")).to_have_value(f"{key} [Account]", timeout=WAIT)
    expect(_selectbox(page, "Account A")).to_have_value(key, timeout=WAIT)
    # B is offered the accounts A is linked to or shares a value with, not every member.
    b_box = _selectbox(page, "Account B (linked or sharing a value with A, strongest first)")
    expect(b_box).not_to_have_value("", timeout=WAIT)
    _shot(page, shot, "24-canvas-group-opened-account-selected")
