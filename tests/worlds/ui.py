"""A small hand-made investigation world for the UI tests, written through the store API and
the staging layout (so it does not depend on the generator, loaders or detection).

Shape: cluster ``c-ring`` (flagged, suggested operator ``op-known``) of ``ring`` accounts
``r000…`` that share IP 203.0.113.7, card ``pm-ring`` and template ``t-cot``, chained by LINKED
edges with reasons; cluster ``c-benign`` of two students behind a university NAT; and a
carrier-NAT IP ``100.64.0.1`` used by every account (a hub).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from graph.schema import Label, Rel
from graph.staging import table_dir
from graph.store import GraphStore
from graph.workspace import templates_path

T0 = datetime(2025, 4, 22, 10, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ring_ids(ring: int) -> list[str]:
    return [f"r{i:03d}" for i in range(ring)]


def build_world(store: GraphStore, workspace: Path, ring: int = 4) -> dict[str, list[str]]:
    """Write the world; returns the account ids per cluster."""
    ring_accts = ring_ids(ring)
    benign = ["s1", "s2"]
    everyone = ring_accts + benign
    # Reasons in detection's format (graph/linkage/evidence.py Reason.to_json).
    reasons = [
        {"family": "network", "kind": "shared_ip", "entity": {"label": "IP", "key": "203.0.113.7"}, "accounts": ring,
         "weight": 0.6, "count": 12, "first_seen": iso(T0), "last_seen": iso(T0 + timedelta(days=3))},
        {"family": "network", "kind": "shared_network", "entity": {"label": "Network", "key": "203.0.113.0/24"}, "accounts": ring, "weight": 0.3},
        {"family": "payment", "kind": "shared_card", "entity": {"label": "PaymentMethod", "key": "pm-ring"}, "accounts": ring, "weight": 0.9},
        {"family": "prompt", "kind": "shared_template", "entity": {"label": "PromptTemplate", "key": "t-cot"}, "accounts": ring,
         "weight": 0.5, "examples": ["Think step by step and show your chain of thought about 42"]},
    ]
    with store.batch():
        store.upsert_nodes(Label.ACCOUNT, [{"account_id": a, "created_at": iso(T0), "email_hash": f"h-{a}"} for a in everyone])
        store.upsert_nodes(Label.IP, [{"ip": "203.0.113.7"}, {"ip": "100.64.0.1"}, {"ip": "198.51.100.9"}])
        store.upsert_nodes(Label.NETWORK, [{"cidr": "203.0.113.0/24", "kind": "proxy", "provider": "hydra"}])
        store.upsert_nodes(Label.PAYMENT_METHOD, [{"payment_id": "pm-ring", "card_bin": "411111"}])
        store.upsert_nodes(Label.PROMPT_TEMPLATE, [{"template_id": "t-cot"}])
        store.upsert_nodes(Label.OPERATOR, [{"operator_id": "op-known", "name": "Known Lab"}])
        store.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [
            {"start": a, "end": "203.0.113.7", "count": 3, "first_seen": iso(T0), "last_seen": iso(T0 + timedelta(days=3))}
            for a in ring_accts
        ] + [{"start": a, "end": "100.64.0.1", "count": 1} for a in everyone]
          + [{"start": a, "end": "198.51.100.9", "count": 5} for a in benign])
        store.upsert_relationships(Rel.IN_NETWORK, Label.IP, Label.NETWORK, [{"start": "203.0.113.7", "end": "203.0.113.0/24"}])
        store.upsert_relationships(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, [{"start": a, "end": "pm-ring", "first_seen": iso(T0)} for a in ring_accts])
        store.upsert_relationships(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, [{"start": a, "end": "t-cot", "count": 3} for a in ring_accts])
        store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT, [
            {"start": x, "end": y, "weight": 0.9, "families": ["network", "payment", "prompt"], "reasons": json.dumps(reasons)}
            for x, y in zip(ring_accts, ring_accts[1:], strict=False)
        ])
        store.upsert_nodes(Label.CLUSTER, [
            {"cluster_id": "c-ring", "score": 0.92, "flagged": True, "size": ring, "exchanges": 3 * ring,
             "input_tokens": 1000, "output_tokens": 5000, "first_seen": iso(T0), "last_seen": iso(T0 + timedelta(days=3)),
             "status": "open", "suggested_operator": "op-known", "suggestion_confidence": 0.8,
             "indicators": json.dumps([{"name": "shared_payment", "value": 1.0, "contribution": 0.4},
                                       {"name": "template_reuse", "value": 0.9, "contribution": 0.3}]),
             "capability_profile": json.dumps({"reasoning": 0.7, "coding": 0.3}), "stability": json.dumps({"jaccard": 0.9})},
            {"cluster_id": "c-benign", "score": 0.1, "flagged": False, "size": 2, "exchanges": 10,
             "input_tokens": 10, "output_tokens": 10, "first_seen": iso(T0), "last_seen": iso(T0 + timedelta(days=20)),
             "status": "open", "indicators": json.dumps([{"name": "shared_ip", "value": 0.2, "contribution": 0.1}]),
             "capability_profile": json.dumps({"other": 1.0}), "stability": json.dumps({})},
        ])
        store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER,
                                   [{"start": a, "end": "c-ring", "bridge": False} for a in ring_accts]
                                   + [{"start": a, "end": "c-benign", "bridge": False} for a in benign])
        store.upsert_relationships(Rel.SUGGESTED_OPERATOR, Label.CLUSTER, Label.OPERATOR,
                                   [{"start": "c-ring", "end": "op-known", "confidence": 0.8, "indicators": json.dumps(["pm-ring"])}])
    write_staging(workspace, ring_accts, benign)
    return {"c-ring": ring_accts, "c-benign": benign}


def write_staging(workspace: Path, ring_accts: list[str], benign: list[str]) -> None:
    """Staged exchanges (3 per ring account on days 0-2, a model switch on day 2; 5 per
    student spread over 20 days), payments and templates, with provenance columns."""
    rows: dict[str, list[object]] = {k: [] for k in (
        "exchange_id", "account_id", "ts", "ip", "network", "model", "template_id", "capability",
        "client_fingerprint", "input_tokens", "output_tokens", "_file", "_row")}
    n = 0
    for a in ring_accts:
        for d in range(3):
            n += 1
            for k, v in (("exchange_id", f"e{n}"), ("account_id", a), ("ts", T0 + timedelta(days=d, minutes=1)),
                         ("ip", "203.0.113.7"), ("network", "203.0.113.0/24"), ("model", "m-new" if d == 2 else "m-old"),
                         ("template_id", "t-cot"), ("capability", "reasoning"), ("client_fingerprint", "fp1"),
                         ("input_tokens", 100), ("output_tokens", 500), ("_file", "exchanges.csv"), ("_row", n)):
                rows[k].append(v)
    for a in benign:
        for d in range(5):
            n += 1
            for k, v in (("exchange_id", f"e{n}"), ("account_id", a), ("ts", T0 + timedelta(days=4 * d, hours=3)),
                         ("ip", "198.51.100.9"), ("network", "198.51.100.0/24"), ("model", "m-old"),
                         ("template_id", f"t-{a}-{d}"), ("capability", "other"), ("client_fingerprint", "fp2"),
                         ("input_tokens", 1), ("output_tokens", 1), ("_file", "exchanges.csv"), ("_row", n)):
                rows[k].append(v)
    table_dir(workspace, "exchanges").mkdir(parents=True, exist_ok=True)
    schema_ts = pa.timestamp("us", tz="UTC")
    table = pa.table({k: (pa.array(v, type=schema_ts) if k == "ts" else pa.array(v)) for k, v in rows.items()})
    pq.write_table(table, table_dir(workspace, "exchanges") / "fixture-0.parquet")
    table_dir(workspace, "payments").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "account_id": ring_accts, "payment_id": ["pm-ring"] * len(ring_accts), "card_bin": ["411111"] * len(ring_accts),
        "card_last4": ["1111"] * len(ring_accts), "billing_country": ["US"] * len(ring_accts),
        "first_seen": pa.array([T0] * len(ring_accts), type=schema_ts),
        "_file": ["payments.csv"] * len(ring_accts), "_row": list(range(1, len(ring_accts) + 1)),
    }), table_dir(workspace, "payments") / "fixture-0.parquet")
    pq.write_table(pa.table({
        "template_id": ["t-cot"], "template": ["think step by step and show your chain of thought about <n>"],
        "example": ["Think step by step and show your chain of thought about 42"], "capability": ["reasoning"], "cot": [True],
    }), templates_path(workspace))
