"""Search (account, IP, network, card BIN, payment id, e-mail domain/hash, device, prompt text)
and the shortest path between two accounts with the evidence on each hop."""

from __future__ import annotations

import streamlit as st

from app.views import common
from graph.investigate import paths, search
from graph.schema import Label, Rel


def _search() -> None:
    st.subheader("Search")
    c1, c2, c3 = st.columns([4, 2, 1])
    text = c1.text_input("Account id, IP, network, card BIN, payment id, e-mail domain or hash, device, prompt text", key="search_text")
    kind = c2.selectbox("As", search.SEARCH_KINDS, key="search_kind")
    c3.write("")
    go = c3.button("Search", key="search_go")
    if not (go or text):
        return
    hits = search.search(common.store(), common.workspace(), text, str(kind))
    if not hits:
        st.warning(f"Nothing found for {text!r} (searched as {search.guess_kind(text) if kind == 'auto' else kind}).")
        return
    st.dataframe(hits, hide_index=True)
    accounts = [h["key"] for h in hits if h["label"] == Label.ACCOUNT]
    if accounts:
        sub = common.store().neighbours([(Label.ACCOUNT.value, a) for a in accounts], [Rel.MEMBER_OF], limit=50)
        clusters = sorted(n.key for n in sub.nodes if n.label == Label.CLUSTER)
        for cid in clusters:
            if st.button(f"Open cluster {cid}", key=f"search_open_{cid}"):
                common.select_cluster(cid)
                st.switch_page(st.session_state["pages"]["cluster"])
    else:
        refs = [(h["label"], h["key"]) for h in hits[:20]]
        cap = int(common.settings()["ui_degree_cap"])
        sub = common.store().neighbours(refs, limit=200, degree_cap=cap)
        users = sorted(n.key for n in sub.nodes if n.label == Label.ACCOUNT)
        st.caption(f"{len(users)} accounts use these values" + (" (first 200)" if sub.truncated else ""))
        st.dataframe({"account_id": users}, hide_index=True, height=200)


def _path() -> None:
    st.subheader("Path between two accounts")
    c1, c2, c3 = st.columns([3, 3, 1])
    a = c1.text_input("From account", key="path_a")
    b = c2.text_input("To account", key="path_b")
    hops = c3.number_input("Max hops", 1, 15, 6, key="path_hops")
    if st.button("Find path", key="path_go") and a and b:
        path = paths.path_with_evidence(common.store(), a.strip(), b.strip(), max_hops=int(hops))
        if path is None:
            st.warning(f"No path between {a} and {b} within {hops} hops.")
        else:
            st.success(f"{len(path)} hop{'' if len(path) == 1 else 's'}: {a} → {b}")
            st.dataframe(path, hide_index=True)


def render() -> None:
    st.title("Search & paths")
    _search()
    st.divider()
    _path()
