"""Detection end to end on the hand-made world: who is flagged, re-runs, analyst data kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graph import cases
from graph.detection import assign_ids, hashed_id, run_detection
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir, hubs_path
from tests.worlds.detection import build_world, settings_for


@pytest.fixture
def world(tmp_path: Path) -> tuple[EmbeddedStore, dict[str, list[str]], Path]:
    store = EmbeddedStore(embedded_dir(tmp_path))
    return store, build_world(store), tmp_path


def _membership(store: EmbeddedStore) -> dict[str, str]:
    return {r.start[1]: r.end[1] for r in store.iter_relationships(Rel.MEMBER_OF)}


def _flagged_accounts(store: EmbeddedStore) -> set[str]:
    flagged = {n.key for n in store.iter_nodes(Label.CLUSTER) if n.props.get("flagged")}
    return {a for a, c in _membership(store).items() if c in flagged}


def test_operator_flagged_and_every_hard_negative_left_alone(world) -> None:  # noqa: ANN001
    store, groups, ws = world
    summary = run_detection(store, settings_for(ws))
    flagged = _flagged_accounts(store)
    assert flagged == set(groups["op-a"])
    for kind in ("ordinary", "university", "family", "vpn", "carrier_nat", "viral_prompt"):
        assert not flagged & set(groups[kind]), kind
    assert summary["flagged"] == 1 and summary["accounts_flagged"] == 12
    hubs = summary["suppressed_hubs"]["by_reason"]
    assert {"education_egress", "vpn_exit", "carrier_nat", "over_cap"} <= set(hubs)
    assert hubs_path(ws).exists()


def test_written_properties(world) -> None:  # noqa: ANN001
    store, groups, ws = world
    run_detection(store, settings_for(ws))
    cid = _membership(store)["opa00"]
    props = store.get_node(Label.CLUSTER, cid).props
    assert props["status"] == "open" and props["flagged"] is True and props["size"] == 12
    assert props["suggested_operator"] == "op-a" and props["suggestion_confidence"] > 0.5
    assert props["exchanges"] == 12 * 400 and props["input_tokens"] > 0
    indicators = json.loads(props["indicators"])
    assert abs(sum(i["contribution"] for i in indicators) - props["score"]) < 1e-3
    stability = json.loads(props["stability"])
    assert {"network", "payment", "device"} <= set(stability) and 0.0 <= stability["min"] <= 1.0
    assert json.loads(props["capability_profile"])["coding"] > 0.4
    links = list(store.iter_relationships(Rel.LINKED))
    assert links and all(r.start[1] < r.end[1] for r in links)
    reasons = json.loads(links[0].props["reasons"])
    assert reasons and {"family", "kind", "entity", "accounts", "weight"} <= set(reasons[0])
    (sugg,) = [r for r in store.iter_relationships(Rel.SUGGESTED_OPERATOR) if r.start[1] == cid]
    assert sugg.end[1] == "op-a" and json.loads(sugg.props["indicators"])
    family = _membership(store)["fam0"]
    assert store.get_node(Label.CLUSTER, family).props["flagged"] is False


def test_rerun_is_identical_without_duplicates(world) -> None:  # noqa: ANN001
    store, _, ws = world
    first = run_detection(store, settings_for(ws))
    counts = store.counts()
    members = _membership(store)
    second = run_detection(store, settings_for(ws))
    assert store.counts() == counts
    assert _membership(store) == members
    assert first["top_clusters"] == second["top_clusters"]


def test_analyst_decisions_survive_reruns(world) -> None:  # noqa: ANN001
    store, groups, ws = world
    run_detection(store, settings_for(ws))
    cid = _membership(store)["opa00"]
    cases.attribute(store, cid, who="ana", confidence=0.9, rationale="shared cards", operator_name="Acme Lab")
    cases.set_status(store, cid, "in_progress", who="ana")
    cases.add_note(store, (Label.CLUSTER.value, cid), "looks like the April wave", who="ana")
    run_detection(store, settings_for(ws))
    assert _membership(store)["opa00"] == cid
    props = store.get_node(Label.CLUSTER, cid).props
    assert props["status"] == "in_progress"
    (att,) = list(store.iter_relationships(Rel.ATTRIBUTED_TO))
    assert att.start[1] == cid and att.end[1] == "op-acme-lab" and att.props["rationale"] == "shared cards"
    assert cases.notes_about(store, (Label.CLUSTER.value, cid))


def test_changed_membership_keeps_the_id_and_retires_lost_analyst_clusters(world) -> None:  # noqa: ANN001
    store, groups, ws = world
    run_detection(store, settings_for(ws))
    fam = _membership(store)["fam0"]
    cases.set_status(store, fam, "in_progress", who="ana")
    # the family's shared card and tablet are gone: the cluster cannot be rebuilt
    store.delete_nodes([(Label.PAYMENT_METHOD.value, "pm-family"), (Label.DEVICE.value, "dev-tablet"), (Label.IP.value, "73.1.1.1")])
    # one operator account loses its links: the operator cluster changes a little, keeps its id
    op_id = _membership(store)["opa00"]
    run_detection(store, settings_for(ws))
    retired = store.get_node(Label.CLUSTER, fam)
    assert retired is not None and retired.props["retired"] is True and retired.props["status"] == "in_progress"
    assert retired.props["size"] == 0
    assert _membership(store)["opa00"] == op_id
    assert "fam0" not in _membership(store)


def test_id_assignment_prefers_best_overlap() -> None:
    previous = {"cl-old": frozenset({"a", "b", "c", "d"})}
    ids = assign_ids([["a", "b", "c", "e"], ["x", "y"]], previous)
    assert ids == ["cl-old", hashed_id(["x", "y"])]
    assert hashed_id(["b", "a"]) == hashed_id(["a", "b"])


def test_store_only_run_without_workspace_staging(tmp_path: Path) -> None:
    store = EmbeddedStore(None)
    build_world(store)
    summary = run_detection(store, settings_for(tmp_path / "missing"))
    assert summary["flagged"] == 1 and summary["timings"]["link_timing"] >= 0


def test_staged_exchanges_add_timing_evidence_and_model_switch(world) -> None:  # noqa: ANN001
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa
    import pyarrow.parquet as pq

    from graph.staging import table_dir

    store, groups, ws = world
    start = datetime(2025, 4, 22, tzinfo=UTC)
    rows = []
    for k in range(30):  # the operator's bursts, same script; new model from burst 20 on
        for i, a in enumerate(groups["op-a"]):
            rows.append((a, start + timedelta(hours=8 * k, minutes=3 * i), "t-op1", "new" if k >= 20 else "old"))
    for j, a in enumerate(groups["ordinary"]):
        for k in range(10):
            rows.append((a, start + timedelta(hours=37 * k + 5 * j), "t-hi", "old"))
    directory = table_dir(ws, "exchanges")
    directory.mkdir(parents=True)
    pq.write_table(pa.table({
        "account_id": [r[0] for r in rows],
        "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "template_id": [r[2] for r in rows],
        "model": [r[3] for r in rows],
    }), directory / "b-0.parquet")
    run_detection(store, settings_for(ws))
    cid = _membership(store)["opa00"]
    props = store.get_node(Label.CLUSTER, cid).props
    assert "timing" in props["families"]
    named = {i["name"]: i for i in json.loads(props["indicators"])}
    assert named["lockstep_activity"]["value"] == 1.0 and named["model_switch"]["value"] == 1.0
    assert _flagged_accounts(store) == set(groups["op-a"])


def test_empty_store(tmp_path: Path) -> None:
    summary = run_detection(EmbeddedStore(None), settings_for(tmp_path))
    assert (summary["accounts"], summary["clusters"], summary["links"], summary["flagged"]) == (0, 0, 0, 0)


def test_stability_says_which_family_a_cluster_rests_on() -> None:
    """Ten accounts: devices tie each half together, one shared network ties all ten. Without
    the network the halves fall apart (half the members stay together); without the devices
    nothing changes."""
    from graph.detection import stability
    from graph.linkage.evidence import Evidence, Reason, pair_of

    members = [f"a{i}" for i in range(10)]
    evidence = Evidence()
    pairs = sorted({pair_of(x, y) for x in members for y in members if x != y})
    for a, b in pairs:
        evidence.add(a, b, Reason("network", "shared_ip", "IP", "198.51.100.7", 10, 0.6))
        if (a[1] < "5") == (b[1] < "5"):
            evidence.add(a, b, Reason("device", "shared_device", "Device", f"dev-{a[1] < '5'}", 5, 0.9))
    result = stability(members, evidence, evidence.pairs())
    assert result == {"device": 1.0, "network": 0.5, "min": 0.5, "weakest": "network"}


def test_a_big_clusters_stability_in_worker_processes_equals_the_inline_one() -> None:
    """Over ``PARALLEL_PAIRS`` internal pairs the families are rebuilt in a process pool; the
    figures must not depend on where they ran."""
    from graph import clustering, figures
    from graph.linkage.evidence import FAMILIES

    rng = np.random.default_rng(5)
    members = [f"acct-{i:04d}" for i in range(420)]
    pairs = [(members[i], members[j]) for i in range(420) for j in range(i + 1, 420) if rng.random() < 0.6]
    assert len(pairs) >= figures.PARALLEL_PAIRS
    misses = np.ones((len(pairs), len(FAMILIES)))
    for family, share in (("network", 0.9), ("device", 0.3), ("timing", 0.5)):
        hit = rng.random(len(pairs)) < share
        misses[hit, FAMILIES.index(family)] = rng.uniform(0.2, 0.8, int(hit.sum()))
    inline = figures.stability(members, pairs, misses)
    with clustering.worker_pool() as pool:
        assert pool is not None  # the machines this runs on have two cores or more
        assert figures.stability(members, pairs, misses, pool) == inline
    assert set(inline) == {"network", "device", "timing", "min", "weakest"}
