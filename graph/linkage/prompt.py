"""Prompt evidence: the same template, or near-duplicate templates, sent from several accounts.

The loader reduces each prompt to a template (fills such as numbers and quoted strings
stripped) with a 64-value MinHash in ``staging/templates.parquet``. Accounts sharing a template
are linked with weight falling with the template's popularity and rising with how often both
sent it (two strangers who each once typed the same short request are no evidence) (a one-liner that strangers all
send is over the cap and reported as a hub). Templates whose MinHashes collide in LSH at a
Jaccard of about ``NEAR_DUP_THRESHOLD`` form near-duplicate families, which link their users
more weakly. Reasons carry the template text (a mined wrapper names its fixed part, the slot marked
``<*>``, see loaders.template_mining) and an example prompt, so an analyst sees what was shared.

Popularity among strangers: a template is evidence of one operator when the accounts sending
it are related otherwise, and of nothing when it is a commons (a popular human prompt, a
collection pasted by thousands, a popular app's system prompt) that unrelated people send. So
a template's weight also falls with its *independent sharers*: how many separate groups of
the account-infrastructure graph (accounts joined by a shared IP, payment method or device
that is not a hub) its users fall into, by the same ``rarity`` curve as its plain user count
(an IDF over groups rather than accounts). An operator's script sent from 40 accounts on its
own cards and exits is one group and keeps its weight; the same 40 accounts spread over 40
strangers' homes weigh ``rarity(40)`` as much again. Any operator's accounts share something
beyond the text (that is what makes them one operator's); strangers' do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
# Shared values that relate accounts for the independent-sharer count: who they pay with,
# which devices and addresses they use (email patterns are too coarse: a webmail domain).
GROUP_LABELS = (Label.IP.value, Label.PAYMENT_METHOD.value, Label.DEVICE.value)


def _example(facts: Facts, template_id: str) -> str:
    props = facts.props(Label.PROMPT_TEMPLATE.value, template_id)
    return str(props.get("example") or props.get("template") or "")[:EXAMPLE_CHARS]


def _template(facts: Facts, template_id: str) -> str:
    """The template's text: for a mined wrapper its fixed part with the slot marked ``<*>``."""
    return str(facts.props(Label.PROMPT_TEMPLATE.value, template_id).get("template") or "")[:EXAMPLE_CHARS]


def read_minhash_matrix(workspace: Path | None) -> tuple[list[str], np.ndarray]:
    """The staged templates' ids (sorted) and their MinHash signatures as one uint64 matrix,
    a row per id; templates without a signature are left out. Read column-wise: at the seed
    scale there are millions of templates, and a Python list per signature took longer than
    the whole family search.

    Empty (``[]``, a 0x0 matrix) when nothing is staged."""
    empty: tuple[list[str], np.ndarray] = ([], np.zeros((0, 0), dtype=np.uint64))
    if workspace is None or not templates_path(workspace).exists():
        return empty
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(templates_path(workspace), columns=["template_id", "minhash"])
    signatures = table.column("minhash").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(signatures), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    present = np.flatnonzero(lengths > 0)
    if not present.size:
        return empty
    flat = pc.list_flatten(signatures).to_numpy(zero_copy_only=False).astype(np.uint64)
    width = int(lengths[present].min())
    starts = np.r_[0, np.cumsum(lengths)[:-1]][present]
    matrix = flat[starts[:, None] + np.arange(width)[None, :]]
    names = table.column("template_id").combine_chunks().take(present)
    order = pc.sort_indices(names).to_numpy()
    ids = [str(t) for t in names.take(order).to_pylist()]
    matrix = matrix[order]
    return ids, matrix


def near_duplicate_families(signatures: Mapping[str, np.ndarray], threshold: float = NEAR_DUP_THRESHOLD) -> list[list[str]]:
    """Groups (two or more) of templates whose MinHashes agree on at least ``threshold`` of
    their values, sorted for determinism (``near_duplicate_groups`` over the signatures).

    >>> near_duplicate_families({"a": np.arange(64), "b": np.r_[np.arange(60), [0, 0, 0, 0]],
    ...                          "c": np.arange(64) + 100})
    [['a', 'b']]
    """
    ids = sorted(t for t, s in signatures.items() if len(s))
    if len(ids) < 2:
        return []
    width = min(len(signatures[t]) for t in ids)
    matrix = np.stack([np.asarray(signatures[t][:width], dtype=np.uint64) for t in ids])
    return near_duplicate_groups(ids, matrix, threshold)


def _packed(columns: np.ndarray) -> list[np.ndarray]:
    """The columns of a uint32-valued matrix two by two as uint64 (high, low), so a
    lexicographic sort over half as many keys orders the rows the same way."""
    keys = [(columns[:, k] << np.uint64(32)) | columns[:, k + 1] for k in range(0, columns.shape[1] - 1, 2)]
    if columns.shape[1] % 2:
        keys.append(columns[:, -1] << np.uint64(32))
    return keys


def _in_shared_buckets(keys: Sequence[np.ndarray]) -> np.ndarray:
    """The rows whose band (given as packed ``keys``) some other row has too, found by one
    sort of a hash of the band: most templates are alone in each bucket, and only the rest
    need the full sort. A hash collision only adds rows; the caller compares the band itself."""
    digest = np.zeros(keys[0].shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for key in keys:
            digest = (digest ^ key) * np.uint64(0x9E3779B97F4A7C15)
            digest ^= digest >> np.uint64(29)
    order = np.argsort(digest, kind="stable")
    ordered = digest[order]
    repeated = np.zeros(ordered.size, dtype=bool)
    same = ordered[1:] == ordered[:-1]
    repeated[1:] |= same
    repeated[:-1] |= same
    return np.sort(order[repeated])


def near_duplicate_groups(ids: Sequence[str], matrix: np.ndarray, threshold: float = NEAR_DUP_THRESHOLD) -> list[list[str]]:
    """``near_duplicate_families`` over sorted ``ids`` and their signatures as rows of a
    uint64 ``matrix`` (values below 2**32, as the loader's MinHashes are).

    LSH banding, vectorised: per band, templates are sorted by (band values, then the rest of
    the signature rotated to start after the band), so templates sharing the band's bucket are
    adjacent and the most similar of them next to each other; each adjacent pair in one bucket
    is compared on the whole signature, and the families are the connected components of the
    pairs similar enough. Comparing neighbours only keeps this linear in the number of
    templates (popular short prompts fill huge buckets); across bands the neighbours differ,
    which connects near-duplicate families.
    Only the templates that share a bucket with another are sorted (``_in_shared_buckets``),
    which orders them as sorting all would."""
    if len(ids) < 2:
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    width = matrix.shape[1]
    rows = max(1, width // LSH_BANDS)
    joined: list[tuple[np.ndarray, np.ndarray]] = []
    for band in range(width // rows):
        lo, hi = band * rows, (band + 1) * rows
        candidates = _in_shared_buckets(_packed(matrix[:, lo:hi]))
        if candidates.size < 2:
            continue
        sub = matrix[candidates]
        rest = sub[:, [(hi + k) % width for k in range(min(SORT_VALUES, width - rows))]]
        keys = _packed(sub[:, lo:hi]) + (_packed(rest) if rest.shape[1] else [])
        # np.lexsort sorts by the last key first: band values, then the rest in order; it is
        # stable, so equal rows keep their order, as in a sort of every row
        order = candidates[np.lexsort(tuple(reversed(keys)))]
        band_sorted = matrix[order, lo:hi]
        same = np.all(band_sorted[1:] == band_sorted[:-1], axis=1)
        left, right = order[:-1][same], order[1:][same]
        if left.size == 0:
            continue
        similar = (matrix[left] == matrix[right]).mean(axis=1) >= threshold
        joined.append((left[similar], right[similar]))
    if not joined:
        return []
    left, right = np.concatenate([j[0] for j in joined]), np.concatenate([j[1] for j in joined])
    graph = coo_matrix((np.ones(left.size, dtype=np.int8), (left, right)), shape=(len(ids), len(ids)))
    _, component = connected_components(graph, directed=False)
    groups: dict[int, list[str]] = {}
    for index in np.flatnonzero(np.bincount(component)[component] > 1).tolist():
        groups.setdefault(int(component[index]), []).append(ids[index])
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def infrastructure_groups(facts: Facts, cap: int, labels: Sequence[str] = GROUP_LABELS) -> dict[str, int]:
    """account -> its group: connected components of the graph of accounts and the shared
    values of ``labels`` used by 2..``cap`` accounts (a hub relates nobody). Accounts without
    such a value are absent (each is a group of its own)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    names: dict[str, int] = {}
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    offset = 0
    for label in labels:
        table = facts.table(label)
        if not table.rows():
            continue
        sizes = table.sizes()
        key_of = table.key_of_rows()
        keep = (sizes[key_of] >= 2) & (sizes[key_of] <= cap)
        local = np.asarray([names.setdefault(n, len(names)) for n in table.names], dtype=np.int64)
        rows.append(local[table.account[keep].astype(np.int64)])
        cols.append(key_of[keep] + offset)
        offset += len(table.values_sorted)
    if not names or not rows:
        return {}
    r, c = np.concatenate(rows), np.concatenate(cols)
    n_acc = len(names)
    size = n_acc + offset
    graph = coo_matrix((np.ones(r.size), (r, c + n_acc)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    return {name: int(component[i]) for name, i in names.items()}


def independent_sharers(table: UseTable, group_of: Mapping[str, int]) -> np.ndarray:
    """Per value of ``table`` (aligned with ``values_sorted``), how many separate groups its
    users fall into (an account in no group counts as its own)."""
    if not table.rows():
        return np.zeros(len(table.values_sorted), dtype=np.int64)
    own = np.arange(len(table.names), dtype=np.int64) + (max(group_of.values(), default=-1) + 1)
    group = np.asarray([group_of.get(n, -1) for n in table.names], dtype=np.int64)
    group = np.where(group >= 0, group, own)[table.account.astype(np.int64)]
    key_of = table.key_of_rows()
    distinct = np.unique(np.stack([key_of, group]), axis=1)
    return np.bincount(distinct[0], minlength=len(table.values_sorted)).astype(np.int64)


def _weights(base: float, sharers: np.ndarray) -> WeightsOf:
    """``base * rarity(n) * rarity(independent sharers) * volume_factor(counts)`` column-wise
    (both reason kinds' weight); ``sharers`` is aligned with the linked table's values."""

    def weights(table: UseTable, rows_a: np.ndarray, rows_b: np.ndarray, key_pos: np.ndarray, n: np.ndarray) -> np.ndarray:
        return base * rarities(n) * rarities(sharers[key_pos]) * volume_factors(table.count[rows_a], table.count[rows_b])

    return weights


def link_prompt(evidence: Evidence, facts: Facts, cap: int) -> int:
    """Add shared-template and near-duplicate-template reasons."""
    label = Label.PROMPT_TEMPLATE.value
    templates = UseTable.from_mapping(facts.users(label))
    group_of = infrastructure_groups(facts, cap)
    sharers = independent_sharers(templates, group_of)
    sharers_of = dict(zip(templates.values_sorted, sharers.tolist(), strict=True))

    def shared(key: str, a: str, b: str, users: Mapping[str, Use], n: int) -> Reason:
        ua, ub = users[a], users[b]
        k = sharers_of.get(key, n)
        detail = {"counts": [ua.count, ub.count], "template": _template(facts, key), "example": _example(facts, key),
                  "independent_sharers": k}
        weight = TEMPLATE_BASE * rarity(n) * rarity(k) * volume_factor(ua.count, ub.count)
        return Reason(FAMILY, "shared_template", label, key, n, weight, detail)

    added = link_shared_values(evidence, family=FAMILY, label=label, values=templates, cap=cap,
                               reason_for=shared, weights_of=_weights(TEMPLATE_BASE, sharers), hub_rule=None)
    families: dict[str, dict[str, Use]] = {}
    members: dict[str, list[str]] = {}
    for group in near_duplicate_groups(*read_minhash_matrix(facts.workspace)):
        fam_key = group[0]
        members[fam_key] = group
        bucket = families.setdefault(fam_key, {})
        for tid in group:
            for account, use in templates.get(tid, {}).items():
                bucket.setdefault(account, Use()).merge(use)
    family_table = UseTable.from_mapping(families)
    family_sharers = independent_sharers(family_table, group_of)
    family_sharers_of = dict(zip(family_table.values_sorted, family_sharers.tolist(), strict=True))

    def near(key: str, a: str, b: str, users: Mapping[str, Use], n: int) -> Reason:
        detail = {
            "counts": [users[a].count, users[b].count],
            "templates": members[key][:5],
            "examples": [_example(facts, t) for t in members[key][:2]],
            "independent_sharers": family_sharers_of.get(key, n),
        }
        weight = NEAR_DUP_BASE * rarity(n) * rarity(family_sharers_of.get(key, n)) * volume_factor(users[a].count, users[b].count)
        return Reason(FAMILY, "near_duplicate_template", "TemplateFamily", key, n, weight, detail)

    added += link_shared_values(evidence, family=FAMILY, label="TemplateFamily", values=family_table, cap=cap,
                                reason_for=near, weights_of=_weights(NEAR_DUP_BASE, family_sharers))
    return added
