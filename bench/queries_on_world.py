"""Run every built-in query on a loaded and detected workspace, with parameters picked from the
world itself, and print rows and seconds per query; with two stores, also compare their rows.

    .venv/bin/python bench/queries_on_world.py --workspace WS [--store URI] [--compare URI] [--twins]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from graph.queries.library import builtin_queries
from graph.queries.runner import run_query
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores import open_store


def world_params(store: GraphStore) -> dict[str, dict[str, Any]]:
    """Parameters that hit something in this world: the top flagged cluster, its operator, a
    member with a shared card, the busiest proxy provider, and so on."""
    clusters = sorted(store.iter_nodes(Label.CLUSTER), key=lambda c: (-float(c.props.get("score") or 0), c.key))
    top = next(c for c in clusters if c.props.get("flagged") is True)
    members = sorted(r.start[1] for r in store.iter_relationships(Rel.MEMBER_OF) if r.end[1] == top.key)
    pays: dict[str, list[str]] = {}
    for r in store.iter_relationships(Rel.PAID_WITH):
        pays.setdefault(r.end[1], []).append(r.start[1])
    shared_card = max(pays, key=lambda k: (len(pays[k]), k))
    card = store.get_node(Label.PAYMENT_METHOD, shared_card)
    ips: dict[str, int] = {}
    for r in store.iter_relationships(Rel.USED_IP):
        ips[r.end[1]] = ips.get(r.end[1], 0) + 1
    busy_ip = max(ips, key=lambda k: (ips[k] if ips[k] < 50 else 0, k))
    providers = sorted({str(n.props["provider"]) for n in store.iter_nodes(Label.NETWORK) if n.props.get("provider")})
    proxies = [n for n in store.iter_nodes(Label.NETWORK) if n.props.get("kind") in ("proxy", "hosting") and n.props.get("asn")]
    tpl: dict[str, int] = {}
    for r in store.iter_relationships(Rel.SENT_TEMPLATE):
        tpl[r.end[1]] = tpl.get(r.end[1], 0) + 1
    fps: dict[str, int] = {}
    for r in store.iter_relationships(Rel.USED_CLIENT):
        fps[r.end[1]] = fps.get(r.end[1], 0) + 1
    suggested = [r for r in store.iter_relationships(Rel.SUGGESTED_OPERATOR)]
    operator = suggested[0].end[1] if suggested else "none"
    window = {"since": "2025-04-22T00:00:00Z", "until": "2025-06-05T23:59:59Z"}
    return {
        "accounts_sharing_payment": {"account_id": pays[shared_card][0]},
        "accounts_behind_provider": {"provider": providers[0] if providers else "none", **window},
        "accounts_on_asn": {"asn": str(proxies[0].props["asn"]) if proxies else "0", **window},
        "email_pattern_bursts": {"since": "2024-01-01T00:00:00Z", "until": "2025-07-01T00:00:00Z", "min_accounts": 3},
        "accounts_sending_template": {"template_id": max(tpl, key=lambda k: (tpl[k], k))},
        "clusters_of_operator": {"operator_id": operator, "include_suggested": True},
        "bridge_accounts": {"min_weight": 0.0},
        "new_accounts_on_operator_infrastructure": {"operator_id": operator, "since": "2025-04-22T00:00:00Z"},
        "top_cot_templates": {"min_accounts": 2, "limit": 10},
        "shared_devices": {"min_accounts": 2, "limit": 50},
        "accounts_on_ip": {"ip": busy_ip},
        "path_between_accounts": {"from_account": members[0], "to_account": members[-1]},
        "linked_accounts": {"account_id": members[0]},
        "cluster_members": {"cluster_id": top.key},
        "top_clusters": {"min_score": 0.0, "limit": 50},
        "shared_infrastructure": {"account_id": members[0]},
        "payment_methods_by_bin": {"card_bin": str((card.props if card else {}).get("card_bin") or "")},
        "clusters_active_between": {"since": "2025-05-13T00:00:00Z", "until": "2025-05-14T23:59:59Z"},
        "accounts_by_client_fingerprint": {"fingerprint": max(fps, key=lambda k: (fps[k], k))},
    }


def canonical(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, sort_keys=True, default=str)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--store", default="embedded")
    parser.add_argument("--compare", default=None, help="a second store URI holding the same world")
    parser.add_argument("--twins", action="store_true",
                        help="on a Neo4j --store, also run each query's Python twin on it and compare")
    args = parser.parse_args()
    store = open_store(Settings({"workspace": args.workspace, "store": args.store}))
    other = open_store(Settings({"workspace": args.workspace, "store": args.compare})) if args.compare else None
    params = world_params(store)
    for qid in sorted(builtin_queries()):
        t0 = time.perf_counter()
        result = run_query(store, qid, params[qid])
        elapsed = time.perf_counter() - t0
        line = f"{qid:42s} {len(result.rows):6d} rows {elapsed:7.3f}s ({result.engine})"
        if other is not None:
            t1 = time.perf_counter()
            theirs = run_query(other, qid, params[qid])
            same = canonical(result.rows) == canonical(theirs.rows)
            line += f" | {theirs.engine} {time.perf_counter() - t1:7.3f}s {'SAME' if same else 'DIFFERENT'}"
        if args.twins:
            t1 = time.perf_counter()
            twin = run_query(store, qid, params[qid], engine="python")
            same = canonical(result.rows) == canonical(twin.rows)
            line += f" | python twin {time.perf_counter() - t1:7.3f}s {'SAME' if same else 'DIFFERENT'}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
