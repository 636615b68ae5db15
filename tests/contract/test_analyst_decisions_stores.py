"""An analyst's merge and split survive detection re-runs on every store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graph import cases
from graph.detection import run_detection
from graph.schema import Label, Rel
from graph.store import GraphStore
from tests.worlds.detection import build_world, settings_for

FIGURES = ("size", "exchanges", "input_tokens", "output_tokens", "first_seen", "last_seen", "score", "flagged",
           "indicators", "stability", "suggested_operator", "bridges", "families")


def _owner(store: GraphStore) -> dict[str, str]:
    return {r.start[1]: r.end[1] for r in store.iter_relationships(Rel.MEMBER_OF)}


def _state(store: GraphStore, cluster_ids: list[str]) -> dict[str, Any]:
    owner = _owner(store)
    out = {}
    for cid in cluster_ids:
        node = store.get_node(Label.CLUSTER, cid)
        assert node is not None
        out[cid] = ({k: node.props.get(k) for k in FIGURES}, sorted(a for a, c in owner.items() if c == cid))
    return out


def test_a_merge_and_a_split_survive_detection_with_their_ids(store: GraphStore, tmp_path: Path) -> None:
    groups = build_world(store)
    settings = settings_for(tmp_path)
    run_detection(store, settings)
    owner = _owner(store)
    op, family, uni = owner["opa00"], owner["fam0"], owner["uni00"]
    merge = cases.merge_clusters(store, op, family, who="ana", rationale="the family card paid for the operator",
                                 settings=settings)
    split = cases.split_accounts(store, uni, ["uni00", "uni01"], who="ana", rationale="a lab, not the class",
                                 settings=settings)
    new = split.after["new_cluster"]
    decided = _state(store, [op, uni, new])
    assert decided[op][1] == sorted(groups["op-a"] + groups["family"])
    assert decided[new][1] == ["uni00", "uni01"] and decided[new][0]["size"] == 2
    for _ in range(2):  # the first re-run keeps them, and so does the next
        summary = run_detection(store, settings)
        assert _state(store, [op, uni, new]) == decided
        kept = summary["analyst_decisions"]["kept"]
        assert [(d["event_id"], d["action"], d["cluster_id"]) for d in kept] == [
            (merge.event_id, "merge", op), (split.event_id, "split", new)]
        assert summary["analyst_decisions"]["conflicts"] == []
    absorbed = store.get_node(Label.CLUSTER, family)
    assert absorbed is not None and absorbed.props["status"] == "merged" and absorbed.props["size"] == 0
