"""Clustering: strong components split by Leiden CPM, bridges flagged, deterministic."""

from __future__ import annotations

import numpy as np

from graph.clustering import cluster_accounts, components


def _clique(prefix: str, n: int, w: float) -> dict[tuple[str, str], float]:
    names = [f"{prefix}{i:02d}" for i in range(n)]
    return {(a, b): w for i, a in enumerate(names) for b in names[i + 1 :]}


def test_two_groups_joined_by_a_bridge_stay_apart_and_the_bridge_is_flagged() -> None:
    weights = {**_clique("a", 12, 0.8), **_clique("b", 10, 0.8), ("a00", "b00"): 0.9}
    result = cluster_accounts(weights)
    assert [len(c) for c in result.clusters] == [12, 10]
    assert result.bridges == {"a00", "b00"}


def test_weak_links_alone_do_not_join_groups() -> None:
    weights = {**_clique("a", 5, 0.8), **_clique("b", 5, 0.8), ("a01", "b01"): 0.2, ("a02", "b02"): 0.2}
    result = cluster_accounts(weights)
    assert sorted(len(c) for c in result.clusters) == [5, 5]
    assert result.bridges == set()


def test_a_loosely_attached_account_does_not_join_a_big_group() -> None:
    # joining costs RESOLUTION per member of the group: 100 * RESOLUTION > 0.35 + 0.35
    weights = _clique("a", 100, 0.6)
    weights.update({("a00", "zz"): 0.35, ("a01", "zz"): 0.35})
    result = cluster_accounts(weights)
    assert result.clusters[0] == sorted(f"a{i:02d}" for i in range(100))
    assert all("zz" not in c for c in result.clusters)


def test_deterministic_whatever_the_input_order() -> None:
    weights = {**_clique("a", 15, 0.7), **_clique("b", 15, 0.7), ("a03", "b07"): 0.9, ("a04", "b08"): 0.4}
    first = cluster_accounts(weights)
    second = cluster_accounts(dict(reversed(list(weights.items()))))
    assert first.clusters == second.clusters and first.bridges == second.bridges


def test_singletons_are_not_clusters_and_components_are_sorted() -> None:
    assert cluster_accounts({("a", "b"): 0.05}).clusters == []
    assert components(["x"], [("b", "c"), ("a", "b")]) == [["a", "b", "c"], ["x"]]


def test_members_held_by_one_signal_family_are_let_go() -> None:
    from graph.clustering import prune_single_signal

    core = [f"op{i}" for i in range(8)]
    weights = {(a, b): 0.8 for i, a in enumerate(core) for b in core[i + 1 :]}
    families = {p: {"device": 0.5, "network": 0.4, "timing": 0.3} for p in weights}
    # a stranger on two of the operator's proxy exits: network links only
    for other in ("op0", "op1"):
        weights[(other, "stranger")] = 0.5
        families[(other, "stranger")] = {"network": 0.5}
    result = cluster_accounts(weights, family_scores=families.__getitem__)
    assert result.clusters == [core]
    # a cluster held together by one family throughout (timing-only operator) is kept whole
    whole = sorted([*core, "stranger"])
    assert prune_single_signal([whole], weights, lambda p: {"timing": 0.7}) == [whole]
    # many members held by timing alone next to infrastructure: that is the operator, all stay
    mixed = {p: ({"timing": 0.7} if "op5" in p or "op6" in p or "op7" in p else families[p]) for p in weights}
    assert prune_single_signal([core], weights, mixed.__getitem__) == [core]


def test_members_sharing_a_machine_with_the_cluster_stay_though_one_family_holds_them() -> None:
    # an operator on cloned machine images: two images of 16 accounts each, one device id per
    # image; timing ties the images together, but 6 accounts of the first image are co-active
    # with nobody inside: the device is all that holds them. A stranger on two of the
    # operator's exits is held by the network alone. The stranger goes, the 6 stay.
    from graph.clustering import prune_single_signal

    image = {f"op{i:02d}": ("dev-a" if i < 16 else "dev-b") for i in range(32)}
    quiet = {f"op{i:02d}" for i in range(6)}
    members = sorted(image)
    weights: dict[tuple[str, str], float] = {}
    families: dict[tuple[str, str], dict[str, float]] = {}
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            device = 0.45 if image[a] == image[b] else 0.0
            timing = 0.0 if a in quiet or b in quiet else 0.6
            if device or timing:
                weights[(a, b)] = 1 - (1 - device) * (1 - timing)
                families[(a, b)] = {f: s for f, s in (("device", device), ("timing", timing)) if s}
    for other in ("op20", "op21"):
        weights[(other, "stranger")] = 0.5
        families[(other, "stranger")] = {"network": 0.5}
    whole = sorted([*members, "stranger"])

    def on_one_device(pair: tuple[str, str]) -> bool:
        return pair[0] in image and pair[1] in image and image[pair[0]] == image[pair[1]]

    assert prune_single_signal([whole], weights, families.__getitem__, on_one_device) == [members]
    # without knowing which links are a shared machine, the 6 look like strangers
    assert prune_single_signal([whole], weights, families.__getitem__) == [sorted(set(members) - quiet)]
    result = cluster_accounts(weights, family_scores=families.__getitem__, shares_possession=on_one_device)
    assert set(members) <= {a for c in result.clusters for a in c}
    assert all("stranger" not in c for c in result.clusters)


def test_proxy_stranger_with_trace_prompt_overlap_is_still_let_go() -> None:
    # benign users of an operator's residential exits: network links plus a trace of prompt
    # family (a popular prompt both sent once) must not count as a second signal
    core = [f"op{i}" for i in range(10)]
    weights = {(a, b): 0.8 for i, a in enumerate(core) for b in core[i + 1 :]}
    families = {p: {"network": 0.5, "payment": 0.5, "timing": 0.4} for p in weights}
    for stranger in ("s1", "s2"):
        for other in ("op0", "op1", "op2"):
            weights[(other, stranger)] = 0.55
            families[(other, stranger)] = {"network": 0.5, "prompt": 0.03}
    result = cluster_accounts(weights, family_scores=families.__getitem__)
    assert result.clusters == [core]


def test_many_weak_template_links_do_not_pull_benign_users_into_an_operator() -> None:
    # a tight group (relay + device + timing) and 40 ordinary users that each share a few
    # popular prompts with it (weak links) and one stronger one: they stay out. Joining
    # would need more than 30 * RESOLUTION of link weight into the group; each has 0.59.
    core = [f"op{i:02d}" for i in range(30)]
    weights = {(a, b): 0.7 for i, a in enumerate(core) for b in core[i + 1 :]}
    for u in range(40):
        user = f"zz{u:02d}"
        weights[(core[u % 30], user)] = 0.35
        for k in range(1, 3):
            weights[(core[(u + k) % 30], user)] = 0.12
    result = cluster_accounts(weights)
    assert result.clusters[0] == core
    assert all(not any(a.startswith("zz") for a in c) for c in result.clusters if set(core) & set(c))


def test_a_big_evenly_linked_group_stays_whole_and_strangers_stay_out() -> None:
    """5,000 accounts each linked to about 100 others at random (the hub cap keeps an
    operator's link density low as it grows): at a fixed resolution CPM breaks it up; scaled,
    it stays one cluster, and strangers with a couple of links into it stay out."""
    import random

    from graph.clustering import cluster_accounts

    rng = random.Random(5)
    n = 5000
    members = [f"op-{i:05d}" for i in range(n)]
    weights = {}
    for i in range(n):
        for j in rng.sample(range(n), 50):
            if i != j:
                a, b = members[i], members[j]
                weights[(min(a, b), max(a, b))] = 0.8
    for s in range(20):
        for t in (s * 7, s * 7 + 1):
            weights[(members[t], f"stranger-{s:02d}")] = 0.35
    scaled = cluster_accounts(weights)
    assert [len(c) for c in scaled.clusters] == [n]
    fixed = cluster_accounts(weights, reference=10**9)
    assert len(fixed.clusters) > 1 and max(len(c) for c in fixed.clusters) < n


def test_prune_reads_family_scores_in_bulk_as_it_does_one_by_one() -> None:
    """Detection hands prune_single_signal the family scores of all its pairs at once
    (``scores_of``, columns in FAMILIES order); it must prune exactly as with the per-pair
    ``family_scores``."""
    import random

    import numpy as np

    from graph.clustering import prune_single_signal
    from graph.linkage.evidence import FAMILIES

    rng = random.Random(5)
    clusters = [[f"c{c}-{i:02d}" for i in range(rng.randint(5, 30))] for c in range(8)]
    weights: dict[tuple[str, str], float] = {}
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for members in clusters:
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if rng.random() < 0.4:
                    fams = rng.sample(FAMILIES, rng.choice([1, 1, 2, 3]))
                    scores[(a, b)] = {f: rng.choice([0.05, 0.2, 0.5, 0.9]) for f in fams}
                    weights[(a, b)] = 0.5
    scores[(clusters[0][0], clusters[1][0])] = {"network": 0.9}  # across clusters: not counted
    weights[(clusters[0][0], clusters[1][0])] = 0.9

    def scores_of(pairs):  # noqa: ANN001, ANN202
        return np.asarray([[scores[p].get(f, 0.0) for f in FAMILIES] for p in pairs]).reshape(len(pairs), len(FAMILIES))

    one_by_one = prune_single_signal(clusters, weights, scores.__getitem__)
    assert one_by_one != clusters  # the world has members to let go
    assert prune_single_signal(clusters, weights, scores.__getitem__, scores_of=scores_of) == one_by_one


def test_big_groups_split_in_worker_processes_give_the_same_clusters() -> None:
    """Two dense communities joined by a few strong links, over ``PARALLEL_LINKS`` links: the
    Leiden run in a worker returns what the inline one does."""
    from graph.clustering import PARALLEL_LINKS, cluster_indexed, worker_pool

    rng = np.random.default_rng(11)
    half = 260
    edges = [(i, j) for side in (0, half) for i in range(side, side + half) for j in range(i + 1, side + half)
             if rng.random() < 0.8]
    edges += [(i, half + i) for i in range(3)]
    a = np.asarray([e[0] for e in edges], dtype=np.int64)
    b = np.asarray([e[1] for e in edges], dtype=np.int64)
    w = rng.uniform(0.35, 0.95, len(edges))
    assert len(edges) >= PARALLEL_LINKS
    inline = cluster_indexed(2 * half, a, b, w)
    with worker_pool() as pool:
        assert pool is not None
        pooled = cluster_indexed(2 * half, a, b, w, pool=pool)
    assert [c.tolist() for c in pooled] == [c.tolist() for c in inline]
    assert sorted(len(c) for c in inline) == [half, half]


def test_lockstep_prompt_links_are_a_members_second_signal_but_cluster_no_one() -> None:
    """A farm held by shared exits and by one script sent in lock-step: a few members share
    exits with the others but run the script only beside members they share no exit with.
    Those prompt + co-activity links cluster nobody (an outsider tied by them alone stays
    out), yet they show the few are no proxy strangers: pruning counts them."""
    farm = [f"op{i:02d}" for i in range(30)]
    few = set(farm[:4])
    weights: dict[tuple[str, str], float] = {}
    families: dict[tuple[str, str], dict[str, float]] = {}
    lockstep: list[tuple[str, str]] = []
    for i, a in enumerate(farm):
        for b in farm[i + 1 :]:
            if a in few or b in few:
                if (int(a[2:]) + int(b[2:])) % 2:  # exits only
                    weights[(a, b)], families[(a, b)] = 0.5, {"network": 0.5}
                else:  # the script in lock-step only
                    lockstep.append((a, b))
                    families[(a, b)] = {"prompt": 0.5, "timing": 0.6}
            else:
                weights[(a, b)] = 0.8
                families[(a, b)] = {"network": 0.5, "timing": 0.6}
    for a in farm[10:14]:  # an outsider who runs the same script at the same hours
        lockstep.append((a, "outsider"))
        families[(a, "outsider")] = {"prompt": 0.5, "timing": 0.6}
    without = cluster_accounts(weights, family_scores=families.__getitem__)
    assert without.clusters == [sorted(set(farm) - few)]  # held by exits alone, let go
    found = cluster_accounts(weights, family_scores=families.__getitem__, corroborating=lockstep)
    assert found.clusters == [farm]
