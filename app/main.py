"""The Streamlit investigation app (``sybilscope ui``): sign-in, then the pages.

Run by ``streamlit run app/main.py`` with ``SYBILSCOPE_WORKSPACE`` / ``SYBILSCOPE_STORE`` set;
the store is opened once per server (``st.cache_resource``) and shared by every session.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

# ``streamlit run app/main.py`` puts app/ on sys.path, not the project root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from app import auth  # noqa: E402
from app.views import audit, cluster, common, export, queries, search, triage  # noqa: E402
from graph import cases  # noqa: E402


def _request_headers() -> list[tuple[str, str]]:
    """Every header of the request that opened this session, repeated ones included."""
    headers = st.context.headers
    return [(name, value) for name in headers for value in headers.get_all(name)]


def _client() -> str:
    """Who is asking, for throttling and the audit trail: the connection's address (Streamlit
    reports None for loopback). Forwarded-for headers are not used: a client can forge them."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "local"


def _identify() -> bool:
    """Set ``st.session_state.investigator``; False while a sign-in form or a refusal shows."""
    s = common.settings()
    try:
        mode = auth.mode_from_settings(s)
    except auth.AuthConfigError as exc:
        st.error(f"Sign-in is misconfigured, so the UI refuses to start: {exc}")
        return False
    st.session_state["auth_mode"] = mode.kind
    if mode.kind == "single":
        st.session_state["investigator"] = auth.single_user()
        return True
    if mode.kind == "header":
        headers = _request_headers()
        # Without the proxy's secret the identity header is the client's own claim.
        name = auth.identity_from_headers(headers, mode.header) if auth.proxy_vouches(headers, mode) else None
        if not name:
            st.session_state.pop("investigator", None)
            st.error("Refused: open Sybilscope through the authenticating proxy.")
            return False
        st.session_state["investigator"] = name
        return True
    if st.session_state.get("investigator"):
        return True
    _sign_in_form(mode)
    return False


def _sign_in_form(mode: auth.AuthMode) -> None:
    """The users-file sign-in: throttled per name and client, every failure audited."""
    st.title("Sybilscope sign-in")
    with st.form("login"):
        name = st.text_input("Investigator", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    client = _client()
    result = auth.sign_in(mode, auth.SignInThrottle.in_workspace(common.workspace()), name, password, client)
    if result.throttled:
        st.error(f"Too many failed sign-ins for this name or from this address; try again in {math.ceil(result.retry_after)} s.")
        return
    cases.record_sign_in(common.store(), name, ok=result.ok, known=result.known_user, client=client)
    if result.ok:
        st.session_state["investigator"] = name
        st.rerun()
    wait = f" Next attempt in {math.ceil(result.retry_after)} s." if result.retry_after > 0 else ""
    st.error("Unknown investigator or wrong password." + wait)


def main() -> None:
    # An emoji favicon is drawn in the page; a ":material/…:" one is fetched from fonts.gstatic.com.
    st.set_page_config(page_title="Sybilscope", page_icon="🕸️", layout="wide")
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
