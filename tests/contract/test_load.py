"""Loading against every store: the graph a bundle gives, idempotence, resumption, a second bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from graph.schema import Label, Rel
from graph.settings import Settings
from graph.staging import table_dir
from graph.store import GraphStore
from graph.workspace import stage_tmp_dir
from loaders.load import load_bundle
from tests.conftest import clear_store

ACCOUNTS = (
    "account_id,created_at,email,phone,signup_ip,country,org_id,verification,status\n"
    "a1,2025-04-22T10:00:00Z,John.Doe+x@gmail.com,+1 555 0100,10.1.0.5,US,org1,phone,active\n"
    "a2,2025-04-22T10:01:00Z,dev.ops0401@throwaway.io,,198.51.100.7,DE,,education,active\n"
    "a3,2025-04-22T10:02:00Z,dev.ops0402@throwaway.io,,,FR,,none,banned\n"
)
PREAMBLE = (
    "You are an autonomous software agent operating in a sandboxed environment. Plan the task, "
    "call tools as needed, and report every step.\nTask: "
)
EXCHANGES = (
    "exchange_id,account_id,ts,ip,client_fingerprint,user_agent,model,input_tokens,output_tokens,prompt\n"
    f'e1,a1,2025-04-22T10:00:00Z,10.1.0.5,fp1,sdk/1,m-large,10,20,"{PREAMBLE}migrate service 4"\n'
    f'e2,a1,2025-04-23T09:00:00Z,10.1.0.5,fp1,sdk/1,m-small,5,5,"{PREAMBLE}book a flight to Oslo"\n'
    f'e3,a2,2025-04-23T12:00:00Z,198.51.100.7,fp1,sdk/1,m-large,1,2,"{PREAMBLE}reconcile 12 invoices"\n'
    "e4,a3,2025-04-24T12:00:00Z,2001:db8:1:2::9,fp2,curl,m-large,3,,what is the capital of Lisbon?\n"
)
PAYMENTS = (
    "account_id,payment_id,card_bin,card_last4,billing_country,billing_name,billing_postal,first_seen\n"
    "a1,pm1,411111,4242,US,John Doe,94105,2025-04-22T10:00:00Z\n"
    "a2,pm1,411111,4242,US,JOHN DOE,94105,2025-04-21T10:00:00Z\n"
)
DEVICES = "account_id,device_id,first_seen,last_seen\na1,d1,2025-04-22,2025-04-25\na3,d1,2025-04-23,2025-04-24\n"
INTEL = "network,asn,as_org,kind,country,provider\n10.0.0.0/8,64500,BigNet,corporate,US,\n10.1.0.0/16,64501,Hydra Hosting,proxy,NL,hydra\n"
OPERATORS = "operator_id,name,indicator_type,indicator_value,source,confidence\nop1,Hydra,network,10.1.0.0/16,report-7,0.8\n"
LABELS = "account_id,operator_id\na1,op1\na2,op1\na3,\n"


def _bundle(root: Path, **tables: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in tables.items():
        (root / f"{name}.csv").write_text(content, encoding="utf-8")
    return root


def _full(root: Path) -> Path:
    return _bundle(root, accounts=ACCOUNTS, exchanges=EXCHANGES, payments=PAYMENTS, devices=DEVICES,
                   ip_intel=INTEL, operators=OPERATORS, labels=LABELS)


def _settings(ws: Path) -> Settings:
    return Settings({"workspace": str(ws), "hash_salt": "pepper"}, environ={})


def snapshot(store: GraphStore) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """Every node and relationship with its properties (a load run's timestamp left out)."""
    nodes = {}
    for label in Label:
        for node in store.iter_nodes(label):
            props = {} if label == Label.LOAD_RUN else dict(node.props)
            nodes[(node.label, node.key)] = json.dumps(props, sort_keys=True)
    rels = {}
    for rel_type in Rel:
        for rel in store.iter_relationships(rel_type):
            rels[rel.ref] = json.dumps(rel.props, sort_keys=True)
    return nodes, rels


def test_a_bundle_becomes_aggregates_not_exchange_nodes(store: GraphStore, tmp_path: Path) -> None:
    report = load_bundle(_full(tmp_path / "b"), _settings(tmp_path / "ws"), store)
    assert report.tables["exchanges"] == {"read": 4, "loaded": 4, "quarantined": 0, "duplicates": 0}
    counts = store.counts()
    assert counts["nodes"]["Account"] == 3
    # only what links two accounts (or an indicator names) is a node: the IP in the operator's
    # network and the agent template a1 and a2 both sent; the rest stays in staging
    assert counts["nodes"]["IP"] == 1
    assert counts["nodes"]["PromptTemplate"] == 1
    assert sum(counts["nodes"].values()) < 40  # no node per exchange

    a1 = store.get_node("Account", "a1")
    assert a1 is not None
    p = a1.props
    assert (p["exchanges"], p["input_tokens"], p["output_tokens"], p["active_days"]) == (2, 15, 25, 2)
    assert (p["first_seen"], p["last_seen"]) == ("2025-04-22T10:00:00Z", "2025-04-23T09:00:00Z")
    assert p["models"] == ["m-large", "m-small"]
    assert p["email_domain"] == "gmail.com" and len(p["email_hash"]) == 64
    assert p["email_shape"] == "word.word" and len(p["phone_hash"]) == 64
    assert p["created_at"] == "2025-04-22T10:00:00Z" and p["org_id"] == "org1"
    everything = json.dumps([dict(n.props) for n in store.iter_nodes("Account")])
    assert "John.Doe" not in everything and "johndoe" not in everything and "555" not in everything
    a3 = store.get_node("Account", "a3")
    assert a3 is not None and a3.props["email_shape"] == "word.word+digits"

    used = {r.ref: r.props for r in store.iter_relationships(Rel.USED_IP)}
    signup = used[(("Account", "a1"), "USED_IP", ("IP", "10.1.0.5"))]
    assert signup["count"] == 2 and signup["signup"] is True
    assert signup["first_seen"] == "2025-04-22T10:00:00Z" and signup["last_seen"] == "2025-04-23T09:00:00Z"

    ip = store.get_node("IP", "10.1.0.5")
    assert ip is not None
    assert (ip.props["network"], ip.props["kind"], ip.props["asn"], ip.props["provider"]) == ("10.1.0.0/16", "proxy", "64501", "hydra")
    net = store.get_node("Network", "10.1.0.0/16")
    assert net is not None and net.props["source"] == "intel" and net.props["as_org"] == "Hydra Hosting"
    # a2's and a3's IPs and networks link nobody; the operator's ASN reaches a1 alone
    for label, key in (("IP", "198.51.100.7"), ("Network", "198.51.100.0/24"), ("IP", "2001:db8:1:2::9"),
                       ("Network", "2001:db8:1::/48"), ("ASN", "64501")):
        assert store.get_node(label, key) is None, (label, key)

    sent = {r.ref: r.props for r in store.iter_relationships(Rel.SENT_TEMPLATE)}
    template_ids = {ref[2][1] for ref in sent}
    agent = next(iter({ref[2][1] for ref in sent if ref[0] == ("Account", "a1")}))
    assert len(template_ids) == 1
    assert sent[(("Account", "a1"), "SENT_TEMPLATE", ("PromptTemplate", agent))]["count"] == 2
    assert (("Account", "a2"), "SENT_TEMPLATE", ("PromptTemplate", agent)) in sent
    tpl = store.get_node("PromptTemplate", agent)
    assert tpl is not None and tpl.props["capability"] == "agentic" and tpl.props["template"].endswith("<BODY>")

    clients = {r.ref: r.props for r in store.iter_relationships(Rel.USED_CLIENT)}
    assert clients[(("Account", "a1"), "USED_CLIENT", ("ClientFingerprint", "fp1"))]["count"] == 2
    assert store.get_node("ClientFingerprint", "fp2") is None  # a3's alone
    paid = {r.ref: r.props for r in store.iter_relationships(Rel.PAID_WITH)}
    assert len(paid) == 2
    pm = store.get_node("PaymentMethod", "pm1")
    assert pm is not None and pm.props["card_bin"] == "411111" and "billing_name" not in pm.props
    assert len(pm.props["billing_name_hash"]) == 64
    devices = {r.ref: r.props for r in store.iter_relationships(Rel.USED_DEVICE)}
    assert devices[(("Account", "a1"), "USED_DEVICE", ("Device", "d1"))]["last_seen"] == "2025-04-25T00:00:00Z"
    other = store.get_node("EmailDomain", "throwaway.io")
    assert other is not None and other.props["webmail"] is False
    assert store.get_node("EmailDomain", "gmail.com") is None  # a1's alone
    # what stays in staging is summed on the account: IP uses by network kind, capability mix
    assert json.loads(p["ip_uses_by_kind"]) == {"proxy": 2}
    assert json.loads(p["capability_mix"]) == {"agentic": 2} and p["cot_exchanges"] == 0
    assert json.loads(a3.props["ip_uses_by_kind"]) == {"": 1}
    ind = store.get_node("Indicator", "network:10.1.0.0/16")
    assert ind is not None and ind.props == {"type": "network", "value": "10.1.0.0/16"} | {
        k: v for k, v in ind.props.items() if k not in ("type", "value")}
    has = {r.ref: r.props for r in store.iter_relationships(Rel.HAS_INDICATOR)}
    assert has[(("Operator", "op1"), "HAS_INDICATOR", ("Indicator", "network:10.1.0.0/16"))] == {
        "source": "report-7", "confidence": 0.8}
    op = store.get_node("Operator", "op1")
    assert op is not None and op.props["name"] == "Hydra"
    # labels are staged only
    assert all("operator" not in k for n in store.iter_nodes("Account") for k in n.props)


def test_loading_twice_gives_the_same_graph(store: GraphStore, tmp_path: Path) -> None:
    bundle, settings = _full(tmp_path / "b"), _settings(tmp_path / "ws")
    first = load_bundle(bundle, settings, store)
    once = snapshot(store)
    second = load_bundle(bundle, settings, store)
    assert snapshot(store) == once
    assert first.tables == second.tables
    assert len(list(table_dir(tmp_path / "ws", "exchanges").glob("*.parquet"))) == 1


def test_a_killed_load_run_again_converges(store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _full(tmp_path / "b")
    load_bundle(bundle, _settings(tmp_path / "clean"), store)
    clean = snapshot(store)
    clear_store(store)

    ws = tmp_path / "ws"
    real = store.upsert_relationships
    calls = {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "upsert_relationships", dying)
    with pytest.raises(KeyboardInterrupt):
        load_bundle(bundle, _settings(ws), store)
    monkeypatch.undo()
    # and a staging run that died half-way left its temporary directory behind
    leftover = stage_tmp_dir(ws, "deadbeef")
    (leftover / "checked").mkdir(parents=True)
    load_bundle(bundle, _settings(ws), store)
    assert snapshot(store) == clean

    # a kill between the staging commit's delete and rename: this bundle's files are missing
    for path in table_dir(ws, "exchanges").glob("*.parquet"):
        path.unlink()
    load_bundle(bundle, _settings(ws), store)
    assert snapshot(store) == clean


def test_a_second_bundle_adds_without_duplicating(store: GraphStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    load_bundle(_full(tmp_path / "one"), _settings(ws), store)
    second = _bundle(
        tmp_path / "two",
        accounts="account_id,created_at\na4,2025-05-01T00:00:00Z\n",
        exchanges=(
            "exchange_id,account_id,ts,ip,input_tokens\n"
            "e1,a1,2025-04-22T10:00:00Z,10.1.0.5,10\n"          # already loaded by bundle one
            "e9,a1,2025-05-02T10:00:00Z,10.1.0.5,100\n"          # new, for an account of bundle one
            "e10,a4,2025-05-02T11:00:00Z,10.1.0.6,1\n"
        ),
    )
    report = load_bundle(second, _settings(ws), store)
    assert report.tables["exchanges"]["loaded"] == 3
    a1 = store.get_node("Account", "a1")
    assert a1 is not None
    assert a1.props["exchanges"] == 3 and a1.props["input_tokens"] == 115
    assert a1.props["last_seen"] == "2025-05-02T10:00:00Z"
    used = {r.ref: r.props for r in store.iter_relationships(Rel.USED_IP)}
    assert used[(("Account", "a1"), "USED_IP", ("IP", "10.1.0.5"))]["count"] == 3
    assert store.get_node("Account", "a4") is not None and store.get_node("Account", "a2") is not None
    ip = store.get_node("IP", "10.1.0.6")
    assert ip is not None and ip.props["kind"] == "proxy"  # bundle one's intel applies
    before = snapshot(store)
    load_bundle(second, _settings(ws), store)
    assert snapshot(store) == before
    shutil.rmtree(tmp_path / "two")
