"""The graph holds what links, on every store: a value used by one account stays in staging
(search, evidence and the account page still answer about it from there), a later bundle that
makes it shared promotes it with all its users, and writing again converges."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from pathlib import Path

from graph.investigate import search
from graph.investigate.sources import source_rows
from graph.linkage.payment import billing_pattern
from graph.queries.runner import is_cypher_store, run_query
from graph.schema import INFRASTRUCTURE_RELS, Label, Rel
from graph.store import GraphStore, NodeKey
from loaders.load import load_bundle
from tests.conftest import clear_store
from tests.contract.test_load import _bundle, _full, _settings, snapshot

VALUE_LABELS = (Label.IP, Label.NETWORK, Label.ASN, Label.PAYMENT_METHOD, Label.DEVICE, Label.CLIENT_FINGERPRINT,
                Label.EMAIL_DOMAIN, Label.PROMPT_TEMPLATE)
# A second bundle: a5 uses what a1, a2 and a3 each used alone in the first.
SECOND = {
    "accounts": "account_id,created_at,email\na5,2025-05-01T00:00:00Z,someone@gmail.com\n",
    "exchanges": (
        "exchange_id,account_id,ts,ip,client_fingerprint,user_agent,model,input_tokens,output_tokens,prompt\n"
        "e20,a5,2025-05-02T10:00:00Z,198.51.100.7,fp2,curl,m-large,1,1,what is the capital of Lisbon?\n"
    ),
}


def _named(store: GraphStore) -> set[tuple[str, str]]:
    return {(str(n.props.get("type")), str(n.props.get("value"))) for n in store.iter_nodes(Label.INDICATOR)}


def _unlinked(store: GraphStore) -> list[NodeKey]:
    """Value nodes that tie fewer than two accounts (directly, or through the network, ASN or
    billing pattern they belong to) and that no indicator names."""
    users: dict[NodeKey, set[str]] = defaultdict(set)
    for rel_type in INFRASTRUCTURE_RELS:
        for rel in store.iter_relationships(rel_type):
            users[rel.end].add(rel.start[1])
    parent: dict[NodeKey, NodeKey] = {}
    for rel_type in (Rel.IN_NETWORK, Rel.IN_ASN):
        for rel in store.iter_relationships(rel_type):
            parent[rel.start] = rel.end
    reach: dict[NodeKey, set[str]] = defaultdict(set)
    for ref, accounts in users.items():
        node: NodeKey | None = ref
        while node is not None:
            reach[node] |= accounts
            node = parent.get(node)
    for ref in list(reach):  # an IP or a network is on the path of its parents' accounts
        up = parent.get(ref)
        while up is not None:
            reach[ref] |= reach[up]
            up = parent.get(up)
    cards = {n.key: n.props for n in store.iter_nodes(Label.PAYMENT_METHOD)}
    by_pattern: dict[str, set[str]] = defaultdict(set)
    for key, props in cards.items():
        if (pattern := billing_pattern(props)) is not None:
            by_pattern[pattern] |= users[(Label.PAYMENT_METHOD.value, key)]
    named = _named(store)
    nets = [ipaddress.ip_network(v, strict=False) for t, v in named if t == "network"]
    out = []
    for label in VALUE_LABELS:
        for node in store.iter_nodes(label):
            accounts = set(reach[node.ref])
            if label == Label.PAYMENT_METHOD and (pattern := billing_pattern(node.props)) is not None:
                accounts |= by_pattern[pattern]
            kind = {Label.PROMPT_TEMPLATE: "prompt_template", Label.PAYMENT_METHOD: "payment"}.get(label, search.KIND_OF_LABEL.get(label.value, ""))
            is_named = (kind, node.key) in named or (label == Label.IP and any(ipaddress.ip_address(node.key) in n for n in nets))
            if len(accounts) < 2 and not is_named:
                out.append(node.ref)
    return out


def test_values_used_by_one_account_stay_in_staging(store: GraphStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    load_bundle(_full(tmp_path / "b"), _settings(ws), store)
    assert _unlinked(store) == []
    for label, key in (("IP", "198.51.100.7"), ("IP", "2001:db8:1:2::9"), ("EmailDomain", "gmail.com"),
                       ("ClientFingerprint", "fp2"), ("Network", "198.51.100.0/24")):
        assert store.get_node(label, key) is None, (label, key)
    # the operator's network is named by an indicator: its IP stays, though one account used it
    assert store.get_node("IP", "10.1.0.5") is not None

    found = search.resolve(store, ws, "198.51.100.7")
    assert (found.kind, found.source) == ("ip", "staging")
    pivot = search.accounts_behind(store, ws, "ip", "198.51.100.7")
    assert (pivot.source, [(r["account_id"], r["exchanges"]) for r in pivot.rows]) == ("staging", [("a2", 1)])
    for kind, value, account in (("email_domain", "gmail.com", "a1"), ("fingerprint", "fp2", "a3"),
                                 ("network", "198.51.100.0/24", "a2"), ("ip", "2001:db8:1:2::9", "a3")):
        got = search.accounts_behind(store, ws, kind, value)
        assert (got.source, [r["account_id"] for r in got.rows]) == ("staging", [account]), kind
    prompt = search.accounts_behind(store, ws, "prompt", "capital of Lisbon")
    assert [r["account_id"] for r in prompt.rows] == ["a3"] and len(prompt.matched) == 1
    benign = str(prompt.matched[0]["value"])
    assert store.get_node("PromptTemplate", benign) is None
    assert [r["account_id"] for r in search.accounts_behind(store, ws, "template", benign).rows] == ["a3"]

    # evidence: the staged rows of the single use, with their provenance
    rows = source_rows(ws, ["a3"], "IP", "2001:db8:1:2::9")
    assert [(r["exchange_id"], r["_row"] is not None, r["_file"]) for r in rows] == [("e4", True, rows[0]["_file"])]
    assert source_rows(ws, ["a3"], "PromptTemplate", benign)[0]["exchange_id"] == "e4"

    # the account page: the shared values from the graph, the account's own from staging
    values = {(v["label"], v["value"]): v for v in search.values_of_account(store, "a1", ws)}
    assert values[("ClientFingerprint", "fp1")]["source"] == "graph"
    assert values[("ClientFingerprint", "fp1")]["accounts_using"] == 2
    gmail = values[("EmailDomain", "gmail.com")]
    assert (gmail["source"], gmail["accounts_using"]) == ("staging", 1)
    a3 = {(v["label"], v["value"]): v for v in search.values_of_account(store, "a3", ws)}
    assert a3[("PromptTemplate", benign)]["exchanges"] == 1 and a3[("IP", "2001:db8:1:2::9")]["source"] == "staging"


def test_a_later_bundle_that_shares_a_value_promotes_it(store: GraphStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    load_bundle(_full(tmp_path / "one"), _settings(ws), store)
    benign = str(search.accounts_behind(store, ws, "prompt", "capital of Lisbon").matched[0]["value"])
    second = _bundle(tmp_path / "two", **SECOND)
    load_bundle(second, _settings(ws), store)
    assert _unlinked(store) == []
    for label, key, rel, users in (
        ("IP", "198.51.100.7", Rel.USED_IP, {"a2", "a5"}),
        ("ClientFingerprint", "fp2", Rel.USED_CLIENT, {"a3", "a5"}),
        ("EmailDomain", "gmail.com", Rel.HAS_EMAIL_DOMAIN, {"a1", "a5"}),
        ("PromptTemplate", benign, Rel.SENT_TEMPLATE, {"a3", "a5"}),
    ):
        assert store.get_node(label, key) is not None, (label, key)
        assert {r.start[1] for r in store.iter_relationships(rel) if r.end == (label, key)} == users, key
    net = store.get_node("Network", "198.51.100.0/24")
    assert net is not None and net.props["source"] == "derived"
    assert (("IP", "198.51.100.7"), "IN_NETWORK", ("Network", "198.51.100.0/24")) in {r.ref for r in store.iter_relationships(Rel.IN_NETWORK)}
    pivot = search.accounts_behind(store, ws, "ip", "198.51.100.7")
    assert pivot.source == "graph" and sorted(r["account_id"] for r in pivot.rows) == ["a2", "a5"]

    # writing again changes nothing, and the graph is the one both bundles give a fresh store
    promoted = snapshot(store)
    load_bundle(second, _settings(ws), store)
    assert snapshot(store) == promoted
    clear_store(store)
    fresh = tmp_path / "fresh"
    load_bundle(_full(tmp_path / "one"), _settings(fresh), store)
    load_bundle(second, _settings(fresh), store)
    assert snapshot(store) == promoted


def test_a_shared_network_keeps_the_ips_that_reach_it(store: GraphStore, tmp_path: Path) -> None:
    """Two accounts on one /24 through different IPs: each IP has one user, but the network
    ties them, and the graph reaches a network only through its IPs."""
    ws = tmp_path / "ws"
    bundle = _bundle(
        tmp_path / "b",
        accounts="account_id,created_at\nn1,2025-04-22T00:00:00Z\nn2,2025-04-22T00:00:00Z\nn3,2025-04-22T00:00:00Z\n",
        exchanges=(
            "exchange_id,account_id,ts,ip\n"
            "x1,n1,2025-04-22T10:00:00Z,203.0.113.10\n"
            "x2,n2,2025-04-22T11:00:00Z,203.0.113.20\n"
            "x3,n3,2025-04-22T12:00:00Z,192.0.2.30\n"
        ),
    )
    load_bundle(bundle, _settings(ws), store)
    assert _unlinked(store) == []
    assert {n.key for n in store.iter_nodes(Label.IP)} == {"203.0.113.10", "203.0.113.20"}
    assert {n.key for n in store.iter_nodes(Label.NETWORK)} == {"203.0.113.0/24"}
    assert sorted(r["account_id"] for r in search.accounts_behind(store, ws, "network", "203.0.113.0/24").rows) == ["n1", "n2"]
    assert [r["account_id"] for r in search.accounts_behind(store, ws, "ip", "192.0.2.30").rows] == ["n3"]


def test_saved_value_pivots_answer_single_use_values_from_staging(store: GraphStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    load_bundle(_full(tmp_path / "b"), _settings(ws), store)
    graph_engine = "cypher" if is_cypher_store(store) else "python"
    assert run_query(store, "accounts_on_ip", {"ip": "198.51.100.7"}).rows == []  # not in the graph
    on_ip = run_query(store, "accounts_on_ip", {"ip": "198.51.100.7"}, workspace=ws)
    assert on_ip.engine == "staging" and on_ip.columns == ["account_id", "first_seen", "last_seen", "count", "signup"]
    assert on_ip.rows == [{"account_id": "a2", "first_seen": "2025-04-22T10:01:00Z", "last_seen": "2025-04-23T12:00:00Z",
                           "count": 1, "signup": True}]
    client = run_query(store, "accounts_by_client_fingerprint", {"fingerprint": "fp2"}, workspace=ws)
    assert (client.engine, [(r["account_id"], r["count"]) for r in client.rows]) == ("staging", [("a3", 1)])
    benign = str(search.accounts_behind(store, ws, "prompt", "capital of Lisbon").matched[0]["value"])
    sent = run_query(store, "accounts_sending_template", {"template_id": benign}, workspace=ws)
    assert (sent.engine, [r["account_id"] for r in sent.rows]) == ("staging", ["a3"])
    # a value the graph holds is answered by the graph, staging or not
    shared = run_query(store, "accounts_by_client_fingerprint", {"fingerprint": "fp1"}, workspace=ws)
    assert (shared.engine, [r["account_id"] for r in shared.rows]) == (graph_engine, ["a1", "a2"])
    assert run_query(store, "accounts_on_ip", {"ip": "192.0.2.99"}, workspace=ws).rows == []
