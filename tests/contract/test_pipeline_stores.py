"""The whole pipeline on a generated world gives the same result on every store.

The hand-made graphs of the other contract tests cannot show order effects: each store streams
nodes and relationships in its own order, and clustering must not depend on it.
"""

from __future__ import annotations

from pathlib import Path

from graph.detection import run_detection
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from loaders.load import load_bundle
from loaders.synthetic import generate


def clusters_of(store: GraphStore) -> dict[str, tuple[tuple[str, ...], float, bool]]:
    members: dict[str, list[str]] = {}
    for rel in store.iter_relationships("MEMBER_OF"):
        members.setdefault(rel.end[1], []).append(rel.start[1])
    out = {}
    for node in store.iter_nodes("Cluster"):
        if node.props.get("retired"):
            continue
        out[node.key] = (tuple(sorted(members.get(node.key, []))), round(float(node.props["score"]), 6), bool(node.props["flagged"]))
    return out


def run_pipeline(bundle: Path, workspace: Path, store: GraphStore) -> None:
    settings = Settings({"workspace": str(workspace), "hash_salt": "contract-test-salt"}, environ={})
    load_bundle(bundle, settings, store)
    run_detection(store, settings)


def test_generated_world_gives_the_same_clusters_on_every_store(store: GraphStore, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, "tiny", 1)
    reference = EmbeddedStore(embedded_dir(tmp_path / "reference"))
    run_pipeline(bundle, tmp_path / "reference", reference)
    run_pipeline(bundle, tmp_path / "under-test", store)
    expected, got = clusters_of(reference), clusters_of(store)
    assert any(flagged for _, _, flagged in expected.values())
    assert got == expected
    assert store.counts() == reference.counts()
