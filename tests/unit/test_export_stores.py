"""Exports read the store only through the GraphStore API, so both stores give the same
evidence: same cluster table, same selected nodes and relationships, same graph file."""

from __future__ import annotations

import json
from pathlib import Path

from graph.export.clusters import cluster_table
from graph.export.graphfiles import node_link
from graph.export.report import build_report, to_markdown
from graph.export.selection import select
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import build_world, write_staging


def test_exports_agree_across_stores(store: GraphStore, tmp_path: Path) -> None:
    build_world(store)
    reference = EmbeddedStore(None)
    build_world(reference)
    assert cluster_table(store) == cluster_table(reference)
    got, want = select(store, degree_cap=50), select(reference, degree_cap=50)
    assert [n.ref for n in got.nodes] == [n.ref for n in want.nodes]
    assert [r.ref for r in got.relationships] == [r.ref for r in want.relationships]
    assert got.hubs == want.hubs
    assert json.dumps(node_link(got), sort_keys=True) == json.dumps(node_link(want), sort_keys=True)
    ws = tmp_path / "ws"
    write_staging(ws)
    strip = lambda text: text.split("\n", 3)[3]  # noqa: E731 - drop the dated, store-named header
    assert strip(to_markdown(build_report(store, got, ws))) == strip(to_markdown(build_report(reference, want, ws)))
