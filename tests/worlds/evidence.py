"""A small, hand-built investigation graph (and its staging rows) for the query and export tests.

Two operator clusters (c-1 attributed to op-alpha, c-2 suggested), one benign account (c-3), a
new account (acct-n1) created after the campaign started on op-alpha's proxy IP, a carrier-NAT
hub IP shared by 56 accounts, links with reasons, an audit event and a note. Every built-in
query's example parameters find rows here, and the path acct-a1 -> acct-c1 is unique.

The templates' example prompts are hostile, as real ones are: c-1's shared template holds
``HOSTILE_PROMPT`` (control characters, NUL, an ANSI escape, non-characters, a bidi override),
c-2's ``LONG_PASTE`` (1 MB), so every export test writes them. Lone surrogates cannot be sent
to Neo4j at all; ``add_lone_surrogates`` adds them to an embedded world.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graph.schema import Label, Rel
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore

HUB_IP = "100.64.0.1"
FILLERS = [f"acct-f{i:02d}" for i in range(55)]
ALPHA = ["acct-a1", "acct-a2", "acct-a3", "acct-a4"]
BETA = ["acct-b1", "acct-b2", "acct-b3"]

HOSTILE_PROMPT = ("Think step by step\x0b about this: NUL\x00 here, \x1b[31mred\x1b[0m, non-characters "
                  "\ufffe\uffff, RTL \u202eevil\u202c, C1 \x85\x9b, DEL \x7f, CR\r\nLF, tab\tend")
LONG_PASTE = ("Pasted log:\n" + "lorem ipsum dolor sit amet " * 37_037)[:1_000_000]
LONE_SURROGATE_PROMPT = "a lone \ud800 high and \udfff low surrogate, and a pair \ud83d\ude00"


def _reason(family: str, kind: str, label: str, key: str, accounts: int, weight: float) -> dict[str, object]:
    return {"family": family, "kind": kind, "entity": {"label": label, "key": key}, "accounts": accounts, "weight": weight}


def _accounts() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, a in enumerate(ALPHA):
        rows.append({"account_id": a, "created_at": f"2025-04-22T10:0{i}:00Z", "email_shape": "word9999",
                     "email_hash": f"ehash-{a}", "status": "active", "verification": "education",
                     "org_id": "org-alpha-farm", "signup_ip": "203.0.113.7", "country": "SG"})
    for i, b in enumerate(BETA):
        rows.append({"account_id": b, "created_at": f"2025-04-25T09:1{i}:00Z", "email_shape": "word99",
                     "email_hash": f"ehash-{b}", "status": "suspended", "verification": "startup"})
    rows.append({"account_id": "acct-c1", "created_at": "2025-03-20T08:00:00Z", "email_shape": "name.name",
                 "status": "active", "verification": "phone"})
    rows.append({"account_id": "acct-n1", "created_at": "2025-05-20T12:00:00Z", "email_shape": "word9999",
                 "status": "active"})
    rows += [{"account_id": f, "created_at": "2025-03-01T00:00:00Z", "status": "active"} for f in FILLERS]
    return rows


def build_world(store: GraphStore) -> None:
    """Write the whole fixture graph into ``store`` in one batch."""
    with store.batch():
        store.upsert_nodes(Label.ACCOUNT, _accounts())
        store.upsert_nodes(Label.PAYMENT_METHOD, [
            {"payment_id": "pay-1", "card_bin": "411111", "card_last4": "4242", "billing_country": "US",
             "billing_name_hash": "bn-secret-1"},
            {"payment_id": "pay-2", "card_bin": "411111", "billing_country": "DE"},
            {"payment_id": "pay-3", "card_bin": "522222", "billing_country": "FR"},
        ])
        store.upsert_nodes(Label.NETWORK, [
            {"cidr": "203.0.113.0/24", "kind": "proxy", "provider": "hydra-proxy", "asn": "64500"},
            {"cidr": "198.51.100.0/24", "kind": "hosting", "provider": "cloudy-hosting", "asn": "64500"},
            {"cidr": "192.0.2.0/24", "kind": "residential", "asn": "64501"},
            {"cidr": "100.64.0.0/10", "kind": "mobile", "asn": "64502"},
        ])
        store.upsert_nodes(Label.ASN, [{"asn": "64500", "as_org": "Shady Hosting"}, {"asn": "64501"}, {"asn": "64502"}])
        store.upsert_nodes(Label.PROMPT_TEMPLATE, [
            {"template_id": "tpl-cot-1", "cot": True, "capability": "reasoning", "template": "think step by step about <n>",
             "example": HOSTILE_PROMPT},
            {"template_id": "tpl-code-1", "cot": False, "cot_share": 0.25, "capability": "coding", "example": LONG_PASTE},
            {"template_id": "tpl-hi", "cot": False, "capability": "other"},
        ])
        store.upsert_nodes(Label.CLUSTER, [
            {"cluster_id": "c-1", "score": 0.9, "flagged": True, "size": 4, "exchanges": 1200, "input_tokens": 50000,
             "output_tokens": 900000, "first_seen": "2025-04-22T10:00:00Z", "last_seen": "2025-06-01T00:00:00Z",
             "status": "in_progress", "suggested_operator": "op-alpha", "suggestion_confidence": 0.8,
             "indicators": json.dumps([{"family": "payment", "entity": {"label": "PaymentMethod", "key": "pay-1"}}])},
            {"cluster_id": "c-2", "score": 0.7, "flagged": True, "size": 3, "exchanges": 300,
             "first_seen": "2025-04-25T09:00:00Z", "last_seen": "2025-05-20T00:00:00Z", "status": "open"},
            {"cluster_id": "c-3", "score": 0.2, "flagged": False, "size": 1,
             "first_seen": "2025-03-20T08:00:00Z", "last_seen": "2025-03-25T00:00:00Z", "status": "open"},
        ])
        store.upsert_nodes(Label.OPERATOR, [{"operator_id": "op-alpha", "name": "Alpha Lab"}, {"operator_id": "op-beta", "name": "Beta Group"}])
        store.upsert_nodes(Label.INDICATOR, [
            {"indicator_id": "ip:203.0.113.7", "type": "ip", "value": "203.0.113.7"},
            {"indicator_id": "card_bin:411111", "type": "card_bin", "value": "411111"},
            {"indicator_id": "asn:64500", "type": "asn", "value": "64500"},
        ])
        _relationships(store)


def _use(start: str, end: str, first: str, last: str, count: int = 1, **extra: object) -> dict[str, object]:
    return {"start": start, "end": end, "first_seen": first, "last_seen": last, "count": count, **extra}


def _relationships(store: GraphStore) -> None:
    w0, w1 = "2025-04-22T10:00:00Z", "2025-05-30T00:00:00Z"
    store.upsert_relationships(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, [
        {"start": a, "end": "pay-1", "first_seen": w0} for a in ALPHA[:3]
    ] + [{"start": "acct-b1", "end": "pay-2"}, {"start": "acct-c1", "end": "pay-3"}])
    ip_uses = [_use(a, "203.0.113.7", w0, w1, 10, signup=True) for a in ("acct-a1", "acct-a2", "acct-a4")]
    ip_uses.append(_use("acct-n1", "203.0.113.7", "2025-05-20T12:00:00Z", "2025-05-25T00:00:00Z", 3))
    ip_uses += [_use(a, "198.51.100.9", "2025-04-25T09:00:00Z", "2025-05-20T00:00:00Z", 5) for a in ("acct-b1", "acct-b2", "acct-a3")]
    ip_uses += [_use(a, "192.0.2.1", "2025-03-20T08:00:00Z", "2025-03-25T00:00:00Z") for a in ("acct-c1", "acct-a1")]
    ip_uses += [_use(a, HUB_IP, "2025-03-01T00:00:00Z", "2025-06-01T00:00:00Z") for a in [*FILLERS, "acct-a1"]]
    store.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, ip_uses)
    store.upsert_relationships(Rel.IN_NETWORK, Label.IP, Label.NETWORK, [
        {"start": "203.0.113.7", "end": "203.0.113.0/24"}, {"start": "198.51.100.9", "end": "198.51.100.0/24"},
        {"start": "192.0.2.1", "end": "192.0.2.0/24"}, {"start": HUB_IP, "end": "100.64.0.0/10"},
    ])
    store.upsert_relationships(Rel.IN_ASN, Label.NETWORK, Label.ASN, [
        {"start": "203.0.113.0/24", "end": "64500"}, {"start": "198.51.100.0/24", "end": "64500"},
        {"start": "192.0.2.0/24", "end": "64501"}, {"start": "100.64.0.0/10", "end": "64502"},
    ])
    store.upsert_relationships(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE, [
        {"start": "acct-a1", "end": "dev-1"}, {"start": "acct-a2", "end": "dev-1"},
        *({"start": b, "end": "dev-2", "first_seen": "2025-04-25T09:00:00Z"} for b in BETA),
        {"start": "acct-c1", "end": "dev-3"},
    ])
    store.upsert_relationships(Rel.USED_CLIENT, Label.ACCOUNT, Label.CLIENT_FINGERPRINT, [
        _use(a, "ja3-deadbeef", w0, w1, 100) for a in [*ALPHA, "acct-n1"]
    ])
    store.upsert_relationships(Rel.HAS_EMAIL_DOMAIN, Label.ACCOUNT, Label.EMAIL_DOMAIN, [
        *({"start": a, "end": "mailbox.test"} for a in [*ALPHA, "acct-n1"]),
        *({"start": b, "end": "temp.test"} for b in BETA),
        {"start": "acct-c1", "end": "gmail.com"},
    ])
    store.upsert_relationships(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, [
        *(_use(a, "tpl-cot-1", w0, w1, 10 * (i + 1)) for i, a in enumerate(ALPHA)),
        _use("acct-b1", "tpl-cot-1", "2025-04-25T09:00:00Z", "2025-05-01T00:00:00Z", 5),
        *(_use(b, "tpl-code-1", "2025-04-25T09:00:00Z", "2025-05-20T00:00:00Z", 50) for b in BETA),
        _use("acct-c1", "tpl-hi", "2025-03-20T08:00:00Z", "2025-03-20T08:00:00Z", 2),
        _use("acct-a2", "tpl-hi", w0, w0, 1),
    ])
    store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, [
        *({"start": a, "end": "c-1", "bridge": a == "acct-a3"} for a in ALPHA),
        *({"start": b, "end": "c-2", "bridge": b == "acct-b1"} for b in BETA),
        {"start": "acct-c1", "end": "c-3", "bridge": False},
    ])
    store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT, [
        {"start": "acct-a1", "end": "acct-a2", "weight": 0.9, "families": ["payment", "network"], "reasons": json.dumps([
            _reason("payment", "shared_payment", "PaymentMethod", "pay-1", 3, 0.8),
            _reason("network", "shared_ip", "IP", "203.0.113.7", 4, 0.7)])},
        {"start": "acct-a2", "end": "acct-a3", "weight": 0.8, "families": ["payment"], "reasons": json.dumps([
            _reason("payment", "shared_payment", "PaymentMethod", "pay-1", 3, 0.8)])},
        {"start": "acct-a3", "end": "acct-b1", "weight": 0.4, "families": ["network"], "reasons": json.dumps([
            _reason("network", "shared_ip", "IP", "198.51.100.9", 3, 0.4)])},
        {"start": "acct-b1", "end": "acct-b2", "weight": 0.7, "families": ["device"], "reasons": json.dumps([
            _reason("device", "shared_device", "Device", "dev-2", 3, 0.7)])},
    ])
    store.upsert_relationships(Rel.ATTRIBUTED_TO, Label.CLUSTER, Label.OPERATOR, [
        {"start": "c-1", "end": "op-alpha", "confidence": 0.85, "rationale": "shared card pay-1 and hydra-proxy exit",
         "by": "alice", "at": "2025-06-02T10:00:00Z"},
    ])
    store.upsert_relationships(Rel.SUGGESTED_OPERATOR, Label.CLUSTER, Label.OPERATOR, [
        {"start": "c-1", "end": "op-alpha", "confidence": 0.8, "indicators": json.dumps(["ip:203.0.113.7"])},
        {"start": "c-2", "end": "op-alpha", "confidence": 0.5, "indicators": "[]"},
        {"start": "c-2", "end": "op-beta", "confidence": 0.3, "indicators": "[]"},
    ])
    store.upsert_relationships(Rel.HAS_INDICATOR, Label.OPERATOR, Label.INDICATOR, [
        {"start": "op-alpha", "end": i, "source": "partner", "confidence": 0.9}
        for i in ("ip:203.0.113.7", "card_bin:411111", "asn:64500")
    ])
    store.upsert_nodes(Label.AUDIT_EVENT, [{"event_id": "ev-1", "at": "2025-06-02T10:00:00Z", "who": "alice",
                                            "action": "attribute", "target": "Cluster:c-1", "before": "{}",
                                            "after": json.dumps({"operator_id": "op-alpha", "confidence": 0.85})}])
    store.upsert_relationships(Rel.ABOUT, Label.AUDIT_EVENT, Label.CLUSTER, [{"start": "ev-1", "end": "c-1"}])
    store.upsert_nodes(Label.NOTE, [{"note_id": "note-1", "text": "acct-a1 pays with pay-1", "who": "bob", "at": "2025-06-02T11:00:00Z"}])
    store.upsert_relationships(Rel.ABOUT, Label.NOTE, Label.CLUSTER, [{"start": "note-1", "end": "c-1"}])


def add_lone_surrogates(store: EmbeddedStore) -> None:
    """Lone surrogates in a template example, an analyst's note and a property name.

    The contract refuses such text (Neo4j's driver cannot carry it), so they are written
    through the embedded store's own hook, as a workspace written before that check could
    hold them: the exports must still write valid files from it."""
    store._upsert_nodes(Label.PROMPT_TEMPLATE.value, "template_id", [
        {"key": "tpl-hi", "props": {"example": LONE_SURROGATE_PROMPT, "note\ud800": "a property name no UTF-8 can hold"}}])
    store._upsert_nodes(Label.NOTE.value, "note_id", [
        {"key": "note-2", "props": {"text": "pasted: " + LONE_SURROGATE_PROMPT, "who": "bob", "at": "2025-06-02T12:00:00Z"}}])
    store.upsert_relationships(Rel.ABOUT, Label.NOTE, Label.CLUSTER, [{"start": "note-2", "end": "c-1"}])


def raw_identifiers() -> list[str]:
    """Every identifier from the (notional) source bundle that a redacted export must not show."""
    return [
        *ALPHA, *BETA, "acct-c1", "acct-n1", "pay-1", "pay-2", "pay-3", "411111", "4242", "bn-secret-1",
        "203.0.113.7", "198.51.100.9", "192.0.2.1", "203.0.113.0/24", "198.51.100.0/24", "hydra-proxy",
        "cloudy-hosting", "64500", "dev-1", "dev-2", "ja3-deadbeef", "mailbox.test", "temp.test",
        "org-alpha-farm", "ehash-acct-a1", "op-alpha", "Alpha Lab", "tpl-cot-1", "Shady Hosting",
    ]


def write_staging(workspace: Path) -> None:
    """Staged rows with provenance (``_file``, ``_row``) for the links above, as loaders write them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graph.staging import table_dir

    def put(table: str, rows: list[dict[str, object]]) -> None:
        directory = table_dir(workspace, table)
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), directory / "bundle1-0.parquet")

    put("accounts", [{"account_id": a["account_id"], "created_at": a["created_at"], "_file": "accounts.csv", "_row": i + 1}
                     for i, a in enumerate(_accounts())])
    put("payments", [{"account_id": a, "payment_id": "pay-1", "first_seen": "2025-04-22T10:00:00Z",
                      "_file": "payments.csv", "_row": i + 1} for i, a in enumerate(ALPHA[:3])])
    exchanges = []
    for n in range(12):
        account = ALPHA[n % 4] if n < 8 else BETA[n % 3]
        ip = "203.0.113.7" if n < 8 else "198.51.100.9"
        exchanges.append({"exchange_id": f"ex-{n}", "account_id": account, "ts": f"2025-04-23T10:{n:02d}:00Z",
                          "ip": ip, "template_id": "tpl-cot-1", "_file": "exchanges.jsonl", "_row": n + 1})
    put("exchanges", exchanges)
    put("devices", [{"account_id": b, "device_id": "dev-2", "_file": "devices.csv", "_row": i + 2} for i, b in enumerate(BETA)])


def evidence_workspace(tmp_path: Path, monkeypatch: Any) -> Path:
    """A workspace with this world in the embedded store and in staging, made the app's
    workspace through the environment (what ``sybilscope ui`` does)."""
    from graph.stores.embedded import EmbeddedStore
    from graph.workspace import embedded_dir

    ws = tmp_path / "ws"
    build_world(EmbeddedStore(embedded_dir(ws)))
    write_staging(ws)
    monkeypatch.setenv("SYBILSCOPE_WORKSPACE", str(ws))
    monkeypatch.setenv("SYBILSCOPE_STORE", "embedded")
    return ws


def run_view(source: str) -> Any:
    """Run a Streamlit script headless with AppTest and check it raised nothing."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_string(source, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app
