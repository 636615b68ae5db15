"""Search and pivot (graph/investigate/search.py): what a string is taken as, and every account
behind a value, from the graph or, for values it does not hold, from staging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph.investigate import search
from graph.schema import Label, Rel
from graph.staging import table_dir
from graph.stores.embedded import EmbeddedStore
from graph.workspace import templates_path
from tests.worlds.ui import build_world

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture()
def world(tmp_path: Path) -> tuple[EmbeddedStore, Path]:
    store = EmbeddedStore(tmp_path / "embedded")
    build_world(store, tmp_path, ring=4)
    return store, tmp_path


def _ids_world(tmp_path: Path) -> tuple[EmbeddedStore, Path]:
    """Ids of every kind in free-form shapes (the bundle contract fixes none)."""
    store = EmbeddedStore(tmp_path / "embedded")
    store.upsert_nodes(Label.ACCOUNT, [{"account_id": a, "created_at": "2025-05-01T00:00:00Z"} for a in ("u-1", "u-2", "u-3")])
    store.upsert_nodes(Label.PAYMENT_METHOD, [{"payment_id": "pmfp_9f2c", "card_bin": "52345678"}])
    store.upsert_nodes(Label.DEVICE, [{"device_id": "dev_77aa"}])
    store.upsert_nodes(Label.CLIENT_FINGERPRINT, [{"fingerprint": "t13d1516h2_8daaf6152771_02713d6af862"}])
    store.upsert_nodes(Label.PROMPT_TEMPLATE, [{"template_id": "tc22b5f9178342609"}])
    store.upsert_relationships(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, [
        {"start": "u-1", "end": "pmfp_9f2c", "first_seen": "2025-05-02T00:00:00Z"},
        {"start": "u-2", "end": "pmfp_9f2c", "first_seen": "2025-05-03T00:00:00Z"}])
    store.upsert_relationships(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE, [
        {"start": a, "end": "dev_77aa", "first_seen": "2025-05-02T00:00:00Z", "last_seen": "2025-05-09T00:00:00Z"} for a in ("u-1", "u-3")])
    store.upsert_relationships(Rel.USED_CLIENT, Label.ACCOUNT, Label.CLIENT_FINGERPRINT, [
        {"start": "u-2", "end": "t13d1516h2_8daaf6152771_02713d6af862", "count": 40, "first_seen": "2025-05-02T00:00:00Z", "last_seen": "2025-05-04T00:00:00Z"}])
    store.upsert_relationships(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, [
        {"start": a, "end": "tc22b5f9178342609", "count": n} for a, n in (("u-1", 3), ("u-3", 9))])
    pq.write_table(pa.table({"template_id": ["tc22b5f9178342609"], "template": ["refactor this function to be tail recursive"],
                             "example": ["Refactor this function to be tail recursive: def f(n): ..."], "capability": ["coding"], "cot": [False]}),
                   _mkparent(templates_path(tmp_path)))
    return store, tmp_path


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_candidate_kinds_follow_the_shape_of_the_value() -> None:
    assert search.candidate_kinds("203.0.113.7") == ["ip"]
    assert search.candidate_kinds(" 2001:db8::1 ") == ["ip"]
    assert search.candidate_kinds("203.0.113.0/24") == ["network"]
    assert search.candidate_kinds("chain of thought") == ["prompt"]
    assert search.candidate_kinds("bob@mailinator.com") == ["email_domain"]
    assert search.candidate_kinds("411111")[0] == "card_bin" and "account" in search.candidate_kinds("411111")
    assert search.candidate_kinds("mailinator.com")[0] == "email_domain"
    assert search.candidate_kinds("a" * 64)[:2] == ["email_hash", "phone_hash"]
    # An opaque id may be any id: accounts first, prompt words last.
    opaque = search.candidate_kinds("dev_77aa")
    assert opaque[0] == "account" and opaque[-1] == "prompt" and {"payment", "device", "fingerprint", "template"} <= set(opaque)
    assert search.candidate_kinds("  ") == []
    assert search.guess_kind("203.0.113.0/24") == "network"
    assert search.normalise("ip", "2001:0db8:0000::0001") == "2001:db8::1"
    assert search.normalise("network", "203.0.113.9/24") == "203.0.113.0/24"
    assert search.normalise("email_domain", "Bob@Mailinator.COM") == "mailinator.com"


@pytest.mark.parametrize(
    ("text", "kind", "accounts"),
    [
        ("pmfp_9f2c", "payment", ["u-1", "u-2"]),
        ("52345678", "card_bin", ["u-1", "u-2"]),
        ("dev_77aa", "device", ["u-1", "u-3"]),
        ("t13d1516h2_8daaf6152771_02713d6af862", "fingerprint", ["u-2"]),
        ("tc22b5f9178342609", "template", ["u-3", "u-1"]),
        ("tail recursive", "prompt", ["u-3", "u-1"]),
        ("u-2", "account", ["u-2"]),
    ],
)
def test_a_value_is_taken_as_the_kind_that_finds_it(tmp_path: Path, text: str, kind: str, accounts: list[str]) -> None:
    store, ws = _ids_world(tmp_path)
    found = search.resolve(store, ws, text)
    assert (found.kind, found.source, found.guessed) == (kind, "graph", True)
    assert f"as {search.KINDS[kind].title} (guessed from the value)" in found.explain()
    pivot = search.accounts_behind(store, ws, found.kind, found.value)
    assert [r["account_id"] for r in pivot.rows] == accounts


def test_card_id_is_not_mistaken_for_an_account_and_says_what_it_tried(tmp_path: Path) -> None:
    store, ws = _ids_world(tmp_path)
    found = search.resolve(store, ws, "pmfp_9f2c")
    assert found.tried == ["account", "payment"] and "Tried first: account." in found.explain()
    # Named explicitly, the card is found and its accounts listed with first use.
    asked = search.resolve(store, ws, "pmfp_9f2c", "payment")
    assert not asked.guessed and "(as asked)" in asked.explain()
    rows = search.accounts_behind(store, ws, "payment", "pmfp_9f2c").rows
    assert rows == [
        {"account_id": "u-1", "exchanges": None, "uses": 1, "first_seen": "2025-05-02T00:00:00Z", "last_seen": "2025-05-02T00:00:00Z"},
        {"account_id": "u-2", "exchanges": None, "uses": 1, "first_seen": "2025-05-03T00:00:00Z", "last_seen": "2025-05-03T00:00:00Z"},
    ]
    nothing = search.resolve(store, ws, "zz-unknown")
    assert nothing.kind is None and nothing.explain().startswith("Nothing found for 'zz-unknown': looked it up as account, payment id")
    bad = search.resolve(store, ws, "300.1.2.3", "ip")
    assert bad.kind is None and bad.explain() == "'300.1.2.3' is not a valid IP."
    with pytest.raises(ValueError, match="unknown search kind"):
        search.resolve(store, ws, "x", "colour")


def test_a_bin_and_a_prompt_list_what_they_matched(world: tuple[EmbeddedStore, Path]) -> None:
    store, ws = world
    by_bin = search.accounts_behind(store, ws, "card_bin", "411111")
    assert [m["value"] for m in by_bin.matched] == ["pm-ring"] and by_bin.total == 4
    prompt = search.accounts_behind(store, ws, "prompt", "CHAIN OF THOUGHT")
    assert [m["value"] for m in prompt.matched] == ["t-cot"]
    assert [(r["account_id"], r["exchanges"]) for r in prompt.rows] == [("r000", 3), ("r001", 3), ("r002", 3), ("r003", 3)]
    network = search.accounts_behind(store, ws, "network", "203.0.113.0/24")
    assert [m["value"] for m in network.matched] == ["203.0.113.7"] and network.total == 4
    assert search.clusters_of(store, ["r000", "s1", "nobody"]) == {"r000": "c-ring", "s1": "c-benign"}


def test_a_value_only_staged_is_answered_from_staging(world: tuple[EmbeddedStore, Path]) -> None:
    """A withheld prompt's hash one account sent, and a device only the staged rows know:
    neither is in the graph, both are found, with counts and time span from DuckDB."""
    store, ws = world
    pq.write_table(pa.table({
        "exchange_id": ["x1", "x2", "x3"], "account_id": ["s1"] * 3,
        "ts": pa.array([T0, T0 + timedelta(hours=2), T0 + timedelta(days=1)], type=pa.timestamp("us", tz="UTC")),
        "ip": ["198.51.100.9"] * 3, "template_id": ["h:5eb63bbbe01eeed0"] * 3, "_file": ["exchanges.csv"] * 3, "_row": [100, 101, 102],
    }), table_dir(ws, "exchanges") / "extra-0.parquet")
    table_dir(ws, "devices").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"account_id": ["s2"], "device_id": ["dev-solo"],
                             "first_seen": pa.array([T0], type=pa.timestamp("us", tz="UTC")),
                             "last_seen": pa.array([T0 + timedelta(days=5)], type=pa.timestamp("us", tz="UTC"))}),
                   table_dir(ws, "devices") / "fixture-0.parquet")
    assert store.get_node(Label.PROMPT_TEMPLATE, "h:5eb63bbbe01eeed0") is None
    found = search.resolve(store, ws, "h:5eb63bbbe01eeed0")
    assert (found.kind, found.source) == ("template", "staging")
    assert "only in the staged rows" in found.explain()
    pivot = search.accounts_behind(store, ws, found.kind, found.value)
    assert pivot.source == "staging"
    assert pivot.rows == [{"account_id": "s1", "exchanges": 3, "uses": 1, "first_seen": "2025-05-01T08:00:00Z", "last_seen": "2025-05-02T08:00:00Z"}]
    device = search.resolve(store, ws, "dev-solo")
    assert (device.kind, device.source) == ("device", "staging")
    rows = search.accounts_behind(store, ws, "device", "dev-solo").rows
    assert rows == [{"account_id": "s2", "exchanges": None, "uses": 1, "first_seen": "2025-05-01T08:00:00Z", "last_seen": "2025-05-06T08:00:00Z"}]
    # An IP used in exchanges and at sign-up is one use, its exchanges counted once each.
    table_dir(ws, "accounts").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"account_id": ["s1"], "signup_ip": ["198.51.100.9"],
                             "created_at": pa.array([T0 - timedelta(days=30)], type=pa.timestamp("us", tz="UTC"))}),
                   table_dir(ws, "accounts") / "fixture-0.parquet")
    staged_ip = search.staged_users(ws, search.KINDS["ip"].staged, ["198.51.100.9"])
    assert (staged_ip["s1"].uses, staged_ip["s1"].exchanges, staged_ip["s1"].first) == (1, 5 + 3, "2025-04-01T08:00:00Z")


def test_pages_cut_the_list_never_the_count(world: tuple[EmbeddedStore, Path]) -> None:
    store, ws = world
    hub = search.accounts_behind(store, ws, "ip", "100.64.0.1")  # every account of the world
    assert hub.total == 6
    assert [r["account_id"] for r in hub.page(1, 4)] == ["r000", "r001", "r002", "r003"]
    assert [r["account_id"] for r in hub.page(2, 4)] == ["s1", "s2"]
    assert hub.page(9, 4) == hub.page(2, 4) and hub.page(0, 4) == hub.page(1, 4)
    assert hub.span() == ("", "")
    ip = search.accounts_behind(store, ws, "ip", "203.0.113.7")
    assert ip.span() == ("2025-04-22T10:00:00Z", "2025-04-25T10:00:00Z")


def test_account_values_rarest_first(world: tuple[EmbeddedStore, Path]) -> None:
    store, _ = world
    values = search.values_of_account(store, "r001")
    assert [(v["label"], v["value"], v["accounts_using"]) for v in values][-1] == ("IP", "100.64.0.1", 6)
    assert {v["kind"] for v in values} == {"ip", "payment", "template"}
    assert values[0]["accounts_using"] == 4


def test_pivot_links_round_trip() -> None:
    assert search.pivot_link("ip", "203.0.113.7") == "search?pivot=ip:203.0.113.7"
    assert search.pivot_link("network", "203.0.113.0/24") == "search?pivot=network:203.0.113.0/24"
    assert search.pivot_link("prompt", "step by step & more") == "search?pivot=prompt:step%20by%20step%20%26%20more"
    assert search.parse_pivot("ip:2001:db8::1") == ("ip", "2001:db8::1")
    assert search.parse_pivot("template:h:abc") == ("template", "h:abc")
    assert search.parse_pivot("colour:red") is None and search.parse_pivot("ip:") is None and search.parse_pivot(None) is None
    assert search.entity_pivot("PaymentMethod", "pm-1") == ("payment", "pm-1")
    assert search.entity_pivot("BillingPattern", "411111|US|94107|abc") == ("card_bin", "411111")
    assert search.entity_pivot("EmailPattern", "mailinator.com/word_digits") == ("email_domain", "mailinator.com")
    assert search.entity_pivot("CreationBurst", "corp.example@1714550400") == ("email_domain", "corp.example")
    assert search.entity_pivot("Phone", "ab12") == ("phone_hash", "ab12")
    assert search.entity_pivot("TemplateFamily", "f-1") is None
