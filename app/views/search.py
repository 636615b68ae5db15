"""Search and pivot: from any value (account, IP, network, payment id, card BIN, device, client
fingerprint, e-mail domain or hash, organisation, template id, prompt text) to every account
behind it, paged; and the shortest path between two accounts with the evidence on each hop.

The page reads ``?pivot=kind:value`` (every value elsewhere in the app links here), and writes
the pivot it shows back into the address, so a pivot can be shared or reloaded.
"""

from __future__ import annotations

import streamlit as st

from app import format as fmt
from app.views import common, links
from graph.investigate import paths, search
from graph.schema import Label

PAGE_SIZES = (50, 100, 500)
SEARCH_HELP = ("Account id, IP or network, payment id, card BIN, device, client fingerprint, "
               "e-mail domain or hash, template id or prompt text")


@st.cache_data(ttl=60, show_spinner="Finding every account behind the value…", max_entries=64)
def _pivot(workspace: str, store_uri: str, kind: str, value: str) -> search.Pivot:
    # workspace and store_uri key the cache: one server may serve one workspace, tests several.
    return search.accounts_behind(common.store(), common.workspace(), kind, value)


def _read_link() -> None:
    """Take the pivot named in the address (``?pivot=kind:value``) into the search form, once
    per new address, so a link clicked anywhere in the app opens its pivot here."""
    raw = st.query_params.get(search.PIVOT_PARAM)
    if not raw or raw == st.session_state.get("_pivot_param"):
        return
    st.session_state["_pivot_param"] = raw
    parsed = search.parse_pivot(raw)
    if parsed is None:
        st.warning(f"The link names no value to pivot from: {raw!r} (expected kind:value, kind one of {', '.join(search.KINDS)}).")
        return
    # The link's kind holds for its value; a value typed afterwards is guessed afresh.
    st.session_state["search_text"], st.session_state["search_kind"] = parsed[1], "auto"
    st.session_state["_link_pivot"] = parsed


def _write_link(found: search.Resolved) -> None:
    raw = f"{found.kind}:{found.value}"
    st.session_state["_pivot_param"] = raw
    if st.query_params.get(search.PIVOT_PARAM) != raw:
        st.query_params[search.PIVOT_PARAM] = raw


def _account(found: search.Resolved) -> None:
    """An account: its cluster, and every value it uses (each a pivot to the other accounts)."""
    store = common.store()
    node = store.get_node(Label.ACCOUNT, found.value)
    cluster = search.clusters_of(store, [found.value]).get(found.value)
    st.markdown(f"#### Account `{found.value}`")
    if node is not None:
        p = node.props
        cols = st.columns(5)
        cols[0].metric("Exchanges", fmt.short_number(p.get("exchanges")))
        cols[1].metric("Created", str(p.get("created_at") or "—")[:10])
        cols[2].metric("Active", f"{str(p.get('first_seen') or '—')[:10]} → {str(p.get('last_seen') or '—')[:10]}")
        cols[3].metric("Verification", str(p.get("verification") or "—"))
        cols[4].metric("Status", str(p.get("status") or "—"))
    if cluster:
        links.cluster_page_link(cluster, f"Member of cluster {cluster}")
    else:
        st.caption("In no cluster.")
    values = search.values_of_account(store, found.value)
    if not values:
        st.caption("This account shares no infrastructure value in the graph.")
        return
    st.markdown(f"**{len(values)} values this account uses**, rarest first; each links to the accounts behind it.")
    links.dataframe(values, value_kind_column="kind", column_order=["label", "value", "accounts_using", "exchanges", "first_seen", "last_seen"],
                    key="account_values")


def _accounts(found: search.Resolved) -> None:
    """The accounts behind a value: counts, time span, paged however many there are."""
    s = common.settings()
    pivot = _pivot(str(common.workspace()), str(s["store"]), str(found.kind), found.value)
    first, last = pivot.span()
    exchanges = sum(r["exchanges"] or 0 for r in pivot.rows)
    cols = st.columns(4)
    cols[0].metric("Accounts", f"{pivot.total:,}")
    cols[1].metric("Exchanges", fmt.short_number(exchanges) if any(r["exchanges"] is not None for r in pivot.rows) else "—")
    cols[2].metric("First use", first[:10] or "—")
    cols[3].metric("Last use", last[:10] or "—")
    if pivot.source == "staging":
        st.info("Answered from the staged rows: the graph does not hold this value (a value only one account used may live in staging alone).")
    if pivot.matched:
        what = {"card_bin": "cards with this BIN", "prompt": "templates matching this text", "network": "IPs in this network"}.get(str(found.kind), "values")
        with st.expander(f"{len(pivot.matched):,} {what}"):
            links.dataframe(pivot.matched, value_kind_column="label", key="pivot_matched", height=min(400, 38 + 35 * len(pivot.matched)))
    if not pivot.total:
        st.warning(f"No account uses {found.title} {found.value!r}.")
        return
    c1, c2, c3 = st.columns([1, 1, 4])
    size = int(c1.selectbox("Rows per page", PAGE_SIZES, key="pivot_size"))
    pages = max(1, -(-pivot.total // size))
    shown = (found.kind, found.value, size)
    if st.session_state.get("_pivot_shown") != shown or int(st.session_state.get("pivot_page") or 1) > pages:
        st.session_state["_pivot_shown"] = shown
        st.session_state["pivot_page"] = 1  # a new value (or page size) starts on its first page
    number = int(c2.number_input("Page", min_value=1, max_value=pages, step=1, key="pivot_page"))
    rows = pivot.page(number, size)
    start = (min(number, pages) - 1) * size
    order = "busiest first" if any(r["exchanges"] for r in pivot.rows) else "by account id"
    c3.caption(f"Accounts {start + 1:,}–{start + len(rows):,} of {pivot.total:,}, {order} "
               f"(page {min(number, pages)} of {pages}). Every account is listed, however many relationships it has.")
    clusters = search.clusters_of(common.store(), [r["account_id"] for r in rows])
    table = [{**r, "cluster": clusters.get(r["account_id"], "")} for r in rows]
    # Columns that say nothing for this kind stay out: cards count no exchanges, and a
    # single value is used once by each account.
    columns = ["account_id", "cluster", "exchanges", "uses", "first_seen", "last_seen"]
    if all(r["exchanges"] is None for r in pivot.rows):
        columns.remove("exchanges")
    if not pivot.matched:
        columns.remove("uses")
    links.dataframe(table, key="pivot_accounts", column_order=columns, height=min(38 + 35 * len(table), 720),
                    column_config={"exchanges": st.column_config.NumberColumn("exchanges", help="Requests made with this value"),
                                   "uses": st.column_config.NumberColumn(
                                       {"card_bin": "cards", "prompt": "templates", "network": "IPs"}.get(str(found.kind), "uses"),
                                       help="How many of the matched values the account used")})
    cap = int(s["ui_degree_cap"])
    label = f"Draw {found.title} {found.value} with its {min(cap, pivot.total)} busiest accounts"
    if str(found.kind) in search.KIND_OF_LABEL.values() and st.button(label, key="pivot_draw",
                                                                        help=f"The drawing stops at ui_degree_cap ({cap}) accounts; the list above has all."):
        spec = search.KINDS[str(found.kind)]
        assert spec.label is not None
        nodes = [f"{spec.label.value}|{found.value}"] + [f"{Label.ACCOUNT.value}|{r['account_id']}" for r in pivot.rows[:cap]]
        st.session_state["open_in_cluster_view"] = nodes
        st.switch_page(st.session_state["pages"]["cluster"])


def _search() -> None:
    st.subheader("Search and pivot")
    _read_link()
    with st.form("search_form", border=False):
        c1, c2, c3 = st.columns([5, 2, 1], vertical_alignment="bottom")
        c1.text_input(SEARCH_HELP, key="search_text", placeholder="203.0.113.7, 411111, pmfp_…, dev_…, gmail.com, chain of thought …")
        c2.selectbox("As", search.SEARCH_KINDS, key="search_kind",
                     format_func=lambda k: "guess from the value" if k == "auto" else search.KINDS[k].title)
        c3.form_submit_button("Search", type="primary")
    text = str(st.session_state.get("search_text") or "")
    kind = str(st.session_state.get("search_kind") or "auto")
    if not text.strip():
        st.caption("Type a value, or click any value elsewhere in the app to pivot from it.")
        return
    linked = st.session_state.get("_link_pivot")
    if kind == "auto" and linked and linked[1] == text:
        kind = linked[0]
    found = search.resolve(common.store(), common.workspace(), text, kind)
    if found.kind is None:
        st.warning(found.explain())
        return
    st.caption(found.explain())
    _write_link(found)
    if found.kind == "account":
        _account(found)
    else:
        _accounts(found)


def _path() -> None:
    st.subheader("Path between two accounts")
    c1, c2, c3 = st.columns([3, 3, 1])
    a = c1.text_input("From account", key="path_a").strip()
    b = c2.text_input("To account", key="path_b").strip()
    hops = c3.number_input("Max hops", 1, 15, 6, key="path_hops")
    if st.button("Find path", key="path_go") and a and b:
        unknown = paths.unknown_accounts(common.store(), [a, b])
        if unknown:
            st.error(" ".join(f"Unknown account {x!r}: the graph holds no such account." for x in unknown))
            return
        path = paths.path_with_evidence(common.store(), a, b, max_hops=int(hops))
        if path is None:
            st.warning(f"No path between {a} and {b} within {hops} hops.")
        else:
            st.success(f"{len(path)} hop{'' if len(path) == 1 else 's'}: {a} → {b}")
            links.dataframe(path, key="path_table")


def render() -> None:
    st.title("Search & paths")
    _search()
    st.divider()
    _path()
