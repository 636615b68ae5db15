"""One cluster: its canvas (the cluster's evidence graph, full width: click selects, double-click
expands by the chosen relationship kind; filters by link weight and time window), the evidence
behind the selected node or link, its activity timeline, and the case panel (status,
attribution, merge, split, notes)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from app import canvas
from app import format as fmt
from app.canvas_widget import evidence_canvas
from app.views import case_panel, common, links
from graph.evidence_style import KIND_NAMES
from graph.investigate import evidence, search, timeline, triage
from graph.schema import Label


def _graph_key(cluster_id: str, state: canvas.GraphState) -> str:
    # One canvas per cluster: it redraws what changed and keeps its zoom; ``state.version``
    # (changes made by buttons) refits it instead of remounting it.
    del state
    return f"graph-{cluster_id}"


def _state(cluster_id: str) -> canvas.GraphState:
    """The session's graph for this cluster, built on first visit."""
    if st.session_state.get("graph_cluster") != cluster_id or "graph_state" not in st.session_state:
        s = common.settings()
        st.session_state["graph_state"] = canvas.cluster_view(
            common.store(), cluster_id, degree_cap=int(s["ui_degree_cap"]), workspace=common.workspace(),
            links_per_account=int(s["evidence_links_per_account"]),
        )
        st.session_state["graph_cluster"] = cluster_id
    state: canvas.GraphState = st.session_state["graph_state"]
    return state


def _sync_attribution(state: canvas.GraphState, cluster: dict[str, Any]) -> None:
    """Show an attribution made since the graph was built (its operator and edge)."""
    op = cluster["attributed_operator"]
    if op and canvas.node_id((Label.OPERATOR.value, op)) not in state.nodes:
        sub = common.store().subgraph([(Label.CLUSTER.value, cluster["cluster_id"]), (Label.OPERATOR.value, op)])
        before = set(state.nodes)
        canvas.add_subgraph(state, sub, set())
        canvas.place_around(state, canvas.node_id((Label.CLUSTER.value, cluster["cluster_id"])), [n for n in state.nodes if n not in before])
        state.version += 1


def apply_event(state: canvas.GraphState, value: dict[str, Any] | None) -> str | None:
    """Apply one event from the graph component; returns a short description."""
    if not value or value.get("timestamp") == st.session_state.get("graph_event_ts"):
        return None
    st.session_state["graph_event_ts"] = value.get("timestamp")
    action, data = value.get("action"), value.get("data") or {}
    if action == "expand":
        return _expand(state, [str(n) for n in data.get("node_ids", [])])
    if action == "remove":
        gone = canvas.remove(state, data.get("node_ids", []))
        return f"removed {gone} nodes"
    if action == "select_edge":
        st.session_state["selected_edge"] = data.get("target_id")
        st.session_state.pop("selected_node", None)
    elif action == "select_node":
        st.session_state["selected_node"] = data.get("target_id")
        st.session_state.pop("selected_edge", None)
    return None


def _on_graph_change() -> None:
    if st.session_state.get("graph_cluster") == QUERY_VIEW:
        cid = QUERY_VIEW
        state = st.session_state["graph_state"]
    else:
        selected = common.selected_cluster()
        if selected is None:
            return
        cid, state = selected, _state(selected)
    message = apply_event(state, st.session_state.get(_graph_key(cid, state)))
    if message:
        st.session_state["graph_message"] = message


def _header(cluster: dict[str, Any]) -> None:
    st.title(f"Cluster {cluster['cluster_id']}")
    cols = st.columns(6)
    cols[0].metric("Score", f"{cluster['score']:.2f}", "flagged" if cluster["flagged"] else None)
    tokens = cluster["input_tokens"] + cluster["output_tokens"]
    cols[1].metric("Accounts", fmt.short_number(cluster["size"]), help=f"{cluster['size']:,}")
    cols[2].metric("Exchanges", fmt.short_number(cluster["exchanges"]), help=f"{cluster['exchanges']:,}")
    cols[3].metric("Tokens", fmt.short_number(tokens), help=f"{tokens:,}")
    cols[4].metric("Active days", triage.span_days(cluster["first_seen"], cluster["last_seen"]))
    cols[5].metric("Status", cluster["status"])
    if cluster["retired"] or cluster["status"] == "merged":
        st.warning(f"This cluster is {'merged' if cluster['status'] == 'merged' else 'retired'}; "
                   f"its accounts are now in {cluster['superseded_by'] or 'no current cluster'}.")
    op = cluster["attributed_name"] or "—"
    sug = f"{cluster['suggested_name']} ({cluster['suggestion_confidence']:.2f})" if cluster["suggested_operator"] else "—"
    st.markdown(f"**Attributed to:** {op} &nbsp; · &nbsp; **Suggested:** {sug} &nbsp; · &nbsp; "
                f"**Capabilities:** {triage.capability_text(cluster['capability_profile'], 5) or '—'}")
    if cluster["indicators"]:
        with st.expander("Indicators and their contributions to the score"):
            st.dataframe(cluster["indicators"], hide_index=True)


def _expand(state: canvas.GraphState, node_ids: list[str]) -> str:
    """Expand nodes by the relationship kind chosen beside the canvas (a node that has no
    such relationship by its first kind); the expanded node becomes the selection."""
    cap = int(common.settings()["ui_degree_cap"])
    chosen = st.session_state.get("expand_kind")
    done = []
    for nid in node_ids:
        kinds = canvas.expand_kinds(nid)
        if not kinds:
            done.append(f"{nid} cannot be expanded (a summary, not a stored value)")
            continue
        kind = chosen if chosen in kinds else kinds[0]
        added = canvas.expand(state, common.store(), nid, degree_cap=cap, kind=None if kind == "members" else kind)
        done.append(f"expanded {nid} by {kind}: {added} new nodes")
        st.session_state["selected_node"] = nid
        st.session_state.pop("selected_edge", None)
    return "; ".join(done)


def _selection_label(state: canvas.GraphState, nid: str) -> str:
    d = state.nodes.get(nid, {})
    return f"{d.get('name', nid)} [{d.get('kind', '?')}]"


def _pick_node() -> None:
    st.session_state["selected_node"] = st.session_state.get("node_pick")
    st.session_state.pop("selected_edge", None)


def _node_picker(state: canvas.GraphState) -> None:
    """The canvas selection as a picker (the selection first, then the most shared values):
    it follows a click on the canvas, and picking in it selects on the canvas."""
    selected = st.session_state.get("selected_node")
    options = canvas.pick_order(state, selected)
    if selected in state.nodes and st.session_state.get("node_pick") != selected:
        st.session_state["node_pick"] = selected
    elif st.session_state.get("node_pick") not in state.nodes:
        st.session_state.pop("node_pick", None)
    # Streamlit warns when a widget gets both a default and a value set in the session.
    default: dict[str, Any] = {} if "node_pick" in st.session_state else {"index": None}
    st.selectbox("Selected node", options, key="node_pick", on_change=_pick_node, **default,
                 format_func=lambda n: _selection_label(state, n), placeholder="Click a node on the canvas, or pick one")


def _link_picker(state: canvas.GraphState, node: str) -> None:
    """The selected node's links and uses, the strongest links first; picking one shows its
    evidence."""
    edges = canvas.edges_of(state, node)
    if not edges:
        return
    labels = {e: canvas.edge_caption(state, e) for e in edges}
    e1, e2 = st.columns([5, 1])
    link = e1.selectbox("Its links and uses", edges, format_func=lambda i: labels[i], key=f"link_pick-{node}")
    if e2.button("Evidence", key="btn_evidence"):
        st.session_state["selected_edge"] = link


def _graph_controls(state: canvas.GraphState) -> None:
    """The canvas selection and what to do with it (expand by one kind, collapse, remove),
    and what the view holds back."""
    cap = int(common.settings()["ui_degree_cap"])
    _node_picker(state)
    node = st.session_state.get("selected_node")
    if node in state.nodes:
        kinds = canvas.expand_kinds(node)
        c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
        if kinds:
            if st.session_state.get("expand_kind") not in kinds:  # the kind chosen for another node
                st.session_state["expand_kind"] = kinds[0]
            c1.selectbox("Expand by", kinds, key="expand_kind",
                         help="Double-click a node to expand it by this kind; one relationship kind at a time.")
        else:
            c1.caption("A summary node: nothing stored to expand.")
        if c2.button("Expand", key="btn_expand", disabled=not kinds):
            st.session_state["graph_message"] = _expand(state, [node])
            st.rerun()
        if c3.button("Collapse", key="btn_collapse"):
            st.session_state["graph_message"] = f"collapsed {node}: {canvas.collapse(state, node)} nodes hidden"
            st.rerun()
        if c4.button("Remove", key="btn_remove"):
            canvas.remove(state, [node])
            st.session_state.pop("selected_node", None)
            st.rerun()
        _link_picker(state, node)
    else:
        st.caption("Click a node on the canvas (or pick one above) to select it; double-click to expand it.")
    if state.hubs:
        st.caption(f"{len(state.hubs)} hub values held back (more than {cap} connections; no evidence on their own)")
        st.dataframe([{"hub": h, "connections": d} for h, d in sorted(state.hubs.items(), key=lambda kv: -kv[1])], hide_index=True, height=150)
    if state.hidden_links:
        st.caption(f"{state.hidden_links:,} weaker links hidden (each account shows its "
                   f"{int(common.settings()['evidence_links_per_account'])} strongest); any pair's evidence is under 'Why are two accounts linked?'.")
    if state.truncated:
        st.caption("Some expansions were cut at the neighbour limit.")


def _view_filter(state: canvas.GraphState, view_id: str) -> canvas.ViewFilter:
    """The link-weight and time-window filters above the canvas."""
    low, high = canvas.weight_range(state)
    c1, c2 = st.columns(2)
    weight = c1.slider("Minimum link weight", 0.0, 1.0, 0.0, 0.01, key=f"min_weight-{view_id}",
                       help=f"Links on view weigh {low:.2f}–{high:.2f}; weaker links are hidden.")
    span = canvas.time_span(state)
    window = None
    if span and span[0] < span[1]:
        first, last = date.fromisoformat(span[0]), date.fromisoformat(span[1])
        picked = c2.slider("Time window", first, last, (first, last), key=f"window-{view_id}",
                           help="Values and uses seen only outside the window are hidden.")
        if tuple(picked) != (first, last):
            window = (picked[0].isoformat(), picked[1].isoformat())
    return canvas.ViewFilter(min_weight=float(weight), window=window)


# The evidence panel shows this much at first; the rest is one "show more" away.
TOP_REASONS = 5
TOP_SHARED = 5
TOP_EXAMPLES = 2
REASON_COLUMNS = ["kind", "entity", "accounts", "weight", "family"]
SHARED_COLUMNS = ["label", "value", "accounts_using", "a_count", "b_count", "first_seen", "last_seen", "hub"]


def _top_and_rest(items: list[Any], top: int, show: Any, more_label: str) -> None:
    """The first ``top`` items shown, the rest behind an expander that says how many."""
    show(items[:top], "top")
    if len(items) > top:
        with st.expander(f"Show {len(items) - top} more {more_label}"):
            show(items[top:], "rest")


def _show_pair(ev: dict[str, Any]) -> None:
    """One pair's evidence, the strongest first: whether the detector linked them (and why),
    the values they share, example prompts, and the source rows behind each value."""
    st.markdown(f"**{ev['a']} ↔ {ev['b']}**")
    verdict = ev.get("verdict") or evidence.pair_verdict(ev)
    {"direct": st.success, "shared": st.info}.get(verdict["case"], st.warning)(verdict["text"])
    link = ev["link"]
    key = f"{ev['a']}-{ev['b']}"
    if link:
        st.markdown(f"Link weight **{float(link.get('weight') or 0):.2f}**, families: {', '.join(link['families']) or '—'}")
        rows = evidence.reason_rows(link["reasons"])
        order = [c for c in REASON_COLUMNS if any(c in r for r in rows)] + sorted({k for r in rows for k in r} - set(REASON_COLUMNS))
        widths = {"kind": st.column_config.TextColumn("kind", width=130), "accounts": st.column_config.NumberColumn("accounts", width=70),
                  "weight": st.column_config.NumberColumn("weight", format="%.2f", width=60)}
        _top_and_rest(rows, TOP_REASONS, lambda part, tag: links.dataframe(part, key=f"reasons-{tag}-{key}", column_order=order,
                                                                          column_config=widths, link_widths={"entity": 200}), "reasons")
    if ev["shared"]:
        st.markdown(f"**Shared infrastructure** ({len(ev['shared'])} values, strongest first)")
        _top_and_rest(ev["shared"], TOP_SHARED,
                      lambda part, tag: links.dataframe(part, value_kind_column="label", key=f"shared-{tag}-{key}", column_order=SHARED_COLUMNS,
                                                        column_config={"label": st.column_config.TextColumn("label", width=110),
                                                                       "accounts_using": st.column_config.NumberColumn("accounts", width=70)},
                                                        link_widths={"value": 190}),
                      "shared values")
    else:
        st.markdown("**Shared infrastructure**")
        st.caption("No shared infrastructure value.")
    examples = list(ev["examples"].items())
    if examples:
        def show_examples(part: list[tuple[str, str]], _tag: str) -> None:
            for tid, text in part:
                st.markdown(f"Example prompt of template `{tid}`")
                st.code(text[:800], language=None, wrap_lines=True)

        _top_and_rest(examples, TOP_EXAMPLES, show_examples, "example prompts")
    sources = ev["source_rows"]
    if sources:
        total = sum(len(r) for r in sources.values())
        with st.expander(f"Source rows behind these values ({len(sources)} values, {total:,} rows)"):
            names = list(sources)
            pick = st.selectbox("Value", names, format_func=lambda k: f"{k} ({len(sources[k])} rows)", key=f"src-{key}")
            links.dataframe(sources[str(pick)], key=f"src-rows-{key}")


def _node_evidence(state: canvas.GraphState, node: str) -> None:
    """One node: its properties, relationship counts, the pivot to every account behind it and,
    for an account, its activity."""
    ws = common.workspace()
    data = state.nodes[node]
    if data["label"] in (canvas.GROUP_LABEL, canvas.MEMBER_GROUP_LABEL):
        accts = state.groups.get(data["key"], [])
        st.markdown(f"**{data['name']}**: double-click the group to open it.")
        links.dataframe([{"account_id": a} for a in accts], height=200, key="group_members")
        return
    if data["kind"] in canvas.SYNTHETIC_LABELS:
        st.markdown(f"**{data['name']}**")
        st.json(data.get("props", {}), expanded=1)
        return
    ref = canvas.parse_node_id(node)
    details = evidence.node_details(common.store(), ref)
    st.markdown(f"**{details.get('label')} {details.get('key')}**")
    if data.get("members"):
        overall = f" ({data['accounts']:,} accounts overall)" if data.get("accounts") is not None else ""
        span = f", seen {str(data['first_seen'])[:10]} – {str(data.get('last_seen') or data['first_seen'])[:10]}" if data.get("first_seen") else ""
        st.caption(f"Used by {data['members']:,} members of this cluster{overall}{span}.")
    target = search.entity_pivot(ref[0], ref[1])
    if target:
        links.page_link(*target, label=("All values this account uses" if target[0] == "account"
                                        else f"Every account using this {search.KINDS[target[0]].title}"))
    relationships = details.get("relationships", {})
    if relationships:
        st.caption("Relationships: " + " · ".join(f"{kind} {count:,}" for kind, count in relationships.items()))
    # The raw properties are for checking a detail: folded, so the evidence stays in view.
    with st.expander(f"Properties ({len(details.get('properties', {}))})"):
        st.json(details.get("properties", {}), expanded=True)
    if data["kind"] == Label.ACCOUNT:
        series = timeline.cluster_timeline(ws, [data["key"]], "day", "model")
        if series:
            st.caption("Exchanges per day by model")
            frame = pd.DataFrame(series)
            frame["t"] = pd.to_datetime(frame["t"], utc=True)
            st.line_chart(frame.pivot_table(index="t", columns="group", values="exchanges", aggfunc="sum"))


def _edge_panel(state: canvas.GraphState, edge: str) -> None:
    """A selected edge: a stored relationship's evidence (a link's pair evidence, a use's
    source rows); a group's or a summary's edge, what it aggregates."""
    if not canvas.is_store_edge(state, edge):
        d = state.edges[edge]
        names = [state.nodes.get(n, {}).get("name", n) for n in (d["source"], d["target"])]
        st.markdown(f"**{names[0]} —{d['label']}→ {names[1]}**")
        st.json({k: v for k, v in d.items() if k not in ("id", "source", "target", "group_edge")})
        if d.get("group_edge"):
            st.caption("A group's edge: how many of its accounts have this relationship; open the group to see each.")
        return
    ev = canvas.edge_evidence(common.store(), common.workspace(), edge, hub_cap=int(common.settings()["hub_max_accounts"]))
    if ev["kind"] == "pair":
        _show_pair(ev)
        return
    st.markdown(f"**{ev['start'][0]} {ev['start'][1]} —{ev['type']}→ {ev['end'][0]} {ev['end'][1]}**")
    st.json(ev["properties"])
    if ev["source_rows"]:
        links.dataframe(ev["source_rows"], key="edge_source_rows")
    else:
        st.caption("No staged source rows for this relationship.")


def _pair_pickers(state: canvas.GraphState, members: list[str]) -> None:
    """Two accounts to compare, from the canvas selection: A is the selected account (or the
    selected link's ends, or the selected group's accounts, or the accounts on view); B is
    offered the accounts A is linked to or shares a value with, strongest first."""
    node, edge = st.session_state.get("selected_node"), st.session_state.get("selected_edge")
    picked = canvas.selected_accounts(state, node, edge)
    if not picked and node in state.nodes and state.nodes[node]["kind"] in (canvas.GROUP_LABEL, canvas.MEMBER_GROUP_LABEL):
        picked = list(state.groups.get(state.nodes[node]["key"], []))
    on_view = sorted(d["key"] for d in state.nodes.values() if d.get("kind") == Label.ACCOUNT and d["key"] in set(members))
    first = picked or on_view
    if not first:
        st.caption("Select an account, a link or a group on the canvas to compare two accounts.")
        return
    token = f"{node}|{edge}"
    a = st.selectbox("Account A", first, key=f"pair_a-{token}")
    others = canvas.pair_candidates(state, str(a))
    if len(picked) == 2 and picked[0] == a:
        others = [picked[1], *[o for o in others if o != picked[1]]]
    if not others:
        st.caption(f"{a} is linked to no account on view and shares no value drawn.")
        return
    b = st.selectbox("Account B (linked or sharing a value with A, strongest first)", others, key=f"pair_b-{token}-{a}")
    if st.button("Show evidence", key="btn_pair"):
        st.session_state["pair_shown"] = (a, b)
    shown = st.session_state.get("pair_shown")
    if shown and shown[0] in members and shown[1] in members:
        _show_pair(evidence.pair_evidence(common.store(), common.workspace(), shown[0], shown[1],
                                          hub_cap=int(common.settings()["hub_max_accounts"])))


def _evidence(state: canvas.GraphState, members: list[str]) -> None:
    st.subheader("Evidence")
    edge = st.session_state.get("selected_edge")
    node = st.session_state.get("selected_node")
    if edge and edge in state.edges:
        _edge_panel(state, edge)
    elif node and node in state.nodes:
        _node_evidence(state, node)
    else:
        st.caption("Click a node or a link on the canvas to see its evidence.")
    with st.expander("Why are two accounts linked?", expanded=bool(canvas.selected_accounts(state, node, edge))):
        _pair_pickers(state, members)


def _timeline(members: list[str]) -> None:
    ws = common.workspace()
    c1, c2 = st.columns(2)
    bucket = c1.radio("Bucket", ["day", "hour"], horizontal=True, key="tl_bucket")
    by = c2.radio("Group by", ["model", "capability", "account_id"], horizontal=True, key="tl_by")
    series = timeline.cluster_timeline(ws, members, str(bucket), str(by))
    if not series:
        st.info("No staged exchanges for these accounts (load a bundle with an exchanges table).")
        return
    frame = pd.DataFrame(series)
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    if by == "account_id" and frame["group"].nunique() > 25:
        st.caption("Showing the 25 busiest accounts.")
        top = frame.groupby("group")["exchanges"].sum().nlargest(25).index
        frame = frame[frame["group"].isin(top)]
    pivot = frame.pivot_table(index="t", columns="group", values="exchanges", aggfunc="sum").fillna(0)
    # Quiet buckets are absent from the aggregate; put them back as zeros so gaps show as gaps.
    full = pd.date_range(pivot.index.min(), pivot.index.max(), freq="D" if bucket == "day" else "h")
    st.line_chart(pivot.reindex(full, fill_value=0))
    left, right = st.columns(2)
    with left:
        st.markdown("**Bursts** (buckets above 3× the median)")
        st.dataframe(timeline.bursts(series), hide_index=True)
        if by == "model":
            st.markdown("**Model switches** (first bucket each model appears)")
            st.dataframe(timeline.model_switches(series), hide_index=True)
    with right:
        st.markdown("**Onsets** (first activity per account)")
        links.dataframe(timeline.onsets(ws, members), height=300, key="onsets")


def _graph_widget(view_id: str, state: canvas.GraphState) -> None:
    """The canvas, full width (click selects, double-click expands), its filters above it
    and the selection's controls below it."""
    view = _view_filter(state, view_id)
    data = canvas.canvas_data(state, view, selected=st.session_state.get("selected_node"))
    hidden = len(state.edges) - len(data["edges"])
    crowded = Counter(str(n["kind"]) for n in data["nodes"] if n["kind"] in data["hidden_kinds"])
    st.caption(f"{len(data['nodes']):,} nodes, {len(data['edges']):,} edges"
               + (f" ({hidden:,} hidden by the filters)" if hidden > 0 else "")
               + "".join(f"; {c:,} {KIND_NAMES.get(k, k)} nodes start hidden (click them in the legend to show them)" for k, c in crowded.items()))
    evidence_canvas(data, key=_graph_key(view_id, state), on_change=_on_graph_change)
    _graph_controls(state)


QUERY_VIEW = "query-result"


def _enter_query_view() -> bool:
    """Take over nodes handed over by the saved-queries page; True while showing them (until
    another cluster is opened)."""
    pending = st.session_state.pop("open_in_cluster_view", None)
    if pending:
        refs = [canvas.parse_node_id(n) for n in pending]
        st.session_state["graph_state"] = canvas.nodes_view(common.store(), refs)
        st.session_state["graph_cluster"] = QUERY_VIEW
        st.session_state["query_view_from"] = common.selected_cluster()
    if st.session_state.get("graph_cluster") != QUERY_VIEW:
        return False
    if st.session_state.get("query_view_from") != common.selected_cluster():
        st.session_state.pop("graph_cluster", None)
        st.session_state.pop("graph_state", None)
        return False
    return True


def _render_query_view() -> None:
    state: canvas.GraphState = st.session_state["graph_state"]
    st.title("Query result")
    st.caption(f"{len(state.nodes)} nodes from a saved query; expand, remove and inspect them as in a cluster.")
    if st.button("Back to the cluster", key="leave_query_view"):
        st.session_state.pop("graph_cluster", None)
        st.session_state.pop("graph_state", None)
        st.rerun()
    if st.session_state.get("graph_message"):
        st.caption(st.session_state["graph_message"])
    _graph_widget(QUERY_VIEW, state)
    accounts = sorted(d["key"] for d in state.nodes.values() if d.get("kind") == Label.ACCOUNT)
    _evidence(state, accounts)


def render() -> None:
    if _enter_query_view():
        _render_query_view()
        return
    cid = common.selected_cluster()
    store = common.store()
    clusters = {c["cluster_id"]: c for c in triage.load_clusters(store)}
    if not clusters:
        st.info("No clusters yet: run `sybilscope detect` first.")
        return
    if cid not in clusters:
        cid = max(clusters.values(), key=lambda c: c["score"])["cluster_id"]
        common.select_cluster(cid)
    cid = str(cid)
    cluster = clusters[cid]
    _header(cluster)
    common.show_flash()
    state = _state(cid)
    _sync_attribution(state, cluster)
    from graph.cases import members as cluster_members

    members = cluster_members(store, cid)
    graph_tab, timeline_tab, case_tab = st.tabs(["Graph & evidence", "Timeline", "Case & attribution"])
    with graph_tab:
        if st.session_state.get("graph_message"):
            st.caption(st.session_state["graph_message"])
        if state.groups:
            st.caption(f"{cluster['size']} accounts shown as {len(state.groups)} groups by the value they share; "
                       "double-click a group to open it.")
        _graph_widget(cid, state)
        _evidence(state, members)
    with timeline_tab:
        _timeline(members)
    with case_tab:
        case_panel.render(cluster, clusters, members)
