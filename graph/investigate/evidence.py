"""Why accounts are linked: the detector's reasons, the infrastructure two accounts share, the
facts about one node, and all of it with its source rows for one pair or one relationship.

This is what an investigator checks before attributing a cluster, so every claim is given
with the raw facts behind it (shared values with counts and first/last seen, the staged rows)
rather than the detector's word alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graph.investigate.sources import SourceReader, source_rows, template_examples
from graph.props import loads
from graph.schema import INFRASTRUCTURE_RELS, Label, Rel
from graph.store import GraphStore, NodeKey

# Evidence wants every relationship of a node, and the store API takes a limit.
ALL = 10**9


def node_details(store: GraphStore, ref: NodeKey) -> dict[str, Any]:
    """A node's properties (JSON decoded) and its relationship counts by type."""
    node = store.get_node(*ref)
    if node is None:
        return {}
    sub = store.neighbours([ref], limit=ALL)
    counts = Counter(r.type for r in sub.relationships)
    props = {k: loads(v, v) if k in {"indicators", "capability_profile", "stability", "reasons"} else v for k, v in node.props.items()}
    return {"label": ref[0], "key": ref[1], "properties": props, "relationships": dict(sorted(counts.items()))}


def shared_entities(store: GraphStore, a: str, b: str, hub_cap: int | None = None) -> list[dict[str, Any]]:
    """Infrastructure both accounts use (the raw facts behind a link), with each side's
    relationship properties and how many accounts use the value overall."""
    types = [r.value for r in INFRASTRUCTURE_RELS]
    out = []
    # One store call for what both use (store.shared_values), not both neighbourhoods.
    for shared in store.shared_values((Label.ACCOUNT.value, a), (Label.ACCOUNT.value, b), types):
        pa, pb = shared.a_props, shared.b_props
        out.append(
            {
                "label": shared.ref[0], "value": shared.ref[1], "relationship": shared.type,
                "accounts_using": shared.degree,
                "hub": hub_cap is not None and shared.degree > hub_cap,
                "a_count": pa.get("count"), "b_count": pb.get("count"),
                "first_seen": min(str(x) for x in (pa.get("first_seen"), pb.get("first_seen")) if x) if (pa.get("first_seen") or pb.get("first_seen")) else "",
                "last_seen": max(str(x) for x in (pa.get("last_seen"), pb.get("last_seen")) if x) if (pa.get("last_seen") or pb.get("last_seen")) else "",
            }
        )
    return out


def link_reasons(store: GraphStore, a: str, b: str) -> dict[str, Any]:
    """The detector's LINKED edge between two accounts (either direction): weight, families
    and every reason it recorded; empty when the detector did not link them."""
    sub = store.subgraph([(Label.ACCOUNT.value, a), (Label.ACCOUNT.value, b)], [Rel.LINKED])
    for rel in sub.relationships:
        reasons = loads(rel.props.get("reasons"), [])
        return {
            "weight": rel.props.get("weight"),
            "families": list(rel.props.get("families") or []),
            "reasons": reasons if isinstance(reasons, list) else [reasons],
        }
    return {}


def reason_summary(reason: Any) -> str:
    """One reason as a short phrase: ``shared_ip IP:203.0.113.7 (4 accounts, w 0.60)``."""
    if not isinstance(reason, dict):
        return str(reason)
    entity = reason.get("entity")
    what = f"{entity.get('label')}:{entity.get('key')}" if isinstance(entity, dict) else str(reason.get("value", ""))
    extra = []
    if reason.get("accounts") is not None:
        extra.append(f"{reason['accounts']} accounts")
    if reason.get("weight") is not None:
        extra.append(f"w {float(reason['weight']):.2f}")
    kind = reason.get("kind") or reason.get("family") or "reason"
    return f"{kind} {what}" + (f" ({', '.join(extra)})" if extra else "")


def reason_rows(reasons: Iterable[Any]) -> list[dict[str, Any]]:
    """Reasons as flat table rows: the shared entity as ``Label:key``, nested details as JSON."""
    out = []
    for reason in reasons:
        if not isinstance(reason, dict):
            out.append({"reason": str(reason)})
            continue
        row: dict[str, Any] = {}
        for k, v in reason.items():
            if k == "entity" and isinstance(v, dict):
                row["entity"] = f"{v.get('label')}:{v.get('key')}"
            elif isinstance(v, dict | list):
                row[k] = json.dumps(v, default=str)[:300]
            else:
                row[k] = v
        out.append(row)
    return out


def _reason_weights(reasons: Iterable[Any]) -> dict[tuple[str, str], float]:
    """The strongest weight a reason gave each entity it names."""
    out: dict[tuple[str, str], float] = {}
    for reason in reasons:
        entity = reason.get("entity") if isinstance(reason, dict) else None
        if isinstance(entity, dict):
            ref = (str(entity.get("label")), str(entity.get("key")))
            out[ref] = max(out.get(ref, 0.0), float(reason.get("weight") or 0.0))
    return out


def strongest_reasons(reasons: Iterable[Any]) -> list[Any]:
    """The detector's reasons, the heaviest first."""
    return sorted(reasons, key=lambda r: -float(r.get("weight") or 0.0) if isinstance(r, dict) else 0.0)


def strongest_shared(shared: Iterable[dict[str, Any]], reasons: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """Shared values, the strongest evidence first: values the detector counted (by the weight
    it gave them), then the rarest (a card two accounts share says more than an IP fifty do);
    hubs, shared too widely to mean anything, last."""
    weights = _reason_weights(reasons)
    return sorted(shared, key=lambda s: (bool(s.get("hub")), -weights.get((s["label"], s["value"]), 0.0),
                                          int(s.get("accounts_using") or 0), s["label"], s["value"]))


def pair_evidence(store: GraphStore, workspace: Path, a: str, b: str, *, hub_cap: int | None = None, rows_per_value: int = 20) -> dict[str, Any]:
    """Everything that ties two accounts, the strongest first: the detector's reasons (heaviest
    first), the infrastructure they share (see ``strongest_shared``; with counts, first/last
    seen), example prompts of shared templates and the source rows behind each value (only
    values that have staged rows), and a ``verdict`` telling a direct link from shared values
    the detector did not link on."""
    link = link_reasons(store, a, b)
    if link:
        link["reasons"] = strongest_reasons(link["reasons"])
    shared = strongest_shared(shared_entities(store, a, b, hub_cap), link.get("reasons", []))
    values = [(s["label"], s["value"]) for s in shared]
    for reason in link.get("reasons", []):
        entity = reason.get("entity") if isinstance(reason, dict) else None
        if isinstance(entity, dict) and (entity.get("label"), entity.get("key")) not in values:
            values.append((str(entity.get("label")), str(entity.get("key"))))
    templates = [v for lab, v in values if lab == Label.PROMPT_TEMPLATE]
    reader = SourceReader(workspace, [a, b])
    try:
        found = {f"{lab}:{v}": reader.rows(lab, v, rows_per_value) for lab, v in values}
    finally:
        reader.close()
    examples = template_examples(workspace, templates)
    ev = {
        "a": a,
        "b": b,
        "link": link,
        "shared": shared,
        "examples": {t: examples[t] for t in templates if examples.get(t)},
        "source_rows": {k: rows for k, rows in found.items() if rows},
    }
    ev["verdict"] = pair_verdict(ev)
    return ev


def _short_keys(text: str, width: int = 28) -> str:
    """Long hashes in a sentence cut to their first characters (the tables keep them whole)."""
    return " ".join(w if len(w) <= width else w[: width - 12] + "…" for w in text.split(" "))


def pair_verdict(ev: dict[str, Any]) -> dict[str, Any]:
    """Which of three cases a pair is, in words: ``direct`` (the detector linked the two, with
    its weight and strongest reason), ``shared`` (no direct link, but these values are common
    to both: the tie, if any, runs through other accounts or was too weak to keep) or ``none``."""
    a, b, link, shared = ev["a"], ev["b"], ev["link"], ev["shared"]
    if link:
        reasons = link.get("reasons") or []
        top = f"; the strongest: {_short_keys(reason_summary(reasons[0]))}" if reasons else ""
        families = ", ".join(link.get("families") or []) or "no family recorded"
        text = (f"The detector linked {a} and {b} directly, weight {float(link.get('weight') or 0):.2f} "
                f"({families}), for {len(reasons)} reason{'' if len(reasons) == 1 else 's'}{top}.")
        return {"case": "direct", "text": text}
    if shared:
        counted = [s for s in shared if not s.get("hub")]
        listed = ", ".join(_short_keys(f"{s['label']} {s['value']}") for s in (counted or shared)[:3])
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        hubs = len(shared) - len(counted)
        hub_note = f" {hubs} of them {'is a hub' if hubs == 1 else 'are hubs'}, shared too widely to count as evidence." if hubs else ""
        text = (f"The detector did not link {a} and {b} directly, but they share {len(shared)} "
                f"value{'' if len(shared) == 1 else 's'}: {listed}{more}.{hub_note} Any tie between them "
                "runs through other accounts, or was too weak to keep as a link.")
        return {"case": "shared", "text": text}
    return {"case": "none", "text": f"No direct link and no shared value between {a} and {b}: "
            "if they are connected at all, it is only through other accounts (try the path search)."}


def relationship_evidence(
    store: GraphStore, workspace: Path, start: NodeKey, rel_type: str, end: NodeKey, *, hub_cap: int | None = None
) -> dict[str, Any]:
    """Evidence for one relationship: a LINKED pair gives the pair's evidence (``kind``
    ``pair``); an account-to-entity relationship gives its properties and the source rows
    of that use (``kind`` ``relationship``)."""
    if rel_type == Rel.LINKED:
        return {"kind": "pair", **pair_evidence(store, workspace, start[1], end[1], hub_cap=hub_cap)}
    sub = store.subgraph([start, end])
    rels = [r.props for r in sub.relationships if r.type == rel_type]
    acct, other = (start, end) if start[0] == Label.ACCOUNT else (end, start)
    rows = source_rows(workspace, [acct[1]], other[0], other[1]) if acct[0] == Label.ACCOUNT else []
    return {"kind": "relationship", "type": rel_type, "start": start, "end": end, "properties": rels[0] if rels else {}, "source_rows": rows}
