"""Search: what node an investigator's string names (account, IP, network, card BIN, payment
id, e-mail domain or hash, device, prompt text), found in the store, with how connected each is.

A string is taken as the kind it most likely is unless told; prompt text is searched in the
staged templates (the graph holds template ids, not their text).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from graph import staging
from graph.schema import Label, Rel
from graph.store import GraphStore, Node

SEARCH_KINDS = ("auto", "account", "ip", "network", "payment", "card_bin", "email_domain", "email_hash", "device", "prompt")


def guess_kind(text: str) -> str:
    """What a search string most likely is."""
    t = text.strip()
    if "/" in t:
        try:
            ipaddress.ip_network(t, strict=False)
            return "network"
        except ValueError:
            pass
    try:
        ipaddress.ip_address(t)
        return "ip"
    except ValueError:
        pass
    if t.isdigit() and 6 <= len(t) <= 8:
        return "card_bin"
    if "@" in t or ("." in t and " " not in t and not t.replace(".", "").isdigit()):
        return "email_domain"
    if " " in t:
        return "prompt"
    return "account"


def search(store: GraphStore, workspace: Path, text: str, kind: str = "auto", limit: int = 50) -> list[dict[str, Any]]:
    """Nodes matching ``text`` as the given kind, as rows {label, key, connections, detail}."""
    t = text.strip()
    if not t:
        return []
    kind = guess_kind(t) if kind == "auto" else kind
    found: list[Node] = []
    if kind == "account":
        node = store.get_node(Label.ACCOUNT, t)
        found = [node] if node else []
        if not found:
            found = store.find_nodes(Label.ACCOUNT, {"org_id": t}, limit=limit)
    elif kind == "ip":
        try:
            t = str(ipaddress.ip_address(t))
        except ValueError:
            return []
        node = store.get_node(Label.IP, t)
        found = [node] if node else []
    elif kind == "network":
        node = store.get_node(Label.NETWORK, t)
        found = [node] if node else []
        if not found:
            found = store.find_nodes(Label.NETWORK, {"provider": t}, limit=limit)
    elif kind == "payment":
        node = store.get_node(Label.PAYMENT_METHOD, t)
        found = [node] if node else []
    elif kind == "card_bin":
        found = store.find_nodes(Label.PAYMENT_METHOD, {"card_bin": t}, limit=limit)
    elif kind == "email_domain":
        domain = t.split("@")[-1].lower()
        node = store.get_node(Label.EMAIL_DOMAIN, domain)
        found = [node] if node else []
    elif kind == "email_hash":
        found = store.find_nodes(Label.ACCOUNT, {"email_hash": t}, limit=limit)
    elif kind == "device":
        node = store.get_node(Label.DEVICE, t)
        found = [node] if node else []
    elif kind == "prompt":
        return search_templates(store, workspace, t, limit)
    degrees = store.degrees([n.ref for n in found]) if found else {}
    return [{"label": n.label, "key": n.key, "connections": degrees.get(n.ref, 0), "detail": _detail(n)} for n in found]


def _detail(node: Node) -> str:
    """A node's scalar properties as one short line (the bulky JSON ones left out)."""
    keep = {k: v for k, v in node.props.items() if k not in {"reasons", "indicators", "capability_profile", "stability", "minhash"}}
    text = ", ".join(f"{k}={v}" for k, v in sorted(keep.items()))
    return text[:200]


def search_templates(store: GraphStore, workspace: Path, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Prompt templates whose normalised text or example contains ``text`` (case-insensitive),
    with how many accounts sent each."""
    path = staging.templates_path(workspace)
    if not path.exists():
        return []
    con = staging.connect(threads=staging.INTERACTIVE_THREADS)
    rows = con.execute(
        "SELECT template_id, template, capability FROM read_parquet($p) "
        "WHERE template ILIKE $q OR example ILIKE $q ORDER BY template_id LIMIT $n",
        {"p": str(path), "q": f"%{text}%", "n": limit},
    ).fetchall()
    con.close()
    refs = [(Label.PROMPT_TEMPLATE.value, str(r[0])) for r in rows]
    degrees = store.degrees(refs, [Rel.SENT_TEMPLATE]) if refs else {}
    return [
        {"label": Label.PROMPT_TEMPLATE.value, "key": str(tid), "connections": degrees.get((Label.PROMPT_TEMPLATE.value, str(tid)), 0), "detail": f"[{cap}] {str(tpl)[:160]}"}
        for tid, tpl, cap in rows
    ]
