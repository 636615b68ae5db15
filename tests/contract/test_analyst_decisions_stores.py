"""An analyst's merge and split survive detection re-runs on every store: on the hand-made
detection world through ``run_detection``, and on a generated world (shared-proxy and takeover
scenarios) through ``sybilscope detect`` itself, with its printed ``analyst_decisions``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from app.cli import main as sybilscope
from graph import cases
from graph.detection import run_detection
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from loaders.load import load_bundle
from loaders.synthetic import generate
from tests.conftest import TEST_BOLT_URI
from tests.worlds.detection import build_world, settings_for

FIGURES = ("size", "exchanges", "input_tokens", "output_tokens", "first_seen", "last_seen", "score", "flagged",
           "indicators", "stability", "suggested_operator", "bridges", "families", "takeover_onset",
           "compromised_members")


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


def _everything(store: GraphStore) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Every current cluster's figures, every MEMBER_OF with its flags, every SHARES_INFRASTRUCTURE."""
    figures = {n.key: {k: n.props.get(k) for k in FIGURES} for n in store.iter_nodes(Label.CLUSTER) if n.props.get("size")}
    members = sorted((r.start[1], r.end[1], r.props.get("bridge"), r.props.get("compromised"), r.props.get("onset"))
                     for r in store.iter_relationships(Rel.MEMBER_OF))
    shared = sorted((r.start[1], r.end[1], r.props.get("weight"), r.props.get("accounts"), r.props.get("values"))
                    for r in store.iter_relationships(Rel.SHARES_INFRASTRUCTURE))
    return figures, members, shared


def _detect(store: GraphStore, workspace: Path) -> dict[str, Any]:
    """``sybilscope detect`` over the workspace and this store; its printed summary."""
    where = "embedded" if isinstance(store, EmbeddedStore) else TEST_BOLT_URI
    result = CliRunner().invoke(sybilscope, ["detect", "--workspace", str(workspace), "--store", where])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_a_merge_and_a_split_survive_sybilscope_detect_on_a_generated_world(store: GraphStore, tmp_path: Path) -> None:
    workspace = tmp_path  # the embedded store under test lives in <tmp_path>/embedded
    generate(tmp_path / "bundle", "tiny", 1, scenarios="shared-proxy,takeover", corpus="sample", allow_sample_fallback=True)
    settings = Settings({"workspace": str(workspace), "hash_salt": "contract-test-salt"}, environ={})
    load_bundle(tmp_path / "bundle", settings, store)
    first = _detect(store, workspace)
    assert first["analyst_decisions"] == {"kept": [], "superseded": [], "conflicts": []}
    owner = _owner(store)
    compromised = {r.start[1] for r in store.iter_relationships(Rel.MEMBER_OF) if r.props.get("compromised")}
    campaign = max({owner[a] for a in compromised}, key=lambda c: sum(1 for x in owner.values() if x == c))
    (relation,) = list(store.iter_relationships(Rel.SHARES_INFRASTRUCTURE))
    left, right = relation.start[1], relation.end[1]
    taken = sorted(a for a, c in owner.items() if c == campaign)
    split = cases.split_accounts(store, campaign, taken[:2], who="ana", rationale="two were sold on", settings=settings)
    merge = cases.merge_clusters(store, left, right, who="ana", rationale="one swarm by day and night", settings=settings)
    new = split.after["new_cluster"]
    decided = _everything(store)
    assert decided[0][campaign]["compromised_members"] == 3 and decided[0][new]["compromised_members"] == 0
    assert not [s for s in decided[2] if right in s[:2]]
    for _ in range(2):  # the first re-run keeps them, and so does the next
        summary = _detect(store, workspace)
        assert _everything(store) == decided
        assert [(d["event_id"], d["action"], d["cluster_id"]) for d in summary["analyst_decisions"]["kept"]] == [
            (split.event_id, "split", new), (merge.event_id, "merge", left)]
        assert summary["analyst_decisions"]["conflicts"] == []
