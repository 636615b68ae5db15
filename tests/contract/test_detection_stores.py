"""Detection gives identical clusters on the embedded store and on Neo4j."""

from __future__ import annotations

import json
from pathlib import Path

from graph.detection import run_detection
from graph.schema import Label, Rel
from graph.store import GraphStore
from tests.worlds.detection import build_world, settings_for

# The clusters every store must find in the hand-made world (checked against the embedded run
# in the unit tests; here both stores must agree with it and with each other).


def _clusters(store: GraphStore) -> dict[str, tuple[list[str], float, bool, str]]:
    members: dict[str, list[str]] = {}
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        members.setdefault(rel.end[1], []).append(rel.start[1])
    out = {}
    for node in store.iter_nodes(Label.CLUSTER):
        p = node.props
        out[node.key] = (sorted(members.get(node.key, [])), float(p["score"]), bool(p["flagged"]), str(p["suggested_operator"]))
    return out


def test_detect_gives_the_same_clusters_on_every_store(store: GraphStore, tmp_path: Path) -> None:
    groups = build_world(store)
    summary = run_detection(store, settings_for(tmp_path))
    found = _clusters(store)
    flagged = [c for c in found.values() if c[2]]
    assert [c[0] for c in flagged] == [sorted(groups["op-a"])]
    assert flagged[0][3] == "op-a"
    # the reference: the same world on a fresh embedded store
    from graph.stores.embedded import EmbeddedStore

    reference = EmbeddedStore(tmp_path / "reference")
    build_world(reference)
    run_detection(reference, settings_for(tmp_path / "ref-ws"))
    assert found == _clusters(reference)
    links = {(r.start[1], r.end[1]): (r.props["weight"], json.loads(r.props["reasons"])) for r in store.iter_relationships(Rel.LINKED)}
    ref_links = {(r.start[1], r.end[1]): (r.props["weight"], json.loads(r.props["reasons"])) for r in reference.iter_relationships(Rel.LINKED)}
    assert links == ref_links
    # re-running on the same store duplicates nothing
    counts = store.counts()
    run_detection(store, settings_for(tmp_path))
    assert store.counts() == counts and summary["links"] == len(links)
