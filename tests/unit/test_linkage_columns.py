"""Detection's column-wise forms agree with the one-at-a-time definitions they replace.

``UseTable`` must read like the ``{value: {account: Use}}`` mapping; shared-value linking
computes weights with NumPy and builds reasons only when read, so each pair's combined score
must equal the noisy-OR of the reasons it shows; ``Evidence`` drops pairs under its floor
without losing a pair that several weak signals lift over it; template uses read from staging
must be exactly the SENT_TEMPLATE relationships the loader wrote.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from graph.linkage import Evidence, Facts, Reason, read_facts
from graph.linkage.evidence import noisy_or
from graph.linkage.network import link_network
from graph.linkage.prompt import link_prompt
from graph.linkage.uses import Use, UseTable
from graph.schema import Label, Rel
from graph.scoring import AccountProfile, template_concentration
from graph.settings import Settings
from graph.staging import read_template_uses
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from loaders.load import load_bundle
from loaders.synthetic import generate


def random_uses(seed: int, values: int = 60, accounts: int = 40) -> dict[str, dict[str, Use]]:
    rng = random.Random(seed)
    out: dict[str, dict[str, Use]] = {}
    for v in range(values):
        users = rng.sample(range(accounts), rng.randint(1, 9))
        bucket = out.setdefault(f"10.0.{v}.1", {})
        for u in sorted(users):
            day = rng.randint(1, 28)
            bucket[f"acct-{u:03d}"] = Use(
                count=rng.randint(1, 12),
                first=f"2025-03-{day:02d}T0{rng.randint(0, 9)}:00:00Z",
                last=f"2025-04-{rng.randint(day, 28):02d}T10:00:00Z",
            )
    return out


def test_use_table_reads_like_the_mapping_it_was_built_from() -> None:
    uses = random_uses(1)
    table = UseTable.from_mapping(uses)
    assert list(table) == sorted(uses)
    assert {k: dict(v) for k, v in table.items()} == uses
    assert table.user_counts() == {k: len(v) for k, v in uses.items()}
    assert "10.0.0.1" in table and "nope" not in table
    with pytest.raises(KeyError):
        table["nope"]
    assert sorted(table.pairs_of({"acct-001"})) == sorted((k, "acct-001") for k, v in uses.items() if "acct-001" in v)


def test_use_table_from_arrow_equals_from_uses_and_drops_unknown_accounts() -> None:
    import pyarrow as pa

    uses = random_uses(2)
    rows = sorted((k, a, u) for k, users in uses.items() for a, u in users.items())
    table = pa.table({
        "template_id": [k for k, _, _ in rows], "account_id": [a for _, a, _ in rows],
        "count": [u.count for _, _, u in rows],
        "first": [int(np.datetime64(u.first.rstrip("Z"), "s").astype(np.int64)) for _, _, u in rows],
        "last": [int(np.datetime64(u.last.rstrip("Z"), "s").astype(np.int64)) for _, _, u in rows],
    })
    assert {k: dict(v) for k, v in UseTable.from_arrow(table).items()} == uses
    known = {f"acct-{i:03d}": {} for i in range(0, 40, 2)}
    restricted = UseTable.from_arrow(table, known)
    expected = {k: {a: u for a, u in v.items() if a in known} for k, v in uses.items()}
    assert {k: dict(v) for k, v in restricted.items()} == {k: v for k, v in expected.items() if v}


@pytest.mark.parametrize("seed", [3, 4])
def test_every_pair_scores_the_noisy_or_of_the_reasons_it_shows(seed: int) -> None:
    """The column weights and the reasons built on reading agree (network: rarity, time
    overlap and volume; prompt: rarity and volume)."""
    facts = Facts()
    facts.uses[Label.IP.value] = random_uses(seed)
    facts.uses[Label.NETWORK.value] = {}
    facts.uses[Label.ASN.value] = {}
    facts.uses[Label.PROMPT_TEMPLATE.value] = {k.replace("10.0.", "t-"): v for k, v in random_uses(seed + 10).items()}
    for link in (link_network, link_prompt):
        evidence = Evidence(max_reasons_per_pair=50)
        link(evidence, facts, 50)
        assert len(evidence) > 20
        for pair in evidence.pairs():
            reasons = evidence.reasons(pair)
            assert all(isinstance(r, Reason) for r in reasons)
            assert evidence.weight(pair) == pytest.approx(noisy_or(r.weight for r in reasons), abs=1e-9)


@pytest.mark.parametrize("seed", [3, 4])
def test_value_weights_name_the_values_and_weights_of_the_reasons(seed: int) -> None:
    """Separation reads each pair's network values from the columns instead of building
    reasons: the same values, with the weights the reasons carry, one-at-a-time reasons
    (added with ``Evidence.add``) included."""
    facts = Facts()
    facts.uses[Label.IP.value] = random_uses(seed)
    facts.uses[Label.NETWORK.value] = {k.replace("10.0.", "n-"): v for k, v in random_uses(seed + 20, values=15).items()}
    facts.uses[Label.ASN.value] = {}
    evidence = Evidence(max_reasons_per_pair=4)
    link_network(evidence, facts, 50)
    pairs = evidence.pairs()
    evidence.add(*pairs[0], Reason("network", "shared_ip", "IP", "192.0.2.9", 2, 0.95))  # strongest of its pair
    evidence.add(*pairs[1], Reason("device", "shared_device", "Device", "d1", 2, 0.9))  # another family
    asked = [*pairs, ("nobody", "else")]
    at, codes, values, weights = evidence.value_weights(asked, "network")
    got: dict[int, list[tuple[tuple[str, str], float]]] = {}
    for row, code, weight in zip(at.tolist(), codes.tolist(), weights.tolist(), strict=True):
        got.setdefault(row, []).append((values[code], weight))
    expected = {}
    for row, pair in enumerate(asked):
        reasons = evidence.reasons(pair, family="network")
        if reasons:
            expected[row] = [((r.label, r.key), r.weight) for r in reasons]
    assert got.keys() == expected.keys() and len(got) > 20
    for row, rows in expected.items():
        assert sorted(v for v, _ in got[row]) == sorted(v for v, _ in rows)
        assert sorted(w for _, w in got[row]) == pytest.approx(sorted(w for _, w in rows), abs=1e-12)
    assert got[0][0] == (("IP", "192.0.2.9"), 0.95)


def test_the_floor_drops_weak_pairs_but_keeps_weak_signals_that_add_up() -> None:
    evidence = Evidence(keep_floor=0.1)
    weak = Reason("prompt", "shared_template", "PromptTemplate", "t1", 9, 0.06)
    evidence.add("a", "b", weak)  # alone: dropped
    evidence.add("c", "d", weak)
    evidence.add("c", "d", Reason("network", "shared_network", "Network", "n1", 40, 0.06))  # together 0.116
    evidence.add("e", "f", Reason("device", "shared_device", "Device", "d1", 2, 0.9))
    assert evidence.pairs() == [("c", "d"), ("e", "f")]
    assert evidence.candidate_pairs == 3
    assert evidence.weight(("c", "d")) == pytest.approx(1 - 0.94 * 0.94)
    assert evidence.weight(("a", "b")) == 0.0 and evidence.reasons(("a", "b")) == []
    assert [r.family for r in evidence.reasons(("c", "d"))] == ["network", "prompt"]
    assert evidence.weights_of([("c", "d"), ("a", "b")], frozenset({"network"})).tolist() == pytest.approx([0.06, 0.0])


def test_template_concentration_is_the_same_by_position_and_by_id() -> None:
    by_id = {"a": AccountProfile(templates={"t-op": 9, "t-hi": 1}), "b": AccountProfile(templates={"t-op": 10})}
    users = {"t-op": 2, "t-hi": 5000}
    ids = ["t-hi", "t-op"]
    by_position = {
        name: AccountProfile(template_ids=np.asarray([ids.index(t) for t in p.template_ids.tolist()]),
                             template_counts=p.template_counts)
        for name, p in by_id.items()
    }
    expected = template_concentration(["a", "b"], by_id, users)
    assert expected == 19 / 20
    assert template_concentration(["a", "b"], by_position, np.asarray([5000, 2])) == expected


def test_template_uses_from_staging_are_the_loaded_relationships(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    generate(bundle, "tiny", 3)
    settings = Settings({"workspace": str(tmp_path / "ws"), "hash_salt": "columns-test"}, environ={})
    store = EmbeddedStore(embedded_dir(tmp_path / "ws"))
    load_bundle(bundle, settings, store)
    staged = read_template_uses(tmp_path / "ws")
    assert staged is not None and staged.num_rows > 100
    from_staging = UseTable.from_arrow(staged)
    from_store = UseTable.from_uses(
        (r.end[1], r.start[1], Use(int(r.props["count"]), str(r.props["first_seen"]), str(r.props["last_seen"])))
        for r in store.iter_relationships(Rel.SENT_TEMPLATE)
    )
    # the graph holds the templates two accounts share (and any an indicator names); detection
    # reads every use from staging, the one-sender templates too
    in_graph = {n.key for n in store.iter_nodes(Label.PROMPT_TEMPLATE)}
    staged_uses = {k: dict(v) for k, v in from_staging.items()}
    assert {k: v for k, v in staged_uses.items() if k in in_graph} == {k: dict(v) for k, v in from_store.items()}
    left_out = {k: v for k, v in staged_uses.items() if k not in in_graph}
    assert left_out and all(len(users) == 1 for users in left_out.values())
    facts = read_facts(store, tmp_path / "ws")
    assert facts.template_table().user_counts() == from_staging.user_counts()
    assert set(left_out) <= set(facts.entities[Label.PROMPT_TEMPLATE.value])  # their capability comes from staging


def test_links_to_write_keeps_each_members_strongest_and_strong_bridges() -> None:
    from graph.detection import cluster_numbers, links_to_write

    owner = {a: "c1" for a in "abcd"} | {"x": "c2"}
    pairs = [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d"), ("a", "x"), ("b", "x"), ("c", "z")]
    weights = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5, 0.15, 0.35, 0.2, 0.05])
    names = ["z", "x", "d", "c", "b", "a", "y"]  # any order; "y" and "z" are in no cluster
    a = np.asarray([names.index(p[0]) for p in pairs])
    b = np.asarray([names.index(p[1]) for p in pairs])
    cluster = cluster_numbers(names, owner)
    assert cluster[0] == cluster[6] == -1 and cluster[1] != cluster[2]

    def links_to_write_of(per_account: int) -> np.ndarray:
        return links_to_write(a, b, weights, cluster, per_account)

    chosen = links_to_write_of(per_account=1)
    # a's best is (a,b); b's (a,b); c's (a,c); d's (a,d); (a,x) is strong across clusters;
    # (b,x) is weak across, (c,z) under the minimum weight
    assert [pairs[i] for i in chosen.tolist()] == [("a", "b"), ("a", "c"), ("a", "d"), ("a", "x")]
    everything = links_to_write_of(per_account=10)
    assert [pairs[i] for i in everything.tolist()] == pairs[:7]


def test_use_table_is_a_full_mapping() -> None:
    table = UseTable.from_mapping(random_uses(5))
    assert list(table.keys()) == list(table) and len(table.values()) == len(table)
    assert dict(table)["10.0.0.1"] == table["10.0.0.1"]
