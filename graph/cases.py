"""Analyst decisions on clusters, each recorded in an audit trail others can review.

Every write here (attribute, confirm a suggestion, status change, merge, split, note) changes
the graph and appends one ``AuditEvent`` node ``{event_id, at, who, action, target, before,
after}`` with an ``ABOUT`` relationship to the node it concerns, inside one ``store.batch()``.
``before``/``after`` are JSON strings of the properties the action changed, so a reviewer can
see what was decided and what it replaced.

``store.batch()`` is one transaction on every store, so an action that fails midway (a refused
value, a lost connection) changes nothing: no half-moved members, no attribution without its
audit event. Actions that take relationships away (merge, split, re-attribution) delete just
those relationships; the cluster node, its notes and its audit links are never touched.

A merge or split refigures every cluster it touches with detection's own code
(graph/refigure.py): size, volumes, dates, score, indicators, flag, stability, bridges and
suggested operator are what a detection run would write for the new membership. Detection
keeps the decision on every later run (graph/decisions.py reads it back from these events).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from graph.props import now_iso
from graph.refigure import Changes, Refigure
from graph.schema import Label, Rel
from graph.settings import Settings
from graph.store import GraphStore, Node, NodeKey, Relationship

STATUSES = ("open", "in_progress", "confirmed", "dismissed", "merged")

# open -> in_progress -> confirmed/dismissed is the normal route; a decided case can be
# re-opened for more work (in_progress) rather than silently edited.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress"}),
    "in_progress": frozenset({"open", "confirmed", "dismissed"}),
    "confirmed": frozenset({"in_progress"}),
    "dismissed": frozenset({"in_progress"}),
    "merged": frozenset(),
}

_ALL_NODES_LIMIT = 10**9


class CaseError(ValueError):
    """An analyst action that cannot be applied (unknown cluster, forbidden transition, …)."""


@dataclass(frozen=True)
class AuditEvent:
    event_id: str
    at: str
    who: str
    action: str
    target: str
    before: dict[str, Any]
    after: dict[str, Any]

    @classmethod
    def from_node(cls, node: Node) -> AuditEvent:
        p = node.props
        return cls(
            event_id=node.key,
            at=str(p.get("at", "")),
            who=str(p.get("who", "")),
            action=str(p.get("action", "")),
            target=str(p.get("target", "")),
            before=_loads(p.get("before")),
            after=_loads(p.get("after")),
        )

    def row(self) -> dict[str, Any]:
        """A flat row for tables: before/after as compact JSON text."""
        return {
            "at": self.at,
            "who": self.who,
            "action": self.action,
            "target": self.target,
            "before": json.dumps(self.before, sort_keys=True),
            "after": json.dumps(self.after, sort_keys=True),
            "event_id": self.event_id,
        }


def target_text(ref: NodeKey) -> str:
    """How an audit event names its target: ``Label:key``."""
    return f"{ref[0]}:{ref[1]}"


def _loads(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"value": raw}
    return value if isinstance(value, dict) else {"value": value}


def _loads_list(raw: Any) -> list[Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _record(
    store: GraphStore,
    who: str,
    action: str,
    target: NodeKey,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    about: bool = True,
) -> AuditEvent:
    """Append one audit event about ``target`` (call inside the action's batch); ``about=False``
    names a target that is no graph node (so no ABOUT relationship is written)."""
    if not who:
        raise CaseError("an audit event needs the investigator's name")
    event = AuditEvent(
        event_id=uuid.uuid4().hex,
        at=now_iso(microseconds=True),
        who=who,
        action=action,
        target=target_text(target),
        before=before,
        after=after,
    )
    store.upsert_nodes(
        Label.AUDIT_EVENT,
        [
            {
                "event_id": event.event_id,
                "at": event.at,
                "who": who,
                "action": action,
                "target": event.target,
                "target_label": target[0],
                "target_key": target[1],
                "before": json.dumps(before, sort_keys=True, default=str),
                "after": json.dumps(after, sort_keys=True, default=str),
            }
        ],
    )
    if about:
        store.upsert_relationships(
            Rel.ABOUT, Label.AUDIT_EVENT, target[0], [{"start": event.event_id, "end": target[1]}]
        )
    return event


def record_event(
    store: GraphStore,
    who: str,
    action: str,
    target: NodeKey,
    before: dict[str, Any],
    after: dict[str, Any],
) -> AuditEvent:
    """Append one audit event for an action taken outside this module (saved queries), in the
    same form as the case actions' own; call it inside the action's ``store.batch()``."""
    return _record(store, who, action, target, before, after)


def _cluster(store: GraphStore, cluster_id: str) -> Node:
    node = store.get_node(Label.CLUSTER, cluster_id)
    if node is None:
        raise CaseError(f"no cluster {cluster_id!r}")
    return node


def _cluster_rels(store: GraphStore, cluster_id: str) -> list[Relationship]:
    """Every relationship touching the cluster node."""
    sub = store.neighbours([(Label.CLUSTER, cluster_id)], limit=_ALL_NODES_LIMIT)
    return sub.relationships


def _operator_of(store: GraphStore, cluster_id: str, rel_type: str) -> Relationship | None:
    for rel in _cluster_rels(store, cluster_id):
        if rel.type == rel_type and rel.start == (Label.CLUSTER.value, cluster_id):
            return rel
    return None


def slug(text: str) -> str:
    """A stable id fragment from a free-text name (``"Acme Lab"`` -> ``acme-lab``)."""
    out = re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")
    return out or "operator"


def ensure_operator(store: GraphStore, operator_id: str | None, name: str | None) -> str:
    """The id of an existing operator, or of a new one created from ``name``."""
    if operator_id:
        if store.get_node(Label.OPERATOR, operator_id) is None:
            if not name:
                raise CaseError(f"no operator {operator_id!r}; give a name to create it")
            store.upsert_nodes(Label.OPERATOR, [{"operator_id": operator_id, "name": name}])
        return operator_id
    if not name:
        raise CaseError("name an existing operator or give a name for a new one")
    new_id = "op-" + slug(name)
    if store.get_node(Label.OPERATOR, new_id) is None:
        store.upsert_nodes(Label.OPERATOR, [{"operator_id": new_id, "name": name}])
    return new_id


def attribute(
    store: GraphStore,
    cluster_id: str,
    *,
    who: str,
    confidence: float,
    rationale: str,
    operator_id: str | None = None,
    operator_name: str | None = None,
) -> AuditEvent:
    """Attribute a cluster to an existing operator (``operator_id``) or a new one
    (``operator_name``), replacing any earlier attribution; records ATTRIBUTED_TO
    {confidence, rationale, by, at}."""
    if not 0.0 <= confidence <= 1.0:
        raise CaseError("confidence must be between 0 and 1")
    if not rationale.strip():
        raise CaseError("an attribution needs a written rationale")
    with store.batch():
        _cluster(store, cluster_id)  # refuses an unknown cluster
        previous = _operator_of(store, cluster_id, Rel.ATTRIBUTED_TO)
        op_id = ensure_operator(store, operator_id, operator_name)
        before = {"operator_id": previous.end[1], **previous.props} if previous else {}
        if previous is not None and previous.end[1] != op_id:
            store.delete_relationship_refs([previous.ref])
        at = now_iso(microseconds=True)
        rel = {"confidence": float(confidence), "rationale": rationale.strip(), "by": who, "at": at}
        store.upsert_relationships(
            Rel.ATTRIBUTED_TO, Label.CLUSTER, Label.OPERATOR, [{"start": cluster_id, "end": op_id, **rel}]
        )
        store.upsert_nodes(Label.CLUSTER, [{"cluster_id": cluster_id, "attributed_operator": op_id}])
        return _record(store, who, "attribute", (Label.CLUSTER.value, cluster_id), before, {"operator_id": op_id, **rel})


def confirm_suggestion(store: GraphStore, cluster_id: str, *, who: str, rationale: str = "") -> AuditEvent:
    """Turn the detector's SUGGESTED_OPERATOR into an attribution with its confidence."""
    suggestion = _operator_of(store, cluster_id, Rel.SUGGESTED_OPERATOR)
    if suggestion is None:
        raise CaseError(f"cluster {cluster_id!r} has no suggested operator")
    confidence = float(suggestion.props.get("confidence", 0.0) or 0.0)
    matched = _loads_list(suggestion.props.get("indicators"))
    values = ", ".join(str(i.get("value", i)) if isinstance(i, dict) else str(i) for i in matched[:5])
    text = rationale.strip() or f"confirmed the detector's suggestion ({len(matched)} matching operator indicators: {values})"
    return attribute(
        store, cluster_id, who=who, confidence=min(max(confidence, 0.0), 1.0), rationale=text, operator_id=suggestion.end[1]
    )


def set_status(store: GraphStore, cluster_id: str, status: str, *, who: str, reason: str = "") -> AuditEvent:
    """Move a cluster along open -> in_progress -> confirmed/dismissed (see TRANSITIONS)."""
    if status not in STATUSES:
        raise CaseError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    with store.batch():
        cluster = _cluster(store, cluster_id)
        current = str(cluster.props.get("status") or "open")
        if status == current:
            raise CaseError(f"cluster {cluster_id!r} is already {status}")
        if status not in TRANSITIONS.get(current, frozenset()):
            allowed = ", ".join(sorted(TRANSITIONS.get(current, frozenset()))) or "none"
            raise CaseError(f"cannot move cluster {cluster_id!r} from {current} to {status} (allowed: {allowed})")
        store.upsert_nodes(Label.CLUSTER, [{"cluster_id": cluster_id, "status": status}])
        after: dict[str, Any] = {"status": status}
        if reason.strip():
            after["reason"] = reason.strip()
        return _record(store, who, "status", (Label.CLUSTER.value, cluster_id), {"status": current}, after)


def add_note(store: GraphStore, target: NodeKey, text: str, *, who: str) -> AuditEvent:
    """Attach a free-text note to any node (Note -ABOUT-> node), audited."""
    if not text.strip():
        raise CaseError("a note needs text")
    with store.batch():
        if store.get_node(target[0], target[1]) is None:
            raise CaseError(f"no {target[0]} {target[1]!r}")
        note_id = uuid.uuid4().hex
        store.upsert_nodes(
            Label.NOTE,
            [{"note_id": note_id, "text": text.strip(), "who": who, "at": now_iso(microseconds=True), "target": target_text(target)}],
        )
        store.upsert_relationships(Rel.ABOUT, Label.NOTE, target[0], [{"start": note_id, "end": target[1]}])
        return _record(store, who, "note", target, {}, {"note_id": note_id, "text": text.strip()})


def notes_about(store: GraphStore, target: NodeKey) -> list[dict[str, Any]]:
    """The notes on a node, oldest first."""
    sub = store.neighbours([target], [Rel.ABOUT], limit=_ALL_NODES_LIMIT)
    notes = [n.props | {"note_id": n.key} for n in sub.nodes if n.label == Label.NOTE]
    return sorted(notes, key=lambda n: str(n.get("at", "")))


def members(store: GraphStore, cluster_id: str) -> list[str]:
    """Account ids that are MEMBER_OF the cluster, sorted."""
    sub = store.neighbours([(Label.CLUSTER, cluster_id)], [Rel.MEMBER_OF], limit=_ALL_NODES_LIMIT)
    return sorted(n.key for n in sub.nodes if n.label == Label.ACCOUNT)


def _write_changes(store: GraphStore, changes: Changes) -> None:
    """Write refigured clusters (graph/refigure.py): their properties, their members' MEMBER_OF
    (bridge and takeover flags), their suggested operator and what they share of provider
    infrastructure with other clusters, replacing what detection or an earlier action left."""
    store.upsert_nodes(Label.CLUSTER, changes.clusters)
    store.upsert_relationships(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER, changes.members)
    touched = {row["cluster_id"] for row in changes.clusters}
    refs = [(Label.CLUSTER.value, cid) for cid in sorted(touched)]
    around = store.neighbours(refs, [Rel.SUGGESTED_OPERATOR, Rel.SHARES_INFRASTRUCTURE], limit=_ALL_NODES_LIMIT).relationships
    old = [r.ref for r in around if (r.type == Rel.SUGGESTED_OPERATOR and r.start in refs)
           or (r.type == Rel.SHARES_INFRASTRUCTURE and (r.start in refs or r.end in refs))]
    store.delete_relationship_refs(old)
    known = [row for row in changes.suggestions if store.get_node(Label.OPERATOR, row["end"]) is not None]
    store.upsert_relationships(Rel.SUGGESTED_OPERATOR, Label.CLUSTER, Label.OPERATOR, known)
    if changes.infrastructure:
        store.upsert_relationships(Rel.SHARES_INFRASTRUCTURE, Label.CLUSTER, Label.CLUSTER, changes.infrastructure)


def _headline(node: Node) -> dict[str, Any]:
    return {k: node.props.get(k) for k in ("size", "exchanges", "score", "flagged")}


def merge_clusters(
    store: GraphStore, keep_id: str, other_id: str, *, who: str, rationale: str, settings: Settings | None = None
) -> AuditEvent:
    """Move every member of ``other_id`` into ``keep_id``; ``other_id`` stays as a record
    with status ``merged`` and ``merged_into`` (its audit history intact). Both clusters are
    refigured as detection would figure them (graph/refigure.py; ``settings`` name the
    workspace whose last detection run gives the figure context), and every later detection run
    keeps the merge (graph/decisions.py). Returns the ``merge`` event, about ``keep_id``."""
    if keep_id == other_id:
        raise CaseError("cannot merge a cluster into itself")
    if not rationale.strip():
        raise CaseError("a merge needs a written rationale")
    with store.batch():
        keep, other = _cluster(store, keep_id), _cluster(store, other_id)
        for node in (keep, other):
            if node.props.get("status") == "merged":
                raise CaseError(f"cluster {node.key!r} was merged into {node.props.get('merged_into')!r} already")
        moved = members(store, other_id)
        kept_before = members(store, keep_id)
        empty = other_id if not moved else keep_id if not kept_before else None
        if empty is not None:
            raise CaseError(f"cluster {empty!r} has no accounts to merge")
        merged = sorted(set(kept_before) | set(moved))
        changes = Refigure.of(store, settings, [keep_id, other_id], merged).changes({keep_id: merged, other_id: []})
        # The merged record keeps notes and audit links but no members or operator links.
        store.delete_relationship_refs([r.ref for r in _cluster_rels(store, other_id) if r.type != Rel.ABOUT])
        _write_changes(store, changes)
        store.upsert_nodes(Label.CLUSTER, [{"cluster_id": other_id, "status": "merged", "merged_into": keep_id}])
        _record(
            store, who, "merged_into", (Label.CLUSTER.value, other_id),
            {"status": other.props.get("status", "open"), "members": moved, **_headline(other)},
            {"status": "merged", "merged_into": keep_id, "rationale": rationale.strip()},
        )
        return _record(
            store, who, "merge", (Label.CLUSTER.value, keep_id),
            {**_headline(keep), "size": keep.props.get("size", len(kept_before)), "members": kept_before},
            {**changes.figures(keep_id), "absorbed": other_id, "added": moved, "rationale": rationale.strip()},
        )


def split_accounts(
    store: GraphStore, cluster_id: str, account_ids: Iterable[str], *, who: str, rationale: str,
    new_cluster_id: str | None = None, settings: Settings | None = None,
) -> AuditEvent:
    """Move ``account_ids`` out of a cluster into a new cluster (status open). Both are
    refigured as detection would figure them (see ``merge_clusters``), and every later
    detection run keeps the split; the event records what tied the two sides when the analyst
    split them (``ties``), so a run can report new evidence against the split. Returns the
    ``split`` event, about the parent; ``after["new_cluster"]`` names the new cluster."""
    if not rationale.strip():
        raise CaseError("a split needs a written rationale")
    chosen = sorted(set(account_ids))
    with store.batch():
        cluster = _cluster(store, cluster_id)
        current = members(store, cluster_id)
        missing = sorted(set(chosen) - set(current))
        if not chosen or missing:
            raise CaseError(f"accounts not in cluster {cluster_id!r}: {missing or 'none chosen'}")
        if len(chosen) == len(current):
            raise CaseError("splitting every account off leaves an empty cluster; dismiss it instead")
        new_id = new_cluster_id or f"{cluster_id}-split-{uuid.uuid4().hex[:6]}"
        if store.get_node(Label.CLUSTER, new_id) is not None:
            raise CaseError(f"cluster {new_id!r} already exists")
        remaining = sorted(set(current) - set(chosen))
        figures = Refigure.of(store, settings, [cluster_id], current)
        tied = figures.ties(current, chosen)
        changes = figures.changes({cluster_id: remaining, new_id: chosen})
        store.delete_relationship_refs(
            [((Label.ACCOUNT.value, a), Rel.MEMBER_OF.value, (Label.CLUSTER.value, cluster_id)) for a in chosen]
        )
        store.upsert_nodes(
            Label.CLUSTER,
            [{"cluster_id": new_id, "status": "open", "split_from": cluster_id,
              "detected_at": str(cluster.props.get("detected_at") or "")}],
        )
        _write_changes(store, changes)
        _record(store, who, "split_from", (Label.CLUSTER.value, new_id), {}, {"split_from": cluster_id, "members": chosen})
        return _record(
            store, who, "split", (Label.CLUSTER.value, cluster_id),
            {**_headline(cluster), "size": len(current)},
            {**changes.figures(cluster_id), "new_cluster": new_id, "new_cluster_figures": changes.figures(new_id),
             "moved": chosen, "kept": remaining, "ties": tied, "rationale": rationale.strip()},
        )


def audit_trail(
    store: GraphStore,
    *,
    who: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Audit events, newest first, filtered by investigator, action, target (``Label:key``
    or a substring of it) and an ISO time window [since, until]."""
    if until and len(until) == 10:
        until += "T23:59:59.999999Z"  # a bare date means the whole of that day
    events = []
    for node in store.iter_nodes(Label.AUDIT_EVENT):
        event = AuditEvent.from_node(node)
        if who and event.who != who:
            continue
        if action and event.action != action:
            continue
        if target and target not in event.target:
            continue
        if since and event.at < since:
            continue
        if until and event.at > until:
            continue
        events.append(event)
    events.sort(key=lambda e: (e.at, e.event_id), reverse=True)
    return events[:limit] if limit is not None else events


UNKNOWN_INVESTIGATOR = "(unknown user)"


def record_sign_in(store: GraphStore, name: str, *, ok: bool, known: bool, client: str, detail: str = "") -> AuditEvent:
    """Audit one sign-in to the UI (``sign_in`` or ``sign_in_failed``, target
    ``Investigator:<name>``). A name that is no investigator's is recorded as
    "(unknown user)": it may be a password typed into the wrong field."""
    who = name if known else UNKNOWN_INVESTIGATOR
    after = {"client": client, **({"detail": detail} if detail else {})}
    with store.batch():
        action = "sign_in" if ok else "sign_in_failed"
        return _record(store, who, action, ("Investigator", who), {}, after, about=False)
