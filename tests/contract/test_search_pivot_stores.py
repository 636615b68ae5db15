"""The search pivot on every store: a busy IP shared by more accounts than the UI's degree
cap lists every one of them, the busiest (the fake accounts) included."""

from __future__ import annotations

from pathlib import Path

from graph.investigate import search
from graph.schema import Label, Rel
from graph.store import GraphStore

CAP = 5  # stands in for ui_degree_cap: what the canvas draws, never what a pivot finds
EXIT_IP = "198.18.0.7"


def _busy_world(store: GraphStore) -> list[str]:
    """Twelve accounts on one proxy exit; the six fakes also sent twenty templates each, so
    each has more relationships than the cap. Returns the fakes."""
    honest = [f"h{i:02d}" for i in range(6)]
    fakes = [f"f{i:02d}" for i in range(6)]
    with store.batch():
        store.upsert_nodes(Label.ACCOUNT, [{"account_id": a} for a in honest + fakes])
        store.upsert_relationships(Rel.USED_IP, Label.ACCOUNT, Label.IP, [
            {"start": a, "end": EXIT_IP, "count": 500 if a in fakes else 2,
             "first_seen": f"2025-04-{22 + i % 6:02d}T00:00:00Z", "last_seen": "2025-06-05T00:00:00Z"}
            for i, a in enumerate(honest + fakes)
        ])
        store.upsert_relationships(Rel.IN_NETWORK, Label.IP, Label.NETWORK, [{"start": EXIT_IP, "end": "198.18.0.0/24"}])
        store.upsert_relationships(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE, [
            {"start": a, "end": f"t{j:02d}", "count": 25} for a in fakes for j in range(20)
        ])
        store.upsert_relationships(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD, [{"start": a, "end": "pm-x"} for a in fakes])
        store.upsert_nodes(Label.PAYMENT_METHOD, [{"payment_id": "pm-x", "card_bin": "537799"}])
    return fakes


def test_busy_ip_pivot_lists_every_account_above_the_degree_cap(store: GraphStore, tmp_path: Path) -> None:
    fakes = _busy_world(store)
    # What the old search did: neighbours under the degree cap, which drops the busy accounts.
    capped = store.neighbours([(Label.IP.value, EXIT_IP)], limit=200, degree_cap=CAP)
    assert not {n.key for n in capped.nodes} & set(fakes), "the fixture must exercise the cap"

    found = search.resolve(store, tmp_path, EXIT_IP)
    assert (found.kind, found.value, found.source) == ("ip", EXIT_IP, "graph")
    pivot = search.accounts_behind(store, tmp_path, "ip", EXIT_IP)
    assert pivot.total == 12 and pivot.source == "graph"
    assert [r["account_id"] for r in pivot.rows[:6]] == fakes  # busiest first
    assert {r["exchanges"] for r in pivot.rows[:6]} == {500} and pivot.rows[-1]["exchanges"] == 2
    assert pivot.span() == ("2025-04-22T00:00:00Z", "2025-06-05T00:00:00Z")
    assert [len(pivot.page(n, CAP)) for n in (1, 2, 3)] == [5, 5, 2]

    network = search.accounts_behind(store, tmp_path, "network", "198.18.0.0/24")
    assert network.total == 12 and [m["value"] for m in network.matched] == [EXIT_IP]
    by_bin = search.accounts_behind(store, tmp_path, "card_bin", "537799")
    assert search.resolve(store, tmp_path, "537799").kind == "card_bin"
    assert sorted(r["account_id"] for r in by_bin.rows) == fakes
    assert search.resolve(store, tmp_path, "pm-x").kind == "payment"
    template = search.accounts_behind(store, tmp_path, "template", "t03")
    assert sorted(r["account_id"] for r in template.rows) == fakes and template.rows[0]["exchanges"] == 25
    values = search.values_of_account(store, "f00")
    assert len(values) == 22 and values[-1]["value"] == EXIT_IP and values[-1]["accounts_using"] == 12
