"""The Streamlit pages, run headless with streamlit.testing.v1.AppTest on the embedded store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from graph import cases
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from tests.worlds.ui import build_world

APP = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedStore:
    store = EmbeddedStore(embedded_dir(tmp_path))
    build_world(store, tmp_path, ring=4)
    monkeypatch.setenv("SYBILSCOPE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("SYBILSCOPE_STORE", "embedded")
    monkeypatch.delenv("SYBILSCOPE_UI_USERS_FILE", raising=False)
    monkeypatch.delenv("SYBILSCOPE_UI_IDENTITY_HEADER", raising=False)
    return store


def _run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def _open_cluster(at: AppTest, cluster_id: str) -> AppTest:
    if cluster_id not in at.selectbox(key="triage_pick").options:
        at.sidebar.toggle(key="f_flagged").set_value(False)  # the queue opens on flagged clusters only
        _run(at)
    at.selectbox(key="triage_pick").set_value(cluster_id)
    at.button(key="open_cluster").click()
    return _run(at)


def test_triage_lists_clusters_ranked_and_says_single_user(world: EmbeddedStore) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=60))
    assert at.title[0].value == "Triage"
    # The queue opens on the flagged clusters; the toggle shows the rest, flagged still first.
    assert at.selectbox(key="triage_pick").options == ["c-ring"]
    assert any("Flagged only" in c.value for c in at.caption)
    at.sidebar.toggle(key="f_flagged").set_value(False)
    _run(at)
    assert at.selectbox(key="triage_pick").options == ["c-ring", "c-benign"]
    assert any("Single-user mode" in c.value for c in at.sidebar.caption)
    at.sidebar.slider(key="f_score").set_value(0.5)
    _run(at)
    assert at.selectbox(key="triage_pick").options == ["c-ring"]


def test_open_cluster_expand_and_evidence(world: EmbeddedStore) -> None:
    at = _open_cluster(_run(AppTest.from_file(APP, default_timeout=60)), "c-ring")
    assert at.title[0].value == "Cluster c-ring"
    nodes = at.selectbox(key="node_pick").options
    # The canvas opens on the evidence graph: the members and the values they share, not the students.
    assert any("r000" in n for n in nodes) and any("203.0.113.7" in n for n in nodes) and any("100.64.0.1" in n for n in nodes)
    assert not any("s1" in n for n in nodes)
    at.selectbox(key="node_pick").set_value("IP|100.64.0.1")
    _run(at)
    assert at.session_state["selected_node"] == "IP|100.64.0.1"
    assert at.selectbox(key="expand_kind").options == ["USED_IP", "IN_NETWORK"]
    at.selectbox(key="expand_kind").set_value("USED_IP")
    at.button(key="btn_expand").click()
    _run(at)
    assert {"s1 [Account]", "s2 [Account]"} <= set(at.selectbox(key="node_pick").options)
    assert "expanded IP|100.64.0.1 by USED_IP: 2 new nodes" in " ".join(c.value for c in at.caption)
    at.selectbox(key="node_pick").set_value("Account|r000")
    _run(at)
    at.selectbox(key="link_pick-Account|r000").set_value("Account|r000>LINKED>Account|r001")
    at.button(key="btn_evidence").click()
    _run(at)
    text = " ".join(m.value for m in at.markdown)
    assert "r000 ↔ r001" in text and "Link weight **0.90**" in text
    assert any("linked r000 and r001 directly" in m.value for m in at.success)
    [sources] = [e for e in at.expander if e.label.startswith("Source rows behind these values")]
    assert sources.selectbox[0].options[0].startswith("PaymentMethod:pm-ring")  # the heaviest reason first


def test_attribute_from_the_case_panel_reaches_the_audit_trail(world: EmbeddedStore) -> None:
    at = _open_cluster(_run(AppTest.from_file(APP, default_timeout=60)), "c-ring")
    at.text_input(key="attr_new_name").input("Acme Distill")
    at.slider(key="attr_confidence").set_value(0.85)
    at.text_area(key="attr_rationale").input("Shared card pm-ring and the CoT template across all members")
    at.button[[b.label for b in at.button].index("Attribute")].click()
    _run(at)
    rels = [r for r in world.iter_relationships(Rel.ATTRIBUTED_TO)]
    assert [(r.start[1], r.end[1]) for r in rels] == [("c-ring", "op-acme-distill")]
    assert rels[0].props["confidence"] == pytest.approx(0.85)
    [event] = cases.audit_trail(world)
    assert event.action == "attribute" and event.who  # the single-user name
    # The audit page, opened fresh (as after a reload), lists the event.
    audit = _run(AppTest.from_function(_audit_page, default_timeout=60))
    assert audit.title[0].value == "Audit trail"
    assert "attribute" in audit.selectbox(key="audit_action").options
    assert audit.dataframe[0].value["changes"].str.contains("operator_id: op-acme-distill").any()
    # names and targets are Markdown-escaped in the label (they are shown literally)
    assert [x.label for x in audit.expander][0].replace("\\", "").endswith("attribute · Cluster:c-ring")


def _audit_page() -> None:
    from app.views import audit

    audit.render()


def test_status_change_and_bad_attribution_error(world: EmbeddedStore) -> None:
    at = _open_cluster(_run(AppTest.from_file(APP, default_timeout=60)), "c-benign")
    at.selectbox(key="status_new").set_value("in_progress")
    at.button(key="status_apply").click()
    _run(at)
    node = world.get_node(Label.CLUSTER, "c-benign")
    assert node is not None and node.props["status"] == "in_progress"
    at.text_area(key="attr_rationale").input("no name given")
    at.button[[b.label for b in at.button].index("Attribute")].click()
    _run(at)
    assert any("name an existing operator" in e.value for e in at.error)


def _search_page() -> None:
    from app.views import search

    search.render()


def _table(at: AppTest, *columns: str) -> object:
    """The first dataframe on the page with these columns (AppTest keeps no dataframe keys)."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}")


def _unlinked(values: object) -> list[str]:
    """Table cells that are pivot or cluster links, as the values they show."""
    return [str(v).split("=", 1)[1].split(":", 1)[-1] if "?" in str(v) else str(v) for v in values]  # type: ignore[attr-defined]


def test_search_page_pivots_from_a_bin_to_its_accounts_and_finds_paths(world: EmbeddedStore) -> None:
    at = _run(AppTest.from_function(_search_page, default_timeout=60))
    at.text_input(key="search_text").input("411111")
    at.button[0].click()  # the form's Search button
    _run(at)
    assert any("as card BIN (guessed from the value)" in c.value for c in at.caption)
    accounts: Any = _table(at, "account_id", "cluster", "uses")
    assert sorted(_unlinked(accounts["account_id"])) == ["r000", "r001", "r002", "r003"]
    assert accounts["account_id"][0] == "search?pivot=account:r000" and set(_unlinked(accounts["cluster"])) == {"c-ring"}
    at.text_input(key="path_a").input("r000")
    at.text_input(key="path_b").input("r003")
    at.button(key="path_go").click()
    _run(at)
    assert at.success[0].value == "2 hops: r000 → r003"
    at.text_input(key="path_b").input("ghost-9")
    at.button(key="path_go").click()
    _run(at)
    assert at.error[0].value.startswith("Unknown account 'ghost-9'")


def test_search_page_reads_a_pivot_link(world: EmbeddedStore) -> None:
    at = AppTest.from_function(_search_page, default_timeout=60)
    at.query_params["pivot"] = "payment:pm-ring"
    _run(at)
    assert at.text_input(key="search_text").value == "pm-ring" and at.selectbox(key="search_kind").value == "auto"
    assert any("as payment id (as asked)" in c.value for c in at.caption)
    assert len(_table(at, "account_id", "cluster", "uses")) == 4
    at.query_params["pivot"] = "account:r001"
    _run(at)
    values: Any = _table(at, "value", "accounts_using")
    assert "search?pivot=ip:203.0.113.7" in list(values["value"])
    at.query_params["pivot"] = "nonsense"
    _run(at)
    assert any("names no value to pivot from" in w.value for w in at.warning)


def test_users_file_requires_sign_in(world: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.auth import hash_password

    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  alice: \"{hash_password('s3cret')}\"\n")
    monkeypatch.setenv("SYBILSCOPE_UI_USERS_FILE", str(users))
    at = _run(AppTest.from_file(APP, default_timeout=60))
    assert at.title[0].value == "Sybilscope sign-in"
    at.text_input(key="login_name").input("alice")
    at.text_input(key="login_password").input("wrong")
    at.button[0].click()
    _run(at)
    assert at.error and at.title[0].value == "Sybilscope sign-in"
    at.text_input(key="login_password").input("s3cret")
    at.button[0].click()
    _run(at)
    assert at.title[0].value == "Triage"
    assert any("alice" in c.value for c in at.sidebar.caption)


def test_identity_header_mode_and_missing_header(world: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYBILSCOPE_UI_IDENTITY_HEADER", "X-Forwarded-User")
    at = _run(AppTest.from_file(APP, default_timeout=60))
    # AppTest sends no proxy header, so the app refuses instead of guessing a name.
    assert any("X-Forwarded-User" in e.value for e in at.error)
    assert not at.title


def test_password_hashing_and_header_lookup(tmp_path: Path) -> None:
    from app import auth

    stored = auth.hash_password("pw")
    assert stored.startswith("scrypt$") and stored != auth.hash_password("pw")
    assert auth.verify_password("pw", stored) and not auth.verify_password("px", stored)
    assert not auth.verify_password("pw", "garbage")
    assert auth.identity_from_headers({"x-forwarded-user": " dana "}, "X-Forwarded-User") == "dana"
    assert auth.identity_from_headers({"other": "x"}, "X-Forwarded-User") is None
    listed = tmp_path / "u.yaml"
    listed.write_text(f"users:\n  - name: erin\n    password_hash: \"{stored}\"\n")
    mode = auth.auth_mode(str(listed), "")
    assert mode.kind == "users" and auth.login(mode, "erin", "pw") and not auth.login(mode, "frank", "pw")
    assert auth.auth_mode("", "").kind == "single"


def test_ui_command_line_and_environment(tmp_path: Path) -> None:
    from app.commands.ui import app_environment, streamlit_command
    from graph.settings import Settings

    cmd = streamlit_command(8765)
    assert cmd[1:4] == ["-m", "app.ui_server", "run"] and cmd[4].endswith("app/main.py")
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    env = app_environment(Settings({"workspace": str(tmp_path), "store": "bolt://127.0.0.1:7999"}, environ={}), base={})
    assert env["SYBILSCOPE_WORKSPACE"] == str(tmp_path.resolve()) and env["SYBILSCOPE_STORE"] == "bolt://127.0.0.1:7999"


def test_graph_widget_events_expand_remove_select(world: EmbeddedStore) -> None:
    """The values the canvas sends back ({action, data, timestamp}) drive the view."""

    def page() -> None:
        import streamlit as st

        from app.views import cluster

        state = cluster._state("c-ring")
        events = [
            {"action": "select_node", "data": {"type": "tap", "target_id": "Account|r000", "target_group": "nodes"}, "timestamp": 1},
            {"action": "expand", "data": {"node_ids": ["Account|r000"]}, "timestamp": 2},
            {"action": "expand", "data": {"node_ids": ["Account|r000"]}, "timestamp": 2},  # a repeat is ignored
            {"action": "remove", "data": {"node_ids": ["PaymentMethod|pm-ring"]}, "timestamp": 3},
            {"action": "select_edge", "data": {"type": "tap", "target_id": "Account|r000>LINKED>Account|r001", "target_group": "edges"}, "timestamp": 4},
        ]
        st.session_state["messages"] = [cluster.apply_event(state, e) for e in events]
        st.session_state["nodes"] = sorted(state.nodes)

    at = _run(AppTest.from_function(page, default_timeout=60))
    messages = at.session_state["messages"]
    assert messages[0] is None and messages[1].startswith("expanded Account|r000") and messages[2] is None
    assert messages[3] == "removed 1 nodes"
    nodes = at.session_state["nodes"]
    assert "IP|203.0.113.7" in nodes and "PaymentMethod|pm-ring" not in nodes
    assert at.session_state["selected_edge"] == "Account|r000>LINKED>Account|r001"
    assert "selected_node" not in at.session_state


def test_query_result_opens_in_the_cluster_view_and_leaves_it(world: EmbeddedStore) -> None:
    at = _open_cluster(_run(AppTest.from_file(APP, default_timeout=60)), "c-ring")
    at.session_state["open_in_cluster_view"] = ["Account|r000", "Account|r001"]
    _run(at)
    assert at.title[0].value == "Query result"
    options = at.selectbox(key="node_pick").options
    assert sorted(options) == ["r000 [Account]", "r001 [Account]"]
    at.button(key="leave_query_view").click()
    _run(at)
    assert at.title[0].value == "Cluster c-ring"


def test_a_link_naming_another_cluster_opens_that_cluster(world: EmbeddedStore) -> None:
    """A cluster link (``?cluster=``, as ``st.page_link`` sends it) wins over the session's
    cluster, and the previous cluster's canvas selection goes with it."""
    at = _open_cluster(_run(AppTest.from_file(APP, default_timeout=60)), "c-ring")
    at.selectbox(key="node_pick").set_value("IP|100.64.0.1")
    _run(at)
    assert at.session_state["selected_node"] == "IP|100.64.0.1"
    at.query_params["cluster"] = "c-benign"
    _run(at)
    assert at.title[0].value == "Cluster c-benign"
    assert at.session_state["cluster_id"] == "c-benign" and "selected_node" not in at.session_state
    at.query_params.pop("cluster")  # no cluster in the address: the session's stays
    _run(at)
    assert at.title[0].value == "Cluster c-benign"
