"""Every value on a page is a link to its pivot on the search page (``search?pivot=kind:value``)
and every cluster id a link to its cluster page: in tables as link columns that show the value
itself, elsewhere as ``st.page_link`` buttons that keep the session."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import streamlit as st

from graph.investigate.search import KINDS, entity_pivot, pivot_link

# Table columns that hold a value of one kind, by their usual names.
COLUMN_KINDS: dict[str, str] = {
    "account_id": "account", "account": "account",
    "ip": "ip", "signup_ip": "ip", "network": "network", "cidr": "network",
    "payment_id": "payment", "card_bin": "card_bin", "device_id": "device",
    "client_fingerprint": "fingerprint", "fingerprint": "fingerprint",
    "email_domain": "email_domain", "domain": "email_domain", "email_hash": "email_hash", "org_id": "org",
    "template_id": "template",
}
# Columns holding a ``Label:key`` entity (reasons, path hops, audit targets).
ENTITY_COLUMNS = ("entity", "from", "to", "target")
CLUSTER_COLUMNS = ("cluster_id", "cluster", "superseded_by")
# A link cell shows what the capture group finds in its address: the value (after the kind,
# or with it for entity columns, where the kind is news).
_VALUE_TEXT = r"(?:pivot=[a-z_]+:|cluster=)(.*)$"
_ENTITY_TEXT = r"(?:pivot=|cluster=)(.*)$"


def cluster_link(cluster_id: str) -> str:
    """The cluster page's address for one cluster (the page reads ``?cluster=``)."""
    return f"cluster?cluster={quote(cluster_id, safe=':._-~')}"


def entity_link(text: str) -> str | None:
    """The link for a ``Label:key`` text (a cluster's page, or the entity's pivot)."""
    label, sep, key = str(text).partition(":")
    if not sep or not key:
        return None
    if label == "Cluster":
        return cluster_link(key)
    target = entity_pivot(label, key)
    return pivot_link(*target) if target else None


def linked_rows(
    rows: Sequence[Mapping[str, Any]],
    kinds: Mapping[str, str] | None = None,
    *,
    value_kind_column: str | None = None,
    value_column: str = "value",
    widths: Mapping[str, int | str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows with their value columns turned into links, and the column config that shows each
    link as its value. Columns are recognised by name (``COLUMN_KINDS``, entity and cluster
    columns) or given in ``kinds`` ({column: kind}); ``value_kind_column`` names a column
    holding each row's kind (or node label) for the ``value_column``."""
    kinds = {**COLUMN_KINDS, **(kinds or {})}
    out: list[dict[str, Any]] = []
    used: dict[str, str] = {}
    for row in rows:
        new = dict(row)
        for col, value in row.items():
            if value is None or value == "" or isinstance(value, list | dict | bool):
                continue
            text = str(value)
            link: str | None = None
            style = _VALUE_TEXT
            if col in CLUSTER_COLUMNS:
                link = cluster_link(text)
            elif col == value_column and value_kind_column:
                kind = str(row.get(value_kind_column) or "")
                target = (kind, text) if kind in KINDS else entity_pivot(kind, text)
                link = pivot_link(*target) if target else None
            elif col in kinds:
                link = pivot_link(kinds[col], text)
            elif col in ENTITY_COLUMNS:
                link, style = entity_link(text), _ENTITY_TEXT
            if link:
                new[col] = link
                used.setdefault(col, style)
        out.append(new)
    config = {col: st.column_config.LinkColumn(col, display_text=style, width=(widths or {}).get(col))  # type: ignore[arg-type]
              for col, style in used.items()}
    return out, config


def dataframe(rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str] | None = None, *,
              value_kind_column: str | None = None, value_column: str = "value",
              column_config: Mapping[str, Any] | None = None, link_widths: Mapping[str, int | str] | None = None,
              **kwargs: Any) -> Any:
    """``st.dataframe`` of ``rows`` with every value a link to its pivot (see ``linked_rows``);
    ``link_widths`` sizes link columns (``column_config`` would replace them)."""
    linked, config = linked_rows(rows, kinds, value_kind_column=value_kind_column, value_column=value_column,
                                 widths=link_widths)
    kwargs.setdefault("hide_index", True)
    return st.dataframe(linked, column_config={**config, **(column_config or {})}, **kwargs)


def page_link(kind: str, value: str, label: str | None = None, *, key_hint: str = "") -> None:
    """A button-like link to one value's pivot that stays in this tab (and session)."""
    pages = st.session_state.get("pages") or {}
    text = label or f"{KINDS[kind].title} {value}"
    if "search" in pages:
        st.page_link(pages["search"], label=text, icon=":material/search:", query_params={"pivot": f"{kind}:{value}"})
    else:
        st.markdown(f"[{text}]({pivot_link(kind, value)})")


def markdown_links(items: Iterable[tuple[str, str]]) -> str:
    """``[value](search?pivot=…)`` links for inline text, joined by commas."""
    return ", ".join(f"[{value}]({pivot_link(kind, value)})" for kind, value in items)


def cluster_page_link(cluster_id: str, label: str | None = None) -> None:
    """A link to a cluster's page that stays in this tab (and session)."""
    pages = st.session_state.get("pages") or {}
    text = label or f"Cluster {cluster_id}"
    if "cluster" in pages:
        st.page_link(pages["cluster"], label=text, icon=":material/hub:", query_params={"cluster": cluster_id})
    else:
        st.markdown(f"[{text}]({cluster_link(cluster_id)})")
