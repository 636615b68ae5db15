"""The standalone HTML graph opens in a real headless Chromium with no network at all: every
request the page makes is recorded and must stay on file:// (or data:/blob:), and the graph
must actually render its nodes; a click on a link shows its evidence in the side panel, and a
1,000-account cluster is interactive. Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from graph.export.run import export_graph
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from tests.e2e.conftest import ARTIFACTS
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


# The point along an edge where it alone is under the pointer (no node, no other edge), in page
# coordinates: where a person would click to pick that edge.
_EDGE_POINT = """(j) => {
  var e = DATA.edges[j], p = network.getPositions([e[0], e[1]]), a = p[e[0]], b = p[e[1]];
  var box = document.getElementById('mynetwork').getBoundingClientRect();
  for (var f = 0.5, k = 0; k < 40; k++, f = 0.5 + (k % 2 ? 1 : -1) * Math.ceil(k / 2) * 0.02) {
    var dom = network.canvasToDOM({x: a.x + (b.x - a.x) * f, y: a.y + (b.y - a.y) * f});
    if (network.getNodeAt(dom) === undefined && network.getEdgeAt(dom) === j)
      return {x: dom.x + box.left, y: dom.y + box.top};
  }
  return null;
}"""


def _edge_between(page: Any, kind: str, a: str, b: str) -> int:
    """The index of the ``kind`` edge between the nodes titled ``…: a`` and ``…: b``."""
    return int(page.evaluate(
        """([kind, a, b]) => DATA.edges.findIndex(e => DATA.types[e[2]][0] === kind
             && DATA.nodeDetails[e[0]][0].endsWith(': ' + a) && DATA.nodeDetails[e[1]][0].endsWith(': ' + b))""",
        [kind, a, b]))


def test_clicking_a_link_shows_its_evidence(tmp_path: Path, browser: Any) -> None:
    """The evidence graph of c-1 opens, becomes interactive, and a click on the link between
    acct-a1 and acct-a2 shows its reasons in the side panel."""
    store = EmbeddedStore(None)
    build_world(store)
    result = export_graph(store, tmp_path / "graph.html", "html", cluster_ids=["c-1"], degree_cap=50)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(result.path.resolve().as_uri(), wait_until="load")
        page.wait_for_function("window.evidenceReady === true", timeout=20_000)
        legend = page.inner_text("#legend")
        assert "member account (4)" in legend and "payment instrument (1)" in legend
        j = _edge_between(page, "LINKED", "acct-a1", "acct-a2")
        assert j >= 0
        point = page.evaluate(_EDGE_POINT, j)
        assert point is not None, "no point of the link is clear of other edges"
        page.mouse.click(point["x"], point["y"])
        page.wait_for_function("document.getElementById('panel-title').textContent === 'LINKED'", timeout=5_000)
        panel = page.inner_text("#panel")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "html-graph-link-evidence.png"))
    finally:
        context.close()
    assert errors == []
    assert "Why these accounts are linked" in panel
    assert "payment/shared_payment: PaymentMethod pay-1 (shared by 3 accounts, weight 0.8)" in panel
    assert "network/shared_ip: IP 203.0.113.7" in panel
    assert "acct-a1" in panel and "acct-a2" in panel and "0.9" in panel


def _big_cluster(store: EmbeddedStore, size: int = 1000) -> None:
    """One flagged cluster of ``size`` accounts in rings of ten sharing a card, a device and a
    template each, all on one proxy network of 50 addresses, each linked to its ring."""
    accounts = [f"acct-{i:04d}" for i in range(size)]
    ips = [f"198.18.0.{i}" for i in range(50)]
    with store.bulk():
        store.upsert_nodes(Label.ACCOUNT, [{"account_id": a, "created_at": "2025-04-22T10:00:00Z"} for a in accounts])
        store.upsert_nodes(Label.CLUSTER, [{"cluster_id": "big", "score": 0.9, "flagged": True, "size": size}])
        store.upsert_nodes(Label.IP, [{"ip": ip, "network": "198.18.0.0/24", "kind": "proxy"} for ip in ips])
        store.upsert_nodes(Label.NETWORK, [{"cidr": "198.18.0.0/24", "kind": "proxy"}])
        store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, [{"start": a, "end": "big"} for a in accounts])
        for rel, label, prefix in ((Rel.PAID_WITH, Label.PAYMENT_METHOD, "pay"), (Rel.USED_DEVICE, Label.DEVICE, "dev"),
                                   (Rel.SENT_TEMPLATE, Label.PROMPT_TEMPLATE, "tpl")):
            store.upsert_relationships(rel, Label.ACCOUNT, label, [
                {"start": a, "end": f"{prefix}-{i // 10}", "first_seen": "2025-04-23T00:00:00Z", "count": 3}
                for i, a in enumerate(accounts)])
        store.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [
            {"start": a, "end": ips[(i + k) % 50], "count": 5, "first_seen": "2025-04-23T00:00:00Z"}
            for i, a in enumerate(accounts) for k in range(3)])
        store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT, [
            {"start": accounts[i], "end": accounts[j], "weight": 0.8, "families": ["payment"],
             "reasons": json.dumps([{"family": "payment", "kind": "shared_payment",
                                     "entity": {"label": "PaymentMethod", "key": f"pay-{i // 10}"}, "accounts": 10, "weight": 0.8}])}
            for i in range(size) for j in range(i + 1, (i // 10 + 1) * 10)])


def test_a_thousand_account_cluster_is_interactive(tmp_path: Path, browser: Any) -> None:
    """A 1,000-account cluster's page becomes interactive with its precomputed layout (the time
    it took is printed, not asserted) and a click on a node shows it."""
    store = EmbeddedStore(None)
    _big_cluster(store)
    result = export_graph(store, tmp_path / "graph.html", "html", cluster_ids=["big"], degree_cap=200)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(result.path.resolve().as_uri(), wait_until="load")
        page.wait_for_function("window.evidenceReady === true", timeout=30_000)
        print(f"1,000-account evidence graph interactive after {time.perf_counter() - started:.2f} s")
        shown = page.evaluate("network.body.data.nodes.length")
        node = page.evaluate("DATA.nodeDetails.findIndex(d => d[0] === 'network: 198.18.0.0/24')")
        dom = page.evaluate("(i) => { var p = network.getPositions([i])[i], d = network.canvasToDOM(p),"
                            " b = document.getElementById('mynetwork').getBoundingClientRect();"
                            " return {x: d.x + b.left, y: d.y + b.top}; }", node)
        page.mouse.click(dom["x"], dom["y"])
        page.wait_for_function("document.getElementById('panel-title').textContent === 'network: 198.18.0.0/24'", timeout=5_000)
        panel = page.inner_text("#panel")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "html-graph-1000-accounts.png"))
    finally:
        context.close()
    assert shown == result.nodes and result.nodes == 1000 + 100 * 3 + 1 + 1
    assert "member_ips" in panel and "folded" in panel and "1000" in panel


def test_the_report_of_a_thousand_account_cluster_is_short_before_its_appendix(tmp_path: Path, browser: Any) -> None:
    """report.html of a 1,000-account cluster: its evidence is at most about 20 screens tall
    before the appendix, its picture is drawn inline, and it loads nothing from anywhere."""
    store = EmbeddedStore(None)
    _big_cluster(store)
    export_graph(store, tmp_path / "report", "report", cluster_ids=["big"], degree_cap=200)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto((tmp_path / "report" / "report.html").resolve().as_uri(), wait_until="load")
        appendix = page.evaluate("[...document.querySelectorAll('h2')].find(h => h.textContent.startsWith('Appendix')).offsetTop")
        svg = page.evaluate("document.querySelectorAll('figure svg circle').length")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-1000-accounts-first-screen.png"))
    finally:
        context.close()
    assert appendix <= 20 * 900, f"{appendix / 900:.1f} screens before the appendix"
    assert svg >= 1000
    assert [u for u in requests if not u.startswith(LOCAL_SCHEMES)] == []
