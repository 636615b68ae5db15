"""Scoring the current detection against ground-truth labels, beside two simple baselines.

Account level: an account is *predicted malicious* when it is a member of a flagged cluster
(for a baseline: of any multi-account component). Reported for each method: precision, recall
and F1; recall per operator; false-positive rate per hard-negative group kind (from groups.csv
beside the labels, ``university:u03`` counts as ``university``); cluster purity (share of
clustered accounts that carry their cluster's majority label); adjusted Rand index of the
flagged partition against operators (every unflagged account in one "benign" block, as the
truth puts every benign account); and, for detection, attribution accuracy: the share of
accounts of operators with known indicators whose cluster is attributed (by an analyst) or
suggested to their true operator.

Failure modes (added with the scenario library, loaders/synthetic_world.py):
- ``mixed_clusters`` (every method): flagged clusters holding more than one operator's accounts,
  or an operator's accounts together with benign ones; how many, their accounts, the accounts
  not of the cluster's majority label, and flagged clusters of benign accounts only;
- ``misattribution`` (detection): accounts in a cluster attributed (or suggested) to an operator
  that does not run them, per true operator, over all live clusters and over flagged ones;
- ``clusters`` and ``cohesion`` per operator (every method): how many flagged clusters hold its
  accounts, and the share of its flagged accounts in the largest of them (1: one cluster);
- ``takeover`` (detection, when ``takeovers.csv`` lies beside the labels): whether each
  taken-over account was flagged, per operator, and the best score of a cluster holding one.

Baselines:
- ``shared_infrastructure``: connected components over any shared IP, card or device.
- ``neo4j_fraud_rule``: the public Neo4j fraud-detection example: accounts that share at least
  two identifiers (cards or devices each used by at most 10 accounts), then weakly connected
  components.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from graph.clustering import components
from graph.linkage.facts import Facts, read_facts
from graph.schema import Label, Rel
from graph.store import GraphStore

BENIGN = ""
FRAUD_RULE_MAX_ACCOUNTS = 10
FRAUD_RULE_MIN_SHARED = 2


def read_labels(path: Path) -> dict[str, str]:
    """account_id -> operator_id ('' for benign) from labels.csv."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["account_id"]: (row.get("operator_id") or "").strip() for row in csv.DictReader(fh)}


def read_groups(path: Path) -> dict[str, str]:
    """account_id -> group kind (the part before ':') from groups.csv; empty when absent."""
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["account_id"]: (row.get("group") or "").split(":", 1)[0] for row in csv.DictReader(fh)}


def read_takeovers(path: Path) -> dict[str, tuple[str, str]]:
    """account_id -> (operator_id, onset) from takeovers.csv; empty when absent."""
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["account_id"]: ((row.get("operator_id") or "").strip(), row.get("onset") or "") for row in csv.DictReader(fh)}


# ---- metrics --------------------------------------------------------------------------------------


MIXED_CLUSTER_DETAILS = 20


def mixed_clusters(flagged_clusters: Sequence[Sequence[str]], labels: Mapping[str, str]) -> dict[str, Any]:
    """Flagged clusters whose members belong to more than one operator, or to an operator and
    to nobody (benign); plus flagged clusters of benign accounts only, counted apart."""
    mixed: list[dict[str, Any]] = []
    benign_only = benign_only_accounts = 0
    for members in flagged_clusters:
        counts = Counter(labels.get(a, BENIGN) for a in members)
        operators = sorted(o for o in counts if o)
        if not operators:
            benign_only += 1
            benign_only_accounts += len(members)
            continue
        if len(operators) > 1 or counts[BENIGN]:
            majority = max(counts.values())
            mixed.append({"size": len(members), "operators": {o: counts[o] for o in operators},
                          "benign": counts[BENIGN], "minority": len(members) - majority})
    mixed.sort(key=lambda m: (-m["minority"], -m["size"]))
    return {
        "count": len(mixed),
        "accounts": sum(m["size"] for m in mixed),
        "minority_accounts": sum(m["minority"] for m in mixed),
        "benign_accounts": sum(m["benign"] for m in mixed),
        "multi_operator": sum(1 for m in mixed if len(m["operators"]) > 1),
        "benign_only_clusters": benign_only,
        "benign_only_accounts": benign_only_accounts,
        "largest": mixed[:MIXED_CLUSTER_DETAILS],
    }


def operator_pieces(flagged_clusters: Iterable[Sequence[str]], labels: Mapping[str, str]) -> dict[str, list[int]]:
    """Per operator, how many of its accounts each flagged cluster holding some of them
    holds, largest first: one operator should be one cluster, and an investigator handed
    forty pieces of one farm attributes, merges and exports it forty times.

    >>> operator_pieces([["a", "b", "x"], ["c"]], {"a": "op", "b": "op", "c": "op", "x": ""})
    {'op': [2, 1]}
    """
    out: dict[str, list[int]] = {}
    for members in flagged_clusters:
        for op, n in Counter(labels.get(a, BENIGN) for a in members).items():
            if op != BENIGN:
                out.setdefault(op, []).append(n)
    return {op: sorted(sizes, reverse=True) for op, sizes in sorted(out.items())}


def _comb2(n: int) -> float:
    return n * (n - 1) / 2.0


def adjusted_rand_index(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """ARI of two labelings of the same items (Hubert & Arabie)."""
    n = len(truth)
    if n < 2:
        return 1.0
    table: dict[tuple[str, str], int] = {}
    rows: dict[str, int] = {}
    cols: dict[str, int] = {}
    for t, p in zip(truth, predicted, strict=True):
        table[(t, p)] = table.get((t, p), 0) + 1
        rows[t] = rows.get(t, 0) + 1
        cols[p] = cols.get(p, 0) + 1
    index = sum(_comb2(v) for v in table.values())
    a = sum(_comb2(v) for v in rows.values())
    b = sum(_comb2(v) for v in cols.values())
    expected = a * b / _comb2(n)
    top = (a + b) / 2.0
    if math.isclose(top, expected):
        return 1.0
    return (index - expected) / (top - expected)


def purity(clusters: Iterable[Sequence[str]], labels: Mapping[str, str]) -> float:
    """Share of clustered accounts carrying their cluster's majority label."""
    total = hits = 0
    for members in clusters:
        counts: dict[str, int] = {}
        for a in members:
            counts[labels.get(a, BENIGN)] = counts.get(labels.get(a, BENIGN), 0) + 1
        total += len(members)
        hits += max(counts.values(), default=0)
    return hits / total if total else 0.0


def score_method(
    flagged_clusters: Sequence[Sequence[str]],
    all_clusters: Sequence[Sequence[str]],
    labels: Mapping[str, str],
    groups: Mapping[str, str],
) -> dict[str, Any]:
    """Account-level metrics of one method's flagged clusters."""
    predicted = {a for members in flagged_clusters for a in members}
    accounts = sorted(labels)
    positives = {a for a in accounts if labels[a]}
    tp = len(predicted & positives)
    fp = len(predicted - positives)
    fn = len(positives - predicted)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    pieces = operator_pieces(flagged_clusters, labels)
    per_operator: dict[str, dict[str, Any]] = {}
    for op in sorted({labels[a] for a in positives}):
        members = [a for a in positives if labels[a] == op]
        found = sum(1 for a in members if a in predicted)
        sizes = pieces.get(op, [])
        per_operator[op] = {"accounts": len(members), "recall": round(found / len(members), 4),
                            "clusters": len(sizes), "cohesion": round(sizes[0] / found, 4) if found else 0.0}
    per_group: dict[str, dict[str, Any]] = {}
    for kind in sorted({groups[a] for a in accounts if a in groups and not labels[a]}):
        members = [a for a in accounts if groups.get(a) == kind and not labels[a]]
        bad = sum(1 for a in members if a in predicted)
        per_group[kind] = {"accounts": len(members), "false_positives": bad, "fp_rate": round(bad / len(members), 5)}
    cluster_of = {a: str(i) for i, members in enumerate(flagged_clusters) for a in members}
    ari = adjusted_rand_index([labels[a] or "benign" for a in accounts], [cluster_of.get(a, "benign") for a in accounts])
    return {
        "accounts": len(accounts),
        "positives": len(positives),
        "predicted": len(predicted & set(accounts)),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "recall_per_operator": per_operator,
        "fp_rate_per_group": per_group,
        "clusters": len(all_clusters),
        "flagged_clusters": len(flagged_clusters),
        "purity": round(purity(all_clusters, labels), 4),
        "flagged_purity": round(purity(flagged_clusters, labels), 4),
        "ari": round(ari, 4),
        "mixed_clusters": mixed_clusters(flagged_clusters, labels),
    }


# ---- detection as stored -------------------------------------------------------------------------


def stored_detection(store: GraphStore) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]], dict[str, str]]:
    """(cluster -> members, cluster -> properties, cluster -> operator attributed by an analyst
    else suggested by detection)."""
    members: dict[str, list[str]] = {}
    for rel in store.iter_relationships(Rel.MEMBER_OF):
        members.setdefault(rel.end[1], []).append(rel.start[1])
    props = {n.key: dict(n.props) for n in store.iter_nodes(Label.CLUSTER)}
    operator = {cid: str(p.get("suggested_operator") or "") for cid, p in props.items()}
    for rel in store.iter_relationships(Rel.ATTRIBUTED_TO):
        operator[rel.start[1]] = rel.end[1]
    return {k: sorted(v) for k, v in members.items()}, props, operator


def attribution_accuracy(
    labels: Mapping[str, str], known_operators: set[str], members: Mapping[str, list[str]],
    flagged: set[str], operator: Mapping[str, str],
) -> dict[str, Any]:
    """Share of accounts of known operators whose flagged cluster names their operator."""
    cluster_of = {a: cid for cid, ms in members.items() if cid in flagged for a in ms}
    per_op: dict[str, dict[str, Any]] = {}
    total = right = detected = right_detected = 0
    for op in sorted(known_operators):
        accounts = [a for a, o in labels.items() if o == op]
        ok = sum(1 for a in accounts if a in cluster_of and operator.get(cluster_of[a]) == op)
        det = sum(1 for a in accounts if a in cluster_of)
        per_op[op] = {"accounts": len(accounts), "correct": ok, "accuracy": round(ok / len(accounts), 4) if accounts else 0.0}
        total, right, detected, right_detected = total + len(accounts), right + ok, detected + det, right_detected + ok
    return {
        "accuracy": round(right / total, 4) if total else 0.0,
        "accuracy_of_detected": round(right_detected / detected, 4) if detected else 0.0,
        "per_operator": per_op,
    }


def misattribution(labels: Mapping[str, str], members: Mapping[str, list[str]], flagged: set[str],
                   operator: Mapping[str, str]) -> dict[str, Any]:
    """Accounts in a cluster attributed or suggested to an operator that does not run them:
    another operator's accounts (``accounts``) and benign ones (``benign_accounts``), over every
    live cluster with an operator, and over the flagged ones (``flagged``)."""
    per_operator: dict[str, dict[str, int]] = {}
    totals = {"accounts": 0, "benign_accounts": 0, "clusters": 0}
    flagged_totals = {"accounts": 0, "benign_accounts": 0, "clusters": 0}
    for cid in sorted(members):
        named = operator.get(cid) or ""
        if not named:
            continue
        wrong = [a for a in members[cid] if labels.get(a, BENIGN) != named]
        if not wrong:
            continue
        for bucket in (totals, *((flagged_totals,) if cid in flagged else ())):
            bucket["clusters"] += 1
            for a in wrong:
                bucket["accounts" if labels.get(a, BENIGN) else "benign_accounts"] += 1
        for a in wrong:
            true = labels.get(a, BENIGN) or "benign"
            per_operator.setdefault(true, {})[named] = per_operator.setdefault(true, {}).get(named, 0) + 1
    return {**totals, "flagged": flagged_totals,
            "per_operator": {op: dict(sorted(v.items())) for op, v in sorted(per_operator.items())}}


def takeover_report(takeovers: Mapping[str, tuple[str, str]], members: Mapping[str, list[str]], flagged: set[str],
                    props: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Whether taken-over accounts were flagged, per operator, with the best score of any
    cluster that holds one (how far under the flag a campaign found but not flagged stayed)."""
    cluster_of = {a: cid for cid, ms in members.items() for a in ms}
    per_operator: dict[str, dict[str, Any]] = {}
    for account, (op, _onset) in sorted(takeovers.items()):
        entry = per_operator.setdefault(op or "?", {"accounts": 0, "clustered": 0, "flagged": 0, "best_cluster_score": None})
        entry["accounts"] += 1
        cid = cluster_of.get(account)
        if cid is None:
            continue
        entry["clustered"] += 1
        entry["flagged"] += int(cid in flagged)
        score = props.get(cid, {}).get("score")
        if isinstance(score, int | float) and (entry["best_cluster_score"] is None or score > entry["best_cluster_score"]):
            entry["best_cluster_score"] = round(float(score), 4)
    for entry in per_operator.values():
        entry["recall"] = round(entry["flagged"] / entry["accounts"], 4) if entry["accounts"] else 0.0
    total = sum(e["accounts"] for e in per_operator.values())
    found = sum(e["flagged"] for e in per_operator.values())
    return {"accounts": total, "flagged": found, "recall": round(found / total, 4) if total else 0.0,
            "per_operator": per_operator}


# ---- baselines ---------------------------------------------------------------------------------------


BASELINE_LABELS = (Label.IP.value, Label.PAYMENT_METHOD.value, Label.DEVICE.value)


def shared_infrastructure_components(facts: Facts) -> list[list[str]]:
    """Baseline (a): components over any shared IP, card or device (size >= 2)."""
    edges: list[tuple[str, str]] = []
    for label in BASELINE_LABELS:
        for users in facts.users(label).values():
            ordered = sorted(users)
            edges.extend((ordered[0], other) for other in ordered[1:])
    return [g for g in components([], edges) if len(g) >= 2]


def fraud_rule_components(facts: Facts) -> list[list[str]]:
    """Baseline (b): pairs sharing >= 2 cards/devices each used by <= 10 accounts, then WCC."""
    shared: dict[tuple[str, str], int] = {}
    for label in (Label.PAYMENT_METHOD.value, Label.DEVICE.value):
        for users in facts.users(label).values():
            if not 2 <= len(users) <= FRAUD_RULE_MAX_ACCOUNTS:
                continue
            ordered = sorted(users)
            for i, a in enumerate(ordered):
                for b in ordered[i + 1 :]:
                    shared[(a, b)] = shared.get((a, b), 0) + 1
    edges = [p for p, n in shared.items() if n >= FRAUD_RULE_MIN_SHARED]
    return [g for g in components([], edges) if len(g) >= 2]


def known_operator_ids(store: GraphStore) -> set[str]:
    return {r.start[1] for r in store.iter_relationships(Rel.HAS_INDICATOR)}


def evaluate(store: GraphStore, labels_path: Path) -> dict[str, Any]:
    """Detection and both baselines against ``labels_path`` (groups.csv beside it if present)."""
    labels = read_labels(labels_path)
    groups = read_groups(labels_path.with_name("groups.csv"))
    members, props, operator = stored_detection(store)
    live = {cid: ms for cid, ms in members.items() if not props.get(cid, {}).get("retired")}
    flagged = {cid for cid in live if props.get(cid, {}).get("flagged")}
    detection = score_method([live[c] for c in sorted(flagged)], [live[c] for c in sorted(live)], labels, groups)
    known = known_operator_ids(store) & {o for o in labels.values() if o}
    detection["attribution"] = attribution_accuracy(labels, known, live, flagged, operator)
    detection["misattribution"] = misattribution(labels, live, flagged, operator)
    takeovers = read_takeovers(labels_path.with_name("takeovers.csv"))
    if takeovers:
        detection["takeover"] = takeover_report(takeovers, live, flagged, props)
    facts = read_facts(store, only=BASELINE_LABELS)  # the baselines look at IPs, cards and devices only
    baselines = {}
    for name, clusters in (
        ("shared_infrastructure", shared_infrastructure_components(facts)),
        ("neo4j_fraud_rule", fraud_rule_components(facts)),
    ):
        baselines[name] = score_method(clusters, clusters, labels, groups)
    return {"labels": str(labels_path), "detection": detection, "baselines": baselines}


METRIC_ROWS = ("precision", "recall", "f1", "purity", "ari", "clusters", "flagged_clusters", "predicted", "false_positives")


def table_rows(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """(metric, detection, baseline a, baseline b) rows for the terminal table."""
    methods = [report["detection"], *report["baselines"].values()]
    rows: list[tuple[str, ...]] = []
    for metric in METRIC_ROWS:
        rows.append((metric, *(str(m.get(metric, "")) for m in methods)))
    ops = sorted({op for m in methods for op in m["recall_per_operator"]})
    for op in ops:
        rows.append((f"recall {op}", *(str(m["recall_per_operator"].get(op, {}).get("recall", "")) for m in methods)))
    for op in ops:
        rows.append((f"clusters / cohesion {op}", *(
            f'{m["recall_per_operator"][op].get("clusters", "")} / {m["recall_per_operator"][op].get("cohesion", "")}'
            if op in m["recall_per_operator"] else "" for m in methods)))
    kinds = sorted({k for m in methods for k in m["fp_rate_per_group"]})
    for kind in kinds:
        rows.append((f"FP rate {kind}", *(str(m["fp_rate_per_group"].get(kind, {}).get("fp_rate", "")) for m in methods)))
    att = report["detection"].get("attribution", {})
    rows.append(("attribution accuracy", str(att.get("accuracy", "")), "-", "-"))
    rows.append(("mixed flagged clusters", *(str(m.get("mixed_clusters", {}).get("count", "")) for m in methods)))
    rows.append(("accounts in mixed clusters", *(str(m.get("mixed_clusters", {}).get("accounts", "")) for m in methods)))
    mis = report["detection"].get("misattribution", {})
    rows.append(("misattributed accounts", str(mis.get("accounts", "")), "-", "-"))
    rows.append(("benign in attributed clusters", str(mis.get("benign_accounts", "")), "-", "-"))
    if "takeover" in report["detection"]:
        rows.append(("takeover accounts flagged", str(report["detection"]["takeover"]["recall"]), "-", "-"))
    return rows
