"""A hub template (more senders than ``graph_template_hub_senders``) is a node in the graph with
its sender count, and its uses stay in staging; everything that asks which accounts sent it
still answers fully, on every store: search, the account page, the saved queries and the
evidence graph's hub summary. A template under the threshold keeps its uses in the graph."""

from __future__ import annotations

from pathlib import Path

from graph.evidence import HUB, build_evidence
from graph.investigate import search
from graph.queries.runner import run_query
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore
from loaders.load import load_bundle
from tests.contract.test_load import _bundle, snapshot

HUB_PROMPT = "You are a helpful assistant for the Acme travel app and answer briefly"
PAIR_PROMPT = "Translate this menu into Portuguese for my grandmother please"
ACCOUNTS = "account_id,created_at\n" + "".join(f"h{i},2025-04-20T00:00:00Z\n" for i in range(1, 6))
HEADER = "exchange_id,account_id,ts,prompt\n"
# h1, h2, h3 send the hub prompt (three senders: over a threshold of 2); h1 and h4 the pair prompt.
EXCHANGES = HEADER + (
    f"x1,h1,2025-04-21T10:00:00Z,{HUB_PROMPT}\n"
    f"x2,h1,2025-04-21T11:00:00Z,{HUB_PROMPT}\n"
    f"x3,h2,2025-04-22T10:00:00Z,{HUB_PROMPT}\n"
    f"x4,h3,2025-04-23T10:00:00Z,{HUB_PROMPT}\n"
    f"x5,h1,2025-04-21T12:00:00Z,{PAIR_PROMPT}\n"
    f"x6,h4,2025-04-24T10:00:00Z,{PAIR_PROMPT}\n"
)


def _settings(ws: Path, hub_senders: int = 2) -> Settings:
    return Settings({"workspace": str(ws), "hash_salt": "pepper", "graph_template_hub_senders": hub_senders}, environ={})


def _template(ws: Path, store: GraphStore, text: str) -> str:
    matched = search.accounts_behind(store, ws, "prompt", text).matched
    assert len(matched) == 1, matched
    return str(matched[0]["value"])


def _graph_senders(store: GraphStore, template_id: str) -> set[str]:
    return {r.start[1] for r in store.iter_relationships(Rel.SENT_TEMPLATE) if r.end == (Label.PROMPT_TEMPLATE.value, template_id)}


def _cluster(store: GraphStore, members: list[str]) -> None:
    store.upsert_nodes(Label.CLUSTER, [{"cluster_id": "c1", "size": len(members)}])
    store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, [{"start": m, "end": "c1"} for m in members])


def test_a_hub_template_is_a_node_without_uses_and_still_answers(store: GraphStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    load_bundle(_bundle(tmp_path / "b", accounts=ACCOUNTS, exchanges=EXCHANGES), _settings(ws), store)
    hub, pair = _template(ws, store, "Acme travel app"), _template(ws, store, "menu into Portuguese")

    node = store.get_node(Label.PROMPT_TEMPLATE, hub)
    assert node is not None
    assert (node.props["accounts"], node.props["exchanges"], node.props["uses_staged"]) == (3, 4, True)
    assert (node.props["first_seen"], node.props["last_seen"]) == ("2025-04-21T10:00:00Z", "2025-04-23T10:00:00Z")
    assert _graph_senders(store, hub) == set()
    assert store.degrees([node.ref], [Rel.SENT_TEMPLATE.value]).get(node.ref, 0) == 0
    under = store.get_node(Label.PROMPT_TEMPLATE, pair)
    assert under is not None and (under.props["accounts"], under.props["uses_staged"]) == (2, False)
    assert _graph_senders(store, pair) == {"h1", "h4"}

    pivot = search.accounts_behind(store, ws, "template", hub)
    assert (pivot.source, [(r["account_id"], r["exchanges"]) for r in pivot.rows]) == ("staging", [("h1", 2), ("h2", 1), ("h3", 1)])
    assert search.resolve(store, ws, hub).source == "graph"
    assert search.accounts_behind(store, ws, "template", pair).source == "graph"
    page = {(v["label"], v["value"]): v for v in search.values_of_account(store, "h2", ws)}
    assert page[(Label.PROMPT_TEMPLATE.value, hub)]["accounts_using"] == 3

    sent = run_query(store, "accounts_sending_template", {"template_id": hub}, workspace=ws)
    assert (sent.engine, [(r["account_id"], r["count"]) for r in sent.rows]) == ("staging", [("h1", 2), ("h2", 1), ("h3", 1)])
    top = {r["template_id"]: (r["accounts"], r["exchanges"]) for r in run_query(store, "top_cot_templates", {"min_accounts": 2}).rows}
    assert top == {hub: (3, 4), pair: (2, 2)}

    # the evidence graph sees the hub with its three senders, without counting relationships
    _cluster(store, ["h1", "h2", "h3", "h4"])
    ev = build_evidence(store, ["c1"], workspace=ws, degree_cap=2)
    assert ev.hubs == {(Label.PROMPT_TEMPLATE.value, hub): 3}
    summary = ev.node_map()[(HUB, Label.PROMPT_TEMPLATE.value)]
    assert (summary.props["hubs"], summary.props["members"], summary.props["accounts_max"]) == (1, 3, 3)
    shown = ev.node_map()[(Label.PROMPT_TEMPLATE.value, pair)]
    assert (shown.props["members"], shown.props["accounts"]) == (2, 2)
    # over a wider cap it is a plain shared value, its members' uses read from staging
    wide = build_evidence(store, ["c1"], workspace=ws, degree_cap=10)
    assert wide.hubs == {}
    value = wide.node_map()[(Label.PROMPT_TEMPLATE.value, hub)]
    assert (value.props["members"], value.props["accounts"]) == (3, 3)
    uses = {r.start[1]: r.props.get("count") for r in wide.relationships
            if r.type == Rel.SENT_TEMPLATE and r.end == value.ref}
    assert uses == {"h1": 2, "h2": 1, "h3": 1}


def test_a_template_pushed_over_the_threshold_keeps_its_old_uses_and_answers_from_staging(
        store: GraphStore, tmp_path: Path) -> None:
    """Under the threshold at the first load (two senders), over it after a second (three): the
    graph keeps the two uses written, writes no new one, and the readers ask staging."""
    ws = tmp_path / "ws"
    first = HEADER + "".join(line + "\n" for line in EXCHANGES.splitlines()[1:] if ",h3," not in line)
    load_bundle(_bundle(tmp_path / "one", accounts=ACCOUNTS, exchanges=first), _settings(ws), store)
    hub = _template(ws, store, "Acme travel app")
    assert _graph_senders(store, hub) == {"h1", "h2"}
    node = store.get_node(Label.PROMPT_TEMPLATE, hub)
    assert node is not None and node.props["uses_staged"] is False
    second = HEADER + f"y1,h3,2025-04-23T10:00:00Z,{HUB_PROMPT}\n"
    load_bundle(_bundle(tmp_path / "two", accounts="account_id,created_at\nh3,2025-04-20T00:00:00Z\n", exchanges=second),
                _settings(ws), store)
    node = store.get_node(Label.PROMPT_TEMPLATE, hub)
    assert node is not None and (node.props["accounts"], node.props["uses_staged"]) == (3, True)
    assert _graph_senders(store, hub) == {"h1", "h2"}  # the old uses stay, the new one is staged
    assert [r["account_id"] for r in search.accounts_behind(store, ws, "template", hub).rows] == ["h1", "h2", "h3"]
    sent = run_query(store, "accounts_sending_template", {"template_id": hub}, workspace=ws)
    assert (sent.engine, sorted(r["account_id"] for r in sent.rows)) == ("staging", ["h1", "h2", "h3"])
    page = {(v["label"], v["value"]): v for v in search.values_of_account(store, "h1", ws)}
    assert page[(Label.PROMPT_TEMPLATE.value, hub)]["accounts_using"] == 3
    _cluster(store, ["h1", "h2", "h3"])
    assert build_evidence(store, ["c1"], workspace=ws, degree_cap=2).hubs == {(Label.PROMPT_TEMPLATE.value, hub): 3}


def test_a_threshold_above_every_template_writes_every_use(store: GraphStore, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    bundle = _bundle(tmp_path / "b", accounts=ACCOUNTS, exchanges=EXCHANGES)
    load_bundle(bundle, _settings(ws, hub_senders=200), store)
    hub = _template(ws, store, "Acme travel app")
    assert _graph_senders(store, hub) == {"h1", "h2", "h3"}
    node = store.get_node(Label.PROMPT_TEMPLATE, hub)
    assert node is not None and (node.props["accounts"], node.props["uses_staged"]) == (3, False)
    sent = run_query(store, "accounts_sending_template", {"template_id": hub}, workspace=ws)
    assert sent.engine != "staging" and len(sent.rows) == 3
    # loading again converges
    before = snapshot(store)
    load_bundle(bundle, _settings(ws, hub_senders=200), store)
    assert snapshot(store) == before
