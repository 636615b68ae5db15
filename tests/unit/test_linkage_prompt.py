"""Prompt evidence: shared templates with examples, popular prompts suppressed, near-duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasketch import MinHash

from graph.linkage.evidence import Evidence
from graph.linkage.facts import Facts, Use
from graph.linkage.prompt import (
    independent_sharers,
    infrastructure_groups,
    link_prompt,
    near_duplicate_groups,
    read_minhash_matrix,
)
from graph.linkage.uses import UseTable
from graph.schema import Label
from graph.workspace import templates_path

OP_TEXT = "You are an expert agent. Think step by step and show all reasoning before the final answer about"


def _minhash(text: str) -> list[int]:
    mh = MinHash(num_perm=64, seed=1)
    words = text.split()
    for i in range(len(words) - 2):
        mh.update(" ".join(words[i : i + 3]).encode())
    return [int(v) for v in mh.hashvalues]


def test_shared_template_links_with_an_example_and_popular_prompt_is_a_hub() -> None:
    facts = Facts()
    facts.uses[Label.PROMPT_TEMPLATE.value] = {
        "t-op": {"a": Use(50), "b": Use(40)},
        "t-viral": {f"v{i}": Use(2) for i in range(60)},
    }
    facts.entities[Label.PROMPT_TEMPLATE.value] = {"t-op": {"template": "tpl", "example": OP_TEXT}}
    ev = Evidence()
    link_prompt(ev, facts, cap=50)
    (reason,) = ev.reasons(("a", "b"))
    assert reason.kind == "shared_template" and reason.detail["example"].startswith("You are an expert agent")
    assert ev.weight(("v1", "v2")) == 0.0
    assert [(h.key, h.why) for h in ev.hubs] == [("t-viral", "over_cap")]


def test_near_duplicate_templates_link_their_users(tmp_path: Path) -> None:
    texts = {
        "t1": OP_TEXT + " sorting algorithms in the kernel scheduler",
        "t2": OP_TEXT + " sorting algorithms in the kernel schedulers",
        "t3": "give me a recipe for pancakes with lemon and ginger please thanks a lot",
    }
    templates_path(tmp_path).parent.mkdir(parents=True)
    pq.write_table(
        pa.table({"template_id": list(texts), "minhash": pa.array([_minhash(t) for t in texts.values()], pa.list_(pa.uint32()))}),
        templates_path(tmp_path),
    )
    assert near_duplicate_groups(*read_minhash_matrix(tmp_path)) == [["t1", "t2"]]
    facts = Facts(workspace=tmp_path)
    facts.uses[Label.PROMPT_TEMPLATE.value] = {"t1": {"a": Use(5)}, "t2": {"b": Use(5)}, "t3": {"c": Use(5)}}
    ev = Evidence()
    link_prompt(ev, facts, cap=50)
    (reason,) = ev.reasons(("a", "b"))
    assert reason.kind == "near_duplicate_template" and reason.detail["templates"] == ["t1", "t2"]
    assert ev.weight(("a", "c")) == 0.0


def _families_sorting_every_row(ids: list[str], matrix: np.ndarray, threshold: float = 0.8, bands: int = 16) -> list[list[str]]:
    """The banding as first written (every row sorted on every band key): the reference the
    bucketed, packed search must agree with exactly."""
    width = matrix.shape[1]
    rows = width // bands
    parent = list(range(len(ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for band in range(bands):
        lo, hi = band * rows, (band + 1) * rows
        rest = np.roll(matrix, -hi, axis=1)[:, :12]
        order = np.lexsort(tuple(rest[:, k] for k in range(11, -1, -1)) + tuple(matrix[:, k] for k in range(hi - 1, lo - 1, -1)))
        for x, y in zip(order[:-1].tolist(), order[1:].tolist(), strict=True):
            if (matrix[x, lo:hi] == matrix[y, lo:hi]).all() and (matrix[x] == matrix[y]).mean() >= threshold:
                rx, ry = find(x), find(y)
                parent[max(rx, ry)] = min(rx, ry)
    groups: dict[int, list[str]] = {}
    for i, tid in enumerate(ids):
        groups.setdefault(find(i), []).append(tid)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def test_near_duplicate_search_agrees_with_sorting_every_row() -> None:
    """Few distinct values make buckets crowded and collide on every band; mutated copies of a
    few bases make near-duplicate families, some chained; values near 2**32 test the packing."""
    rng = np.random.default_rng(5)
    bases = rng.integers(0, 2**32, size=(30, 64), dtype=np.uint64)
    rows = []
    for _ in range(600):
        row = bases[rng.integers(0, 30)].copy()
        flips = rng.integers(0, 64, size=rng.integers(0, 20))
        row[flips] = rng.integers(2**32 - 4, 2**32, size=flips.size, dtype=np.uint64)
        rows.append(row)
    rows += list(rng.integers(0, 3, size=(200, 64), dtype=np.uint64))  # crowded buckets of noise
    matrix = np.stack(rows)
    ids = [f"t{i:04d}" for i in range(len(rows))]
    expected = _families_sorting_every_row(ids, matrix)
    assert len(expected) > 20 and near_duplicate_groups(ids, matrix) == expected


def test_minhash_matrix_reads_sorted_ids_and_leaves_out_missing_signatures(tmp_path: Path) -> None:
    templates_path(tmp_path).parent.mkdir(parents=True)
    pq.write_table(
        pa.table({"template_id": ["t2", "t9", "t1"],
                  "minhash": pa.array([[4, 5], None, [2**32 - 1, 0]], pa.list_(pa.uint32()))}),
        templates_path(tmp_path),
    )
    ids, matrix = read_minhash_matrix(tmp_path)
    assert ids == ["t1", "t2"] and matrix.dtype == np.uint64 and matrix.tolist() == [[2**32 - 1, 0], [4, 5]]


def test_no_staging_means_exact_templates_only(tmp_path: Path) -> None:
    assert read_minhash_matrix(tmp_path)[0] == [] and read_minhash_matrix(None)[0] == []


def test_a_commons_template_weighs_less_than_one_shared_by_related_accounts() -> None:
    """Same number of users, same use: a template whose users are strangers (each on their own
    card and address) links a pair more weakly than one whose users share a payment method."""
    facts = Facts()
    strangers = [f"s{i}" for i in range(20)]
    ring = [f"r{i}" for i in range(20)]
    facts.uses[Label.PROMPT_TEMPLATE.value] = {
        "t-commons": {a: Use(3) for a in ["a", "b", *strangers]},
        "t-ring": {a: Use(3) for a in ["c", "d", *ring]},
    }
    facts.uses[Label.PAYMENT_METHOD.value] = {
        **{f"pm-{a}": {a: Use(1)} for a in ["a", "b", *strangers]},
        "pm-ring": {a: Use(1) for a in ["c", "d", *ring[:10]]},
        "pm-ring2": {a: Use(1) for a in ring[9:]},
    }
    ev = Evidence()
    link_prompt(ev, facts, cap=50)
    (commons,) = ev.reasons(("a", "b"))
    (ring_reason,) = ev.reasons(("c", "d"))
    assert commons.detail["independent_sharers"] == 22 and ring_reason.detail["independent_sharers"] == 1
    assert commons.accounts == ring_reason.accounts == 22
    assert commons.weight < 0.5 * ring_reason.weight
    assert ev.weight(("a", "b")) < ev.weight(("c", "d"))


def test_infrastructure_groups_join_accounts_through_shared_values_but_not_hubs() -> None:
    facts = Facts()
    facts.uses[Label.IP.value] = {"ip1": {"a": Use(1), "b": Use(1)}, "ip-hub": {f"h{i}": Use(1) for i in range(60)} | {"a": Use(1)}}
    facts.uses[Label.DEVICE.value] = {"d1": {"b": Use(1), "c": Use(1)}, "d2": {"x": Use(1)}}
    groups = infrastructure_groups(facts, cap=50)
    assert groups["a"] == groups["b"] == groups["c"]
    assert groups.get("h1") != groups["a"] and groups.get("x") != groups["a"]
    table = UseTable.from_mapping({"t": {"a": Use(1), "b": Use(1), "c": Use(1), "y": Use(1), "z": Use(1)}})
    assert independent_sharers(table, groups).tolist() == [3]  # {a b c}, y, z
