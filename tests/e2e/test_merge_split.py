"""Merge and split in a real browser on the big generated world, and ``sybilscope detect`` after
them (issue 15, point 3; screenshots 30-… to 33-… in test-artifacts/e2e/).

On the session's ``big_world`` (tests/e2e/conftest.py), the analyst merges the other flagged
cluster into the cluster of at least 500 accounts, then splits three accounts off it: each
success message gives the refigured figures, the page header shows them, the figures add up
(exchanges, first and last use), the split's message names the new cluster and opens it (its
address then says ``?cluster=<id>``). A detection re-run keeps both decisions, says so in its
printed summary, and leaves the figures the browser showed. The test works on a copy of the
session's world, so the other browser tests see the world the fixture made.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import format as fmt
from graph import cases
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from tests.e2e.conftest import BIG, ROOT, serve_ui
from tests.e2e.test_pivot import _metric, _whole_page

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workspace(big_world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the session's big world (merges and splits change it)."""
    copy = tmp_path_factory.mktemp("e2e-merge-split") / "ws"
    shutil.copytree(Path(big_world["workspace"]), copy, ignore=shutil.ignore_patterns("neo4j", "*.lock"))
    copy.chmod(0o700)
    return copy


@pytest.fixture(scope="module")
def app_url(workspace: Path) -> Iterator[str]:
    with serve_ui(workspace, log_name="streamlit-merge-split") as url:
        yield url


def _store(workspace: Path) -> EmbeddedStore:
    """The store as the app left it (a fresh handle reads the file the app wrote)."""
    return EmbeddedStore(embedded_dir(workspace))


def _members(store: EmbeddedStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        out.setdefault(rel.end[1], []).append(rel.start[1])
    return {cid: sorted(m) for cid, m in out.items()}


def _cluster(store: EmbeddedStore, cluster_id: str) -> dict[str, Any]:
    node = store.get_node(Label.CLUSTER, cluster_id)
    assert node is not None, cluster_id
    return dict(node.props)


def _header_shows(page: Any, props: dict[str, Any]) -> None:
    """The cluster header's metrics are the stored (refigured) figures."""
    assert _metric(page, "Accounts") == fmt.short_number(props["size"])
    assert _metric(page, "Exchanges") == fmt.short_number(props["exchanges"])
    assert _metric(page, "Score") == f"{props['score']:.2f}"


def _idle(page: Any) -> None:
    """Wait until the app has finished the run a widget change started (each change reruns
    the page, and a field typed into during a run can be redrawn empty)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidgetRunningIcon']").wait_for(state="detached", timeout=30_000)


def _pick(page: Any, label: str, value: str, attempts: int = 3) -> None:
    """Choose ``value`` in the select box or multiselect labelled ``label`` by typing it.

    A rerun that lands while the text is typed redraws the box empty (seen on a loaded CI
    machine), so the text is typed again, after the app is idle, until the option shows."""
    option = page.get_by_role("option", name=value, exact=True)
    for attempt in range(attempts):
        _idle(page)
        box = page.get_by_role("combobox", name=label)
        box.click()
        if box.input_value():  # Backspace in an empty multiselect would drop the last chosen tag
            box.fill("")
        box.press_sequentially(value, delay=20)
        try:
            option.wait_for(timeout=10_000)
        except Exception:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            continue
        option.click()
        break
    _idle(page)


def _fill(page: Any, label: str, text: str) -> None:
    """Type ``text`` into the field labelled ``label`` and let the app take it."""
    field = page.get_by_label(label)
    field.fill(text)
    field.press("Tab")
    _idle(page)
    assert field.input_value() == text


def _detect(workspace: Path) -> dict[str, Any]:
    """``sybilscope detect`` over the copy, while the app serves it; its printed summary."""
    done = subprocess.run([sys.executable, "-m", "app", "detect", "--workspace", str(workspace), "--store", "embedded"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def test_merge_and_split_refigure_name_the_new_cluster_and_survive_detect(page: Any, app_url: str, shot: Any,
                                                                         workspace: Path, big_world: dict[str, Any]) -> None:
    store = _store(workspace)
    keep, other = big_world["cluster"], big_world["other_flagged"]
    before = _members(store)
    kept_before, absorbed = before[keep], before[other]
    figures_before = {cid: _cluster(store, cid) for cid in (keep, other)}
    assert len(kept_before) >= BIG and all(f["flagged"] for f in figures_before.values())
    store.close()

    # Merge: the message and the header give the merged cluster's new figures.
    page.goto(f"{app_url}/cluster?cluster={keep}")
    page.get_by_role("heading", name=f"Cluster {keep}", exact=True).wait_for()
    page.get_by_role("tab", name="Case & attribution").click()
    page.get_by_text("Merge another cluster into this one").click()
    _pick(page, "Cluster to absorb", other)
    _fill(page, "Merge rationale", "the same card BIN and client build paid for both")
    page.get_by_role("button", name="Merge", exact=True).click()
    merged_size = len(kept_before) + len(absorbed)
    message = page.get_by_text(f"Merged {other} into {keep}: now {fmt.short_number(merged_size)} accounts")
    message.wait_for()
    store = _store(workspace)
    merged = _cluster(store, keep)
    assert merged["size"] == merged_size and _members(store)[keep] == sorted(kept_before + absorbed)
    # The figures add up: every exchange of both, from the earliest first use to the latest last.
    assert merged["exchanges"] == sum(f["exchanges"] for f in figures_before.values())
    assert merged["first_seen"] == min(f["first_seen"] for f in figures_before.values())
    assert merged["last_seen"] == max(f["last_seen"] for f in figures_before.values())
    assert merged["flagged"]
    assert f"score {merged['score']:.2f}" in message.inner_text()
    _header_shows(page, merged)
    assert _cluster(store, other)["status"] == "merged" and _cluster(store, other)["size"] == 0
    _whole_page(page, shot, "30-merge-refigured")

    # Split three accounts off: the message names the new cluster, with both sides' figures.
    moved = kept_before[:3]
    page.get_by_role("tab", name="Case & attribution").click()
    page.get_by_text("Split accounts off into a new cluster").click()
    for account in moved:
        _pick(page, "Accounts", account)
    box = page.locator("[data-testid='stMultiSelect']").filter(has=page.get_by_role("combobox", name="Accounts"))
    chosen = box.evaluate("el => Array.from(el.querySelectorAll('.react-aria-ComboBox [data-tag]')).map(t => t.getAttribute('aria-label'))")
    assert chosen == moved
    _fill(page, "Split rationale", "these three moved to another card and device in May")
    page.get_by_role("button", name="Split", exact=True).click()
    page.get_by_text(f"Split 3 accounts off {keep} into the new cluster").wait_for()
    store = _store(workspace)
    (event,) = cases.audit_trail(store, action="split")
    new = event.after["new_cluster"]
    text = page.get_by_text(f"into the new cluster {new}").inner_text()
    split_off, parent = _cluster(store, new), _cluster(store, keep)
    assert _members(store)[new] == moved and split_off["size"] == 3 and split_off["split_from"] == keep
    assert f"{fmt.short_number(split_off['exchanges'])} exchanges, score {split_off['score']:.2f}" in text
    assert f"{keep} now has {fmt.short_number(parent['size'])} accounts" in text
    # Both sides refigured: the exchanges split between them, each with its own dates and flag.
    assert split_off["exchanges"] > 0 and split_off["exchanges"] + parent["exchanges"] == merged["exchanges"]
    assert split_off["first_seen"] and split_off["last_seen"] and split_off["first_seen"] <= split_off["last_seen"]
    assert parent["size"] == merged_size - 3 and isinstance(split_off["flagged"], bool)
    _header_shows(page, parent)  # still on the parent, refigured
    _whole_page(page, shot, "31-split-names-new-cluster")

    # The message opens the new cluster, whose address names it.
    page.get_by_role("button", name=f"Open cluster {new}", exact=True).click()
    page.get_by_role("heading", name=f"Cluster {new}", exact=True).wait_for()
    page.wait_for_url(f"**/cluster?cluster={new}")
    _header_shows(page, split_off)
    page.get_by_role("tab", name="Timeline").click()
    page.get_by_text("Onsets").wait_for()
    _whole_page(page, shot, "32-new-cluster-opened")

    # sybilscope detect keeps both decisions and their figures.
    shown = {cid: {k: _cluster(store, cid)[k] for k in ("size", "exchanges", "first_seen", "last_seen", "score", "flagged", "indicators")}
             for cid in (keep, new)}
    members = _members(store)
    store.close()
    summary = _detect(workspace)
    kept = {(d["action"], d["cluster_id"]) for d in summary["analyst_decisions"]["kept"]}
    assert kept == {("merge", keep), ("split", new)} and summary["analyst_decisions"]["conflicts"] == []
    store = _store(workspace)
    assert {cid: _members(store)[cid] for cid in (keep, new)} == {cid: members[cid] for cid in (keep, new)}
    assert {cid: {k: _cluster(store, cid)[k] for k in shown[cid]} for cid in (keep, new)} == shown
    page.reload()
    page.get_by_role("heading", name=f"Cluster {new}", exact=True).wait_for()
    _header_shows(page, split_off)
    _whole_page(page, shot, "33-after-detect")
