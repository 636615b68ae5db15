"""The local and the Spark engine give the same detection (#17): clusters, scores, LINKED.

Spark runs in local mode (``local[2]``) in this process: pyspark comes with ``make setup`` (the
``spark`` extra) and needs the machine's Java 17. Nothing here is skipped when it is missing:
the engine is part of the product.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graph import clustering, separation
from graph.detection import run_detection
from graph.engine import engine_name, open_engine
from graph.linkage import FAMILIES, Evidence, Reason, link_accounts, read_facts
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from loaders.load import load_bundle
from loaders.synthetic import generate

pytestmark = pytest.mark.spark


def _settings(workspace: Path, engine: str, **extra: Any) -> Settings:
    return Settings({"workspace": str(workspace), "hash_salt": "engine-contract-salt", "engine": engine,
                     "spark_master": "local[2]", **extra}, environ={})


def _outputs(store: GraphStore) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """Every cluster's members and written figures, and every LINKED edge's properties."""
    members: dict[str, list[str]] = {}
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        members.setdefault(rel.end[1], []).append(rel.start[1])
    clusters = {}
    for node in store.iter_nodes(Label.CLUSTER):
        props = {k: v for k, v in node.props.items() if k != "detected_at"}
        clusters[node.key] = (sorted(members.get(node.key, [])), props)
    links = {(r.start[1], r.end[1]): (r.props["weight"], list(r.props["families"]), json.loads(r.props["reasons"]))
             for r in store.iter_relationships(Rel.LINKED)}
    return clusters, links


def _summary_counts(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "timings"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engines") / "bundle"
    generate(root, "tiny", 1)
    return root


def _loaded(bundle: Path, workspace: Path, engine: str) -> tuple[EmbeddedStore, Settings]:
    settings = _settings(workspace, engine)
    store = EmbeddedStore(embedded_dir(workspace))
    load_bundle(bundle, settings, store)
    return store, settings


def test_both_engines_detect_the_same_clusters_scores_and_links(bundle: Path, tmp_path: Path) -> None:
    results = {}
    for engine in ("local", "spark"):
        store, settings = _loaded(bundle, tmp_path / engine, engine)
        summary = run_detection(store, settings)
        results[engine] = (_summary_counts(summary), *_outputs(store))
    local, spark = results["local"], results["spark"]
    assert any(props["flagged"] for _, props in local[1].values())  # the world has something to find
    assert local[2]  # and links
    assert spark[1] == local[1]
    assert spark[2] == local[2]
    assert spark[0] == local[0]


def _same_evidence(local: Evidence, spark: Evidence) -> None:
    pairs = local.pairs()
    assert spark.pairs() == pairs
    assert np.abs(spark.misses() - local.misses()).max(initial=0.0) <= 1e-9
    assert np.abs(spark.weights_of(pairs) - local.weights_of(pairs)).max(initial=0.0) <= 1e-9
    assert spark.candidate_pairs == local.candidate_pairs and spark.candidate_reasons == local.candidate_reasons
    for pair in pairs:
        assert [r.to_json() for r in spark.reasons(pair)] == [r.to_json() for r in local.reasons(pair)]
    assert sorted(h.to_json().items() for h in spark.hubs) == sorted(h.to_json().items() for h in local.hubs)
    asked = pairs + [("not-an-account", "nor-this")]  # separation asks of pairs that have no evidence too
    for family in FAMILIES:
        assert _values_by_pair(spark, asked, family) == _values_by_pair(local, asked, family), family


def _values_by_pair(evidence: Evidence, pairs: list[tuple[str, str]], family: str) -> dict[int, list[tuple[str, str, float]]]:
    """``value_weights`` as each pair's (label, key, weight) set: ties may come in either order."""
    at, codes, values, weights = evidence.value_weights(pairs, family)
    out: dict[int, list[tuple[str, str, float]]] = {}
    for row, code, weight in zip(at.tolist(), codes.tolist(), weights.tolist(), strict=True):
        out.setdefault(row, []).append((*values[code], round(weight, 9)))
    return {row: sorted(found) for row, found in out.items()}


def test_spark_evidence_matches_the_local_evidence_pair_by_pair(bundle: Path, tmp_path: Path) -> None:
    store, settings = _loaded(bundle, tmp_path / "ws", "spark")
    facts = read_facts(store, settings.workspace)
    cap = int(settings["hub_max_accounts"])
    local = link_accounts(facts, cap, keep_floor=clustering.MIN_WEIGHT)
    with open_engine(settings) as engine:
        spark = engine.link_accounts(facts, cap, {}, clustering.MIN_WEIGHT, None)
        assert len(local) > 100
        _same_evidence(local, spark)
        # a reason added after a combine (as takeover campaigns are) is combined again
        a, b = local.pairs()[0][0], local.pairs()[-1][1]
        for evidence in (local, spark):
            evidence.add(a, b, Reason("device", "synchronised_takeover", Label.CLIENT_FINGERPRINT.value, "fp-x", 2, 0.6))
        _same_evidence(local, spark)
        # the strong-link components Spark found are the local clustering's
        weights = separation.clustering_weights(spark)
        names = sorted({x for p in weights for x in p})
        labels = spark.strong_components(names)
        assert labels is not None
        strong = [p for p, w in weights.items() if w >= clustering.STRONG]
        expected = {frozenset(c) for c in clustering.components(names, strong) if len(c) > 1}
        by_label: dict[int, set[str]] = {}
        for name, label in zip(names, labels.tolist(), strict=True):
            by_label.setdefault(label, set()).add(name)
        assert expected and {frozenset(c) for c in by_label.values() if len(c) > 1} == expected


def test_an_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="engine"):
        engine_name(_settings(tmp_path, "dask"))
