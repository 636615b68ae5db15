"""The investigator's pivots and reading in a real browser, on the session's big generated world
(tests/e2e/conftest.py: a flagged cluster of at least 500 accounts, an IP used by more accounts
than the default ``ui_degree_cap``), served with the default settings.

Issue 15's numbered points, test by test (screenshots in test-artifacts/e2e/):

- 1, pivot from any value: ``test_point1_search_pivots_from_any_value_to_every_account`` (10-…,
  11-…); a cluster link opens that cluster, not the session's: ``test_point1_a_cluster_link_opens_that_cluster`` (19-…);
- 2, the canvas: tests/e2e/test_canvas.py (20-… to 24-…);
- 3, merge and split recompute and survive detection: tests/e2e/test_merge_split.py (30-… to 33-…);
- 4, attribution's rationale, who and when; the audit trail: ``test_point4_attribution_shows_rationale_who_and_when`` (12-… to 14b-…);
- 5, the evidence panel: ``test_point5_evidence_strongest_first_and_why_linked`` (15-…);
- 6, triage at a glance: ``test_point6_triage_flagged_first_at_a_glance`` (16-…);
- 7, saved-query graphs and unknown accounts: ``test_point7_saved_query_graph_labels_edges_and_names_unknown_accounts``
  (17-…, 18-…); no request leaves the machine: ``test_point7_no_page_asks_another_host`` (18b-…).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import expect

from app.views.queries import GRAPH_NODE_LIMIT
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from tests.e2e import test_canvas as canvas_ui
from tests.e2e.conftest import REQUESTS, fill_field, idle

pytestmark = pytest.mark.e2e

WAIT = canvas_ui.WAIT
PAGE_SIZE = 50  # the pivot's first page size (app/views/search.py PAGE_SIZES[0])


@pytest.fixture(scope="module")
def world_store(big_world: dict[str, Any]) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(embedded_dir(Path(big_world["workspace"])))
    yield store
    store.close()


@pytest.fixture(scope="module")
def app_url(big_url: str) -> str:
    return big_url


def _metric(page: Any, label: str) -> str:
    """The value shown by the metric with this label."""
    box = page.locator("[data-testid='stMetric']").filter(has=page.get_by_text(label, exact=True)).first
    return str(box.locator("[data-testid='stMetricValue']").inner_text()).strip()


def _whole_page(page: Any, shot: Any, name: str) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main block, so the window
    is made as tall as that block's content first (at most 6,000 px), then put back."""
    height = page.evaluate(
        "() => Math.max(...Array.from(document.querySelectorAll('[data-testid=stMain], section')).map(e => e.scrollHeight))")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 40, size["height"]), 6000)})
    page.wait_for_timeout(1200)  # grids and iframes repaint at the new size
    shot(name)
    page.set_viewport_size(size)


def _grid_cell_point(page: Any, nth_frame: int, row: int, col_x: float = 40) -> tuple[float, float]:
    """A point inside a data-grid cell (the grid is drawn on a canvas): ``row`` 0 is the first
    data row, ``col_x`` pixels from the grid's left edge."""
    box = page.locator("[data-testid='stDataFrame']").nth(nth_frame).bounding_box()
    return box["x"] + col_x, box["y"] + 35 + 35 * row + 17


def test_point1_search_pivots_from_any_value_to_every_account(page: Any, app_url: str, shot: Any,
                                                              big_world: dict[str, Any], world_store: EmbeddedStore) -> None:
    ip, n, cap = big_world["busy_ip"], big_world["busy_ip_accounts"], big_world["cap"]
    assert n > cap > PAGE_SIZE  # busier than the degree cap, and more than one page

    page.goto(f"{app_url}/search?pivot=ip:{ip}")
    page.get_by_text(f"Searched '{ip}' as IP (as asked), found in the graph.").wait_for()
    page.get_by_text(f"Accounts 1–{PAGE_SIZE} of {n}, busiest first").wait_for()
    assert _metric(page, "Accounts") == f"{n:,}"
    # The drawing stops at the cap; the list does not.
    page.get_by_role("button", name=f"Draw IP {ip} with its {cap} busiest accounts").wait_for()
    page.wait_for_timeout(800)  # let the grid paint
    shot("10-pivot-busy-ip")
    # Paged: the last page ends on the last account.
    pages = -(-n // PAGE_SIZE)
    number = page.get_by_role("spinbutton", name="Page")
    number.fill(str(pages))
    number.press("Enter")
    page.get_by_text(f"Accounts {(pages - 1) * PAGE_SIZE + 1}–{n} of {n}, busiest first (page {pages} of {pages})").wait_for()
    page.wait_for_timeout(800)
    shot("10b-pivot-busy-ip-last-page")

    # A link in the table opens that account's pivot (in a new tab, the grid's way).
    point = _grid_cell_point(page, 0, row=0)
    page.mouse.move(*point)  # the grid arms a link on hover
    page.wait_for_timeout(300)
    with page.context.expect_page() as opened:
        page.mouse.click(*point)
    account_page = opened.value
    account_page.wait_for_load_state()
    assert "pivot=account:" in unquote(account_page.url)
    account_page.get_by_text("values this account uses").wait_for()
    account_page.close()

    # A card id, typed with the kind left to guess, is found as a payment id with its accounts.
    card, users = Counter(r.end[1] for r in world_store.iter_relationships(Rel.PAID_WITH)).most_common(1)[0]
    box = page.get_by_label("Account id, IP or network, payment id", exact=False)
    box.fill(card)
    box.press("Enter")
    page.get_by_text(f"Searched '{card}' as payment id (guessed from the value), found in the graph.").wait_for()
    page.get_by_text(f"Accounts 1–{min(users, PAGE_SIZE)} of {users}").wait_for()
    page.wait_for_timeout(800)
    shot("11-pivot-card")
    assert f"pivot=payment:{card}" in unquote(page.url)  # the pivot shown is in the address

    # A BIN and a prompt word find their cards and templates, and the accounts behind them.
    bin_ = next(n.props["card_bin"] for n in world_store.iter_nodes(Label.PAYMENT_METHOD) if n.key == card)
    box.fill(str(bin_))
    box.press("Enter")
    page.get_by_text(f"Searched '{bin_}' as card BIN (guessed from the value)").wait_for()
    page.get_by_text("cards with this BIN").wait_for()
    assert int(_metric(page, "Accounts").replace(",", "")) >= users
    box.fill("step by step")
    box.press("Enter")
    page.get_by_text("Searched 'step by step' as prompt text (guessed from the value)").wait_for()
    page.get_by_text("templates matching this text").wait_for()
    assert int(_metric(page, "Accounts").replace(",", "")) > 0
    page.wait_for_timeout(800)
    shot("11b-pivot-prompt")


def test_point1_a_cluster_link_opens_that_cluster(page: Any, app_url: str, shot: Any,
                                                  big_world: dict[str, Any], world_store: EmbeddedStore) -> None:
    """A link naming a cluster opens that cluster, even when the session is on another one."""
    big, other = big_world["cluster"], big_world["other_flagged"]
    page.goto(f"{app_url}/cluster?cluster={other}")
    page.get_by_role("heading", name=f"Cluster {other}", exact=True).wait_for()
    member = next(r.start[1] for r in world_store.iter_relationships(Rel.MEMBER_OF) if r.end[1] == big)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Search", exact=False).first.click()
    page.get_by_role("heading", name="Search & paths", exact=True).wait_for()
    idle(page)  # a value typed while the page still runs can be redrawn empty
    box = page.get_by_label("Account id, IP or network, payment id", exact=False)
    box.fill(member)
    box.press("Enter")
    page.get_by_text(f"Searched '{member}' as account").wait_for()
    page.get_by_role("link", name=f"Member of cluster {big}").click()
    page.get_by_role("heading", name=f"Cluster {big}", exact=True).wait_for()
    page.wait_for_url(f"**/cluster?cluster={big}")
    canvas_ui._canvas(page)
    shot("19-cluster-link-opens-that-cluster")


def test_point4_attribution_shows_rationale_who_and_when(page: Any, app_url: str, shot: Any, big_world: dict[str, Any]) -> None:
    cluster_id = big_world["cluster"]
    page.goto(f"{app_url}/cluster?cluster={cluster_id}")
    page.get_by_role("heading", name=f"Cluster {cluster_id}", exact=True).wait_for(timeout=WAIT)
    page.get_by_role("tab", name="Case & attribution").click()
    rationale = "Same proxy exit and one virtual card across members; prompts are the same CoT template."
    idle(page)
    fill_field(page, "New operator name (when creating one)", "Pivot Test Ops")
    fill_field(page, "Attribution rationale", rationale)
    page.get_by_role("button", name="Attribute", exact=True).click()
    page.get_by_text("Attribution recorded").wait_for()
    page.get_by_role("tab", name="Case & attribution").click()
    page.get_by_text(rationale).first.wait_for()
    page.get_by_text("Attributed to Pivot Test Ops").wait_for()
    assert _metric(page, "Confidence") == "0.70"
    page.get_by_text("by root").or_(page.get_by_text("by analyst")).first.wait_for()
    _whole_page(page, shot, "12-attribution-case-panel")

    page.goto(app_url)  # triage is the app's main page
    page.get_by_role("button", name="Open cluster").wait_for()
    page.wait_for_timeout(800)
    shot("13-triage-attribution")

    page.goto(f"{app_url}/audit")
    page.get_by_role("heading", name="Audit trail", exact=True).wait_for()
    since = page.get_by_role("textbox", name="Since")
    since.fill("yesterday")
    since.press("Enter")
    page.get_by_text("since ").first.wait_for()
    assert page.get_by_text("0 of").count() == 0  # today's attribution is after yesterday
    # The table's change cell and the event's before/after rows say what was decided.
    page.locator("td[role=gridcell]", has_text="op-pivot-test-ops").first.wait_for(state="attached")
    page.get_by_text(f"attribute · Cluster:{cluster_id}").first.click()
    page.locator("[data-testid='stExpanderDetails']").first.wait_for()
    page.locator("td[role=gridcell]", has_text=rationale).first.wait_for(state="attached")
    page.wait_for_timeout(800)
    shot("14-audit-diff")
    since.fill("last tuesday")
    since.press("Enter")
    page.get_by_text("Since: cannot read 'last tuesday' as a time").wait_for()
    shot("14b-audit-bad-date")


def test_point5_evidence_strongest_first_and_why_linked(page: Any, app_url: str, shot: Any, big_world: dict[str, Any]) -> None:
    # The big cluster opens as groups: open one, pick an account on the canvas, and the pair
    # pickers start from it.
    frame = canvas_ui._open(page, app_url, big_world["cluster"])
    canvas_ui._open_a_group(page, frame)
    account = frame.evaluate("() => window.canvasLoneNode(['Account'])")
    assert account
    canvas_ui._click_node(page, frame, account)
    key = account.split("|", 1)[1]
    expect(canvas_ui._selectbox(page, "Account A")).to_have_value(key, timeout=WAIT)
    page.get_by_role("button", name="Show evidence").click()
    page.get_by_text(f"{key} ↔").first.wait_for(timeout=WAIT)
    verdict = page.get_by_text("linked").filter(has_text="directly").first
    verdict.wait_for()
    text = str(verdict.inner_text())
    # The two cases read apart: a direct link with its weight, or no direct link but shared values.
    assert ("The detector linked" in text and "weight" in text) or "did not link" in text or "No direct link" in text
    assert page.get_by_text("(0)").count() == 0  # no empty sections
    assert page.get_by_text("Source rows for").count() == 0
    page.get_by_text("Shared infrastructure").first.wait_for()
    _whole_page(page, shot, "15-evidence-pair")


def test_point6_triage_flagged_first_at_a_glance(page: Any, app_url: str, shot: Any, world_store: EmbeddedStore) -> None:
    flagged = sum(1 for n in world_store.iter_nodes(Label.CLUSTER) if n.props.get("flagged"))
    total = sum(1 for _ in world_store.iter_nodes(Label.CLUSTER))
    page.goto(app_url)
    page.get_by_role("button", name="Open cluster").wait_for()
    page.get_by_text("Showing flagged clusters only").wait_for()
    assert _metric(page, "Shown") == str(flagged)
    header = page.locator("[data-testid='stDataFrame']").last
    # Operator and suggestion are in the visible part of the table, not scrolled away.
    page.wait_for_timeout(800)
    shot("16-triage-flagged")
    assert header.bounding_box()["width"] > 0
    page.get_by_test_id("stSidebarUserContent").get_by_text("Flagged only").click()
    page.get_by_text("Showing flagged clusters only").wait_for(state="detached")
    assert int(_metric(page, "Shown")) >= flagged and total >= flagged
    page.wait_for_timeout(800)
    shot("16b-triage-all")


def _run_query(page: Any, label: str, values: dict[str, str]) -> None:
    """Pick a saved query, fill its form once the page has redrawn it (a value typed while the
    page still runs can be redrawn empty), and run it."""
    page.get_by_role("combobox", name="Query").click()
    page.get_by_role("option", name=label).click()
    idle(page)
    for name, value in values.items():
        field = page.get_by_label(name)
        field.fill(value)
        assert field.input_value() == value
    run = page.get_by_role("button", name="Run")
    for _ in range(40):  # the previous query's form lingers for a moment
        if run.count() == 1:
            break
        page.wait_for_timeout(250)
    run.click()


def _query_frame(page: Any) -> Any:
    for _ in range(60):
        for frame in page.frames:
            try:
                if frame.evaluate("() => typeof network !== 'undefined' && network.body.data.nodes.length > 0"):
                    return frame
            except Exception:  # noqa: BLE001 - frame still loading
                pass
        page.wait_for_timeout(500)
    raise AssertionError("the query graph did not render")


def test_point7_saved_query_graph_labels_edges_and_names_unknown_accounts(page: Any, app_url: str, shot: Any,
                                                                          big_world: dict[str, Any], world_store: EmbeddedStore) -> None:
    ip, n = big_world["busy_ip"], big_world["busy_ip_accounts"]
    page.goto(f"{app_url}/queries")
    page.get_by_role("heading", name="Saved queries").wait_for()
    _run_query(page, "[infrastructure] Accounts on an IP", {"ip (string)": ip})
    page.get_by_text(f"{n} rows").wait_for(timeout=WAIT)
    frame = _query_frame(page)
    nodes = frame.evaluate("() => network.body.data.nodes.get().map(x => x.id)")
    labels = frame.evaluate("() => network.body.data.edges.get().map(e => e.label)")
    assert f"IP:{ip}" in nodes and len(nodes) == min(n + 1, GRAPH_NODE_LIMIT)
    assert labels and "USED_IP" in labels and all(labels)
    bar = frame.evaluate("() => { const b = document.getElementById('loadingBar'); return b ? getComputedStyle(b).display : 'none'; }")
    assert bar == "none"
    # vis-network draws once its layout has stabilised (pyvis's hidden progress text says 100%).
    frame.wait_for_function("() => { const t = document.getElementById('text'); return t !== null && t.innerHTML === '100%'; }",
                            timeout=WAIT)
    page.wait_for_timeout(1000)
    _whole_page(page, shot, "17-query-graph")

    known = next(iter(world_store.iter_nodes(Label.ACCOUNT))).key
    _run_query(page, "[paths] Path between two accounts through shared infrastructure",
               {"from_account (string)": known, "to_account (string)": "acct-nobody"})
    page.get_by_text("Unknown account 'acct-nobody'").wait_for()
    assert page.get_by_text(f"Unknown account '{known}'").count() == 0
    shot("18-query-unknown-account")


LOCAL = ("data:", "blob:", "about:")


def test_point7_no_page_asks_another_host(page: Any, app_url: str, shot: Any, big_world: dict[str, Any]) -> None:
    """No page asks any host but the app's own server (fonts and icons included): every request
    the browser tests of this run made so far (tests/e2e/conftest.py records them: triage, the
    canvas's frame, the pivots, the saved-query graph, merge and split, the audit trail) and
    those of the pages visited here."""
    page.goto(app_url)
    page.get_by_role("button", name="Open cluster").wait_for()
    page.goto(f"{app_url}/audit")
    page.get_by_role("heading", name="Audit trail", exact=True).wait_for()
    page.goto(f"{app_url}/export")
    page.get_by_role("heading", name="Export", exact=True).wait_for()
    idle(page)
    page.get_by_role("button", name="Prepare export").wait_for()
    page.wait_for_timeout(1500)  # late requests (fonts, icons) of the last page
    shot("18b-export-no-outside-request")
    asked = REQUESTS
    elsewhere = sorted({u for u in asked if not u.startswith(LOCAL) and urlsplit(u).hostname not in ("127.0.0.1", "localhost")})
    assert any("/audit" in u for u in asked) and elsewhere == [], f"the app asked other hosts: {elsewhere}"
