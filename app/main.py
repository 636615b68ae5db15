"""The Streamlit investigation app (``sybilscope ui``): sign-in, then the pages.

Run by ``streamlit run app/main.py`` with ``SYBILSCOPE_WORKSPACE`` / ``SYBILSCOPE_STORE`` set;
the store is opened once per server (``st.cache_resource``) and shared by every session.
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``streamlit run app/main.py`` puts app/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from app import auth  # noqa: E402
from app.views import audit, cluster, common, export, queries, search, triage  # noqa: E402


def _identify() -> bool:
    """Set ``st.session_state.investigator``; False while a sign-in form is showing."""
    s = common.settings()
    try:
        mode = auth.auth_mode(str(s["ui_users_file"]), str(s["ui_identity_header"]))
    except (OSError, ValueError) as exc:
        st.error(f"Cannot read the users file: {exc}")
        return False
    st.session_state["auth_mode"] = mode.kind
    if mode.kind == "single":
        st.session_state["investigator"] = auth.single_user()
        return True
    if mode.kind == "header":
        name = auth.identity_from_headers(dict(st.context.headers), mode.header)
        if not name:
            st.error(f"No {mode.header} header on this request: open the UI through the authenticating proxy.")
            return False
        st.session_state["investigator"] = name
        return True
    if st.session_state.get("investigator"):
        return True
    st.title("Sybilscope sign-in")
    with st.form("login"):
        name = st.text_input("Investigator", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        if st.form_submit_button("Sign in"):
            if auth.login(mode, name, password):
                st.session_state["investigator"] = name
                st.rerun()
            st.error("Unknown investigator or wrong password.")
    return False


def main() -> None:
    st.set_page_config(page_title="Sybilscope", page_icon=":material/hub:", layout="wide")
    if not _identify():
        return
    pages = {
        "triage": st.Page(triage.render, title="Triage", icon=":material/checklist:", url_path="triage", default=True),
        "cluster": st.Page(cluster.render, title="Cluster", icon=":material/hub:", url_path="cluster"),
        "search": st.Page(search.render, title="Search & paths", icon=":material/search:", url_path="search"),
        "audit": st.Page(audit.render, title="Audit trail", icon=":material/history:", url_path="audit"),
        "queries": st.Page(queries.render, title="Saved queries", icon=":material/bookmark:", url_path="queries"),
        "export": st.Page(export.render, title="Export", icon=":material/download:", url_path="export"),
    }
    st.session_state["pages"] = pages
    with st.sidebar:
        mode = st.session_state.get("auth_mode")
        st.caption(f"Investigator: **{common.who()}**")
        if mode == "single":
            st.caption("Single-user mode (no users file or identity header configured).")
        s = common.settings()
        st.caption(f"Store: `{s['store']}` · workspace `{s.workspace}`")
    st.navigation(list(pages.values())).run()


main()
