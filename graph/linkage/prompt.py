"""Prompt evidence: the same template, or near-duplicate templates, sent from several accounts.

The loader reduces each prompt to a template (fills such as numbers and quoted strings
stripped) with a 64-value MinHash in ``staging/templates.parquet``. Accounts sharing a template
are linked with weight falling with the template's popularity and rising with how often both
sent it (two strangers who each once typed the same short request are no evidence) (a one-liner that strangers all
send is over the cap and reported as a hub). Templates whose MinHashes collide in LSH at a
Jaccard of about ``NEAR_DUP_THRESHOLD`` form near-duplicate families, which link their users
more weakly. Reasons carry the template text (a mined wrapper names its fixed part, the slot marked
``<*>``, see loaders.template_mining) and an example prompt, so an analyst sees what was shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from graph.linkage.evidence import Evidence, Reason, rarity, volume_factor
from graph.linkage.facts import Facts, Use
from graph.linkage.hubs import WeightsOf, link_shared_values, rarities, volume_factors
from graph.linkage.uses import UseTable
from graph.schema import Label
from graph.workspace import templates_path

FAMILY = "prompt"
TEMPLATE_BASE = 0.5
NEAR_DUP_BASE = 0.35
NEAR_DUP_THRESHOLD = 0.8
EXAMPLE_CHARS = 200
SORT_VALUES = 12  # signature values after the band that order a bucket's members
LSH_BANDS = 16


def _example(facts: Facts, template_id: str) -> str:
    props = facts.props(Label.PROMPT_TEMPLATE.value, template_id)
    return str(props.get("example") or props.get("template") or "")[:EXAMPLE_CHARS]


def _template(facts: Facts, template_id: str) -> str:
    """The template's text: for a mined wrapper its fixed part with the slot marked ``<*>``."""
    return str(facts.props(Label.PROMPT_TEMPLATE.value, template_id).get("template") or "")[:EXAMPLE_CHARS]


def read_minhashes(workspace: Path | None) -> dict[str, np.ndarray]:
    """template_id -> MinHash signature from staging; empty when nothing is staged."""
    if workspace is None or not templates_path(workspace).exists():
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(templates_path(workspace), columns=["template_id", "minhash"])
    ids = table.column("template_id").to_pylist()
    sigs = table.column("minhash").to_pylist()
    return {str(t): np.asarray(s, dtype=np.uint64) for t, s in zip(ids, sigs, strict=True) if s}


def near_duplicate_families(signatures: Mapping[str, np.ndarray], threshold: float = NEAR_DUP_THRESHOLD) -> list[list[str]]:
    """Groups (two or more) of templates whose MinHashes agree on at least ``threshold`` of
    their values, sorted for determinism.

    LSH banding, vectorised: per band, templates are sorted by (band values, then the rest of
    the signature rotated to start after the band), so templates sharing the band's bucket are
    adjacent and the most similar of them next to each other; each adjacent pair in one bucket
    is compared on the whole signature and joined by union-find when similar enough. Comparing
    neighbours only keeps this linear in the number of templates (popular short prompts fill
    huge buckets); across bands the neighbours differ, which connects near-duplicate families."""
    ids = sorted(t for t, s in signatures.items() if len(s))
    if len(ids) < 2:
        return []
    width = min(len(signatures[t]) for t in ids)
    matrix = np.stack([np.asarray(signatures[t][:width], dtype=np.uint64) for t in ids])
    rows = max(1, width // LSH_BANDS)
    parent = np.arange(len(ids))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = int(parent[root])
        while parent[x] != root:
            parent[x], x = root, int(parent[x])
        return root

    for band in range(width // rows):
        lo, hi = band * rows, (band + 1) * rows
        rest = np.roll(matrix, -hi, axis=1)[:, : min(SORT_VALUES, width - rows)]
        # np.lexsort sorts by the last key first: band values, then the rest in order
        order = np.lexsort(tuple(rest[:, k] for k in range(rest.shape[1] - 1, -1, -1)) + tuple(
            matrix[:, k] for k in range(hi - 1, lo - 1, -1)))
        band_sorted = matrix[order, lo:hi]
        same = np.all(band_sorted[1:] == band_sorted[:-1], axis=1)
        left, right = order[:-1][same], order[1:][same]
        if left.size == 0:
            continue
        similar = (matrix[left] == matrix[right]).mean(axis=1) >= threshold
        for x, y in zip(left[similar].tolist(), right[similar].tolist(), strict=True):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    groups: dict[int, list[str]] = {}
    for index, tid in enumerate(ids):
        groups.setdefault(find(index), []).append(tid)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _weights(base: float) -> WeightsOf:
    """``base * rarity(n) * volume_factor(counts)`` column-wise (both reason kinds' weight)."""

    def weights(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray, key_pos: np.ndarray, n: np.ndarray) -> np.ndarray:
        return base * rarities(n) * volume_factors(table.count[rows_a], table.count[rows_b])

    return weights


def link_prompt(evidence: Evidence, facts: Facts, cap: int) -> int:
    """Add shared-template and near-duplicate-template reasons."""
    label = Label.PROMPT_TEMPLATE.value
    templates = facts.users(label)

    def shared(key: str, a: str, b: str, users: Mapping[str, Use], n: int) -> Reason:
        ua, ub = users[a], users[b]
        detail = {"counts": [ua.count, ub.count], "template": _template(facts, key), "example": _example(facts, key)}
        weight = TEMPLATE_BASE * rarity(n) * volume_factor(ua.count, ub.count)
        return Reason(FAMILY, "shared_template", label, key, n, weight, detail)

    added = link_shared_values(evidence, family=FAMILY, label=label, values=templates, cap=cap,
                               reason_for=shared, weights_of=_weights(TEMPLATE_BASE), hub_rule=None)
    families: dict[str, dict[str, Use]] = {}
    members: dict[str, list[str]] = {}
    for group in near_duplicate_families(read_minhashes(facts.workspace)):
        fam_key = group[0]
        members[fam_key] = group
        bucket = families.setdefault(fam_key, {})
        for tid in group:
            for account, use in templates.get(tid, {}).items():
                bucket.setdefault(account, Use()).merge(use)

    def near(key: str, a: str, b: str, users: Mapping[str, Use], n: int) -> Reason:
        detail = {
            "counts": [users[a].count, users[b].count],
            "templates": members[key][:5],
            "examples": [_example(facts, t) for t in members[key][:2]],
        }
        weight = NEAR_DUP_BASE * rarity(n) * volume_factor(users[a].count, users[b].count)
        return Reason(FAMILY, "near_duplicate_template", "TemplateFamily", key, n, weight, detail)

    added += link_shared_values(evidence, family=FAMILY, label="TemplateFamily", values=families, cap=cap,
                                reason_for=near, weights_of=_weights(NEAR_DUP_BASE))
    return added
