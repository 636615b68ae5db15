"""The evidence graph as a STIX 2.1 bundle, for sharing with threat-intel partners.

Mapping:
- each cluster -> a ``grouping`` with context ``suspicious-activity`` whose ``object_refs`` are
  everything below that concerns it, and a description with its scores and attribution;
- each operator -> an ``intrusion-set`` (first/last seen from its clusters);
- each proxy / VPN / Tor network -> ``infrastructure`` of type ``anonymization``, each hosting
  network -> ``botnet`` (first/last seen from the members' use), ``consists-of`` its IPs;
- each operator indicator expressible as a STIX pattern (ip, network, asn, email_domain) -> an
  ``indicator`` that ``indicates`` the intrusion set;
- in a folded graph (graph/evidence_fold.py) each member group -> a ``grouping`` of its
  members' ``user-account`` objects and the infrastructure they use, links between groups ->
  ``related-to`` relationships between those groupings, the cluster's description saying it
  is folded;
- each member account -> a ``user-account``; links between accounts, accounts' use of
  infrastructure, and membership of an attributed cluster -> ``relationship`` objects with
  ``start_time``/``stop_time`` (first/last seen) where known.

SDO ids are uuid5 of the Sybilscope key, so exporting twice gives the same ids. Only standard
STIX objects and properties are used. The objects are built as plain JSON (the stix2 library
takes about a millisecond to construct each object, ten seconds for a 1,000-account cluster)
and checked with ``stix2.parse(..., allow_custom=False)`` before the file is written: the
whole bundle when it has at most ``FULL_CHECK`` objects, else one object of each type and
shape of properties (the rest are made by the same code from the same kind of values). Text is strict UTF-8 (lone
surrogates become U+FFFD, see graph/export/text.py) and the file is UTF-8 with non-ASCII
written as itself.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stix2

from graph.evidence import MEMBER_GROUP
from graph.export.selection import EvidenceGraph
from graph.export.text import clean_graph, utf8_text
from graph.schema import Label, Rel
from graph.store import Node, NodeKey

NAMESPACE = uuid.UUID("6f0c5c1e-1f5b-4d51-9a43-5b0f4c2b7a11")
ANONYMIZATION_KINDS = {"proxy", "vpn", "tor"}
HOSTING_KINDS = {"hosting"}
FULL_CHECK = 2000
SPEC = "2.1"
PRODUCER_ID = f"identity--{uuid.uuid5(NAMESPACE, 'sybilscope')}"
PRODUCER: dict[str, Any] = {
    "type": "identity", "spec_version": SPEC, "id": PRODUCER_ID, "created": "2025-01-01T00:00:00.000Z",
    "modified": "2025-01-01T00:00:00.000Z", "name": "Sybilscope", "identity_class": "system",
}
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


def _sdo_id(kind: str, key: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, f'{kind}:{key}')}"


def _ts(value: Any) -> str | None:
    """A STIX timestamp from the schema's ISO text (``2025-04-22T10:00:00Z``), or None."""
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def _span(firsts: Iterable[Any], lasts: Iterable[Any]) -> dict[str, str]:
    """``start_time``/``stop_time`` for a relationship: stop only when strictly later."""
    starts = sorted(t for t in (_ts(v) for v in firsts) if t)
    stops = sorted(t for t in (_ts(v) for v in lasts) if t)
    out: dict[str, str] = {}
    if starts:
        out["start_time"] = starts[0]
    if stops and (not starts or stops[-1] > starts[0]):
        out["stop_time"] = stops[-1]
    return out


def _seen(span: dict[str, str]) -> dict[str, str]:
    """The same span as SDO ``first_seen``/``last_seen``."""
    out = {}
    if "start_time" in span:
        out["first_seen"] = span["start_time"]
    if "stop_time" in span:
        out["last_seen"] = span["stop_time"]
    return out


def _confidence(value: Any) -> dict[str, int]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"confidence": max(0, min(100, round(float(value) * 100)))}
    return {}


def _ip_object(value: str) -> dict[str, Any] | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None  # a redacted (hashed) address is no address
    kind = "ipv4-addr" if ip.version == 4 else "ipv6-addr"
    return {"type": kind, "spec_version": SPEC, "id": _sdo_id(kind, value), "value": value}


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def indicator_pattern(itype: str, value: str) -> str | None:
    """A STIX pattern for an operator indicator, or None when STIX has no observable for it."""
    itype = itype.lower()
    if itype == "ip":
        kind = "ipv6-addr" if ":" in value else "ipv4-addr"
        return f"[{kind}:value = '{_quote(value)}']"
    if itype == "network":
        kind = "ipv6-addr" if ":" in value else "ipv4-addr"
        return f"[{kind}:value ISSUBSET '{_quote(value)}']"
    if itype == "asn" and value.isdigit():
        return f"[autonomous-system:number = {int(value)}]"
    if itype == "email_domain":
        return f"[domain-name:value = '{_quote(value)}']"
    return None


class _Builder:
    def __init__(self, graph: EvidenceGraph) -> None:
        self.graph = graph
        self.nodes = graph.node_map()
        self.objects: dict[str, dict[str, Any]] = {PRODUCER_ID: PRODUCER}
        self.by_ref: dict[NodeKey, str] = {}
        self.out: dict[NodeKey, list[Any]] = defaultdict(list)
        self.into: dict[NodeKey, list[Any]] = defaultdict(list)
        self.now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for rel in graph.relationships:
            self.out[rel.start].append(rel)
            self.into[rel.end].append(rel)

    def sdo(self, kind: str, key: str, **props: Any) -> dict[str, Any]:
        """A STIX domain object: its id from ``key``, made by Sybilscope, created now."""
        return {"type": kind, "spec_version": SPEC, "id": _sdo_id(kind, key), "created": self.now, "modified": self.now,
                "created_by_ref": PRODUCER_ID, **{k: v for k, v in props.items() if v is not None}}

    def add(self, obj: dict[str, Any], ref: NodeKey | None = None) -> str:
        self.objects[obj["id"]] = obj
        if ref is not None:
            self.by_ref[ref] = obj["id"]
        return str(obj["id"])

    def relate(self, source: str, kind: str, target: str, **extra: Any) -> str:
        return self.add(self.sdo("relationship", f"{source}|{kind}|{target}", relationship_type=kind,
                                 source_ref=source, target_ref=target, **extra))

    def accounts(self) -> None:
        for node in self.graph.nodes:
            if node.label != Label.ACCOUNT:
                continue
            obj: dict[str, Any] = {"type": "user-account", "spec_version": SPEC, "id": _sdo_id("user-account", node.key),
                                   "user_id": node.key}
            if created := _ts(node.props.get("created_at")):
                obj["account_created"] = created
            status = str(node.props.get("status") or "")
            if status:
                obj["is_disabled"] = status in {"banned", "suspended"}
            self.add(obj, node.ref)

    def infrastructure(self) -> None:
        for node in self.graph.nodes:
            kind = str(node.props.get("kind") or "").lower()
            if node.label != Label.NETWORK or kind not in ANONYMIZATION_KINDS | HOSTING_KINDS:
                continue
            ips = [r.start for r in self.into[node.ref] if r.type == Rel.IN_NETWORK]
            uses = [u for ip in ips for u in self.into[ip] if u.type == Rel.USED_IP]
            # a network folded in the evidence graph is used directly, its addresses not shown
            uses += [u for u in self.into[node.ref] if u.type == Rel.USED_IP]
            span = _span((u.props.get("first_seen") for u in uses), (u.props.get("last_seen") for u in uses))
            name = str(node.props.get("provider") or node.key)
            infra_id = self.add(self.sdo(
                "infrastructure", node.key, name=f"{name} ({kind} network {node.key})",
                infrastructure_types=["anonymization"] if kind in ANONYMIZATION_KINDS else ["botnet"], **_seen(span),
            ), node.ref)
            for ip in ips:
                obj = _ip_object(ip[1])
                if obj is not None:
                    self.relate(infra_id, "consists-of", self.add(obj, ip))
            per_account: dict[NodeKey, list[Any]] = defaultdict(list)
            for use in uses:
                per_account[use.start].append(use)
            for account, used in per_account.items():
                if account in self.by_ref:
                    addresses = sum(int(u.props.get("ips") or 1) for u in used)
                    self.relate(
                        self.by_ref[account], "related-to", infra_id,
                        description=f"used {addresses} address(es) of this network",
                        **_span((u.props.get("first_seen") for u in used), (u.props.get("last_seen") for u in used)),
                    )

    def member_groups(self) -> None:
        """A folded graph's member groups: each a ``grouping`` of its members (``user-account``
        objects, from ``account_ids``) and the infrastructure they use; links between groups
        become relationships between these groupings."""
        for node in self.graph.nodes:
            if node.label != MEMBER_GROUP:
                continue
            refs = [self.add({"type": "user-account", "spec_version": SPEC, "id": _sdo_id("user-account", str(a)),
                              "user_id": str(a)}) for a in node.props.get("account_ids") or []]
            refs += sorted({self.by_ref[r.end] for r in self.out[node.ref] if r.end in self.by_ref})
            p = node.props
            text = "; ".join(f"{k}: {p[k]}" for k in ("members", "shared_values", "exchanges", "first_seen", "last_seen",
                                                       "links_inside") if p.get(k) is not None)
            self.add(self.sdo("grouping", f"{self.graph.cluster_ids}|{node.key}", context="suspicious-activity",
                              name=f"Sybilscope member group {node.key} ({int(p.get('members') or 0):,} members)",
                              description=f"members who share the same values ({text})", object_refs=refs or [PRODUCER_ID]),
                     node.ref)

    def operators(self) -> None:
        for node in self.graph.nodes:
            if node.label != Label.OPERATOR:
                continue
            clusters = [self.nodes[r.start] for r in self.into[node.ref] if r.start in self.nodes and r.start[0] == Label.CLUSTER]
            span = _span((c.props.get("first_seen") for c in clusters), (c.props.get("last_seen") for c in clusters))
            untranslated = []
            iset = self.sdo("intrusion-set", node.key, name=str(node.props.get("name") or node.key), **_seen(span))
            iset_id = self.add(iset, node.ref)
            for rel in self.out[node.ref]:
                if rel.type != Rel.HAS_INDICATOR or rel.end not in self.nodes:
                    continue
                ind = self.nodes[rel.end]
                itype = str(ind.props.get("type") or ind.props.get("indicator_type") or ind.key.split(":", 1)[0])
                value = str(ind.props.get("value") or ind.props.get("indicator_value") or ind.key.split(":", 1)[-1])
                pattern = indicator_pattern(itype, value)
                if pattern is None:
                    untranslated.append(f"{itype}={value}")
                    continue
                indicator = self.sdo(
                    "indicator", ind.key, name=f"{itype} indicator of {iset['name']}", pattern=pattern, pattern_type="stix",
                    valid_from=span.get("start_time", "2025-01-01T00:00:00Z"), indicator_types=["attribution"],
                    **_confidence(rel.props.get("confidence", ind.props.get("confidence"))),
                )
                self.relate(self.add(indicator, ind.ref), "indicates", iset_id)
            if untranslated:
                iset["description"] = "Indicators without a STIX observable: " + ", ".join(sorted(untranslated))
            for rel in self.into[node.ref]:
                cluster = rel.start
                if cluster[0] != Label.CLUSTER:
                    continue
                self._operator_uses(iset_id, cluster, rel.type)

    def _operator_uses(self, iset_id: str, cluster: NodeKey, how: str) -> None:
        for member in (r.start for r in self.into[cluster] if r.type == Rel.MEMBER_OF):
            if member not in self.by_ref:
                continue
            what = "attributed to" if how == Rel.ATTRIBUTED_TO else "suggested for"
            self.relate(self.by_ref[member], "related-to", iset_id,
                        description=f"member of cluster {cluster[1]}, {what} this intrusion set")
            for use in self.out[member]:
                infra = self.by_ref.get(self._network_of(use.end))
                if use.type == Rel.USED_IP and infra and infra.startswith("infrastructure--"):
                    self.relate(iset_id, "uses", infra)

    def _network_of(self, ip: NodeKey) -> NodeKey:
        return next((r.end for r in self.out[ip] if r.type == Rel.IN_NETWORK), ip)

    def links(self) -> None:
        for rel in self.graph.relationships:
            if rel.type != Rel.LINKED or rel.start not in self.by_ref or rel.end not in self.by_ref:
                continue
            families = rel.props.get("families") or []
            text = ", ".join(families) if isinstance(families, list) else str(families)
            self.relate(
                self.by_ref[rel.start], "related-to", self.by_ref[rel.end],
                description=(f"{rel.props['links']} links by Sybilscope between their members ({text}; strongest weight "
                             f"{rel.props.get('weight')})" if "links" in rel.props else
                             f"linked by Sybilscope ({text}; weight {rel.props.get('weight')})"),
                **_confidence(rel.props.get("weight")),
                **_span([rel.props.get("first_seen")], [rel.props.get("last_seen")]),
            )

    def groupings(self) -> None:
        relationships = [o for o in self.objects.values() if o["type"] == "relationship"]
        for cid in self.graph.cluster_ids:
            ref: NodeKey = (Label.CLUSTER.value, cid)
            node = self.nodes.get(ref)
            if node is None:
                continue
            members = {r.start for r in self.into[ref] if r.type == Rel.MEMBER_OF}
            concerned = set(members) | {r.end for r in self.out[ref]}
            for m in members:
                concerned.update(r.end for r in self.out[m])
            ids = {self.by_ref[c] for c in concerned if c in self.by_ref}
            for c in list(concerned):
                if c[0] == Label.OPERATOR:
                    ids.update(self.by_ref[r.end] for r in self.out[c] if r.end in self.by_ref)
            ids.update(o["id"] for o in relationships if o["source_ref"] in ids and o["target_ref"] in ids)
            if not ids:
                ids = {PRODUCER_ID}
            self.add(self.sdo("grouping", cid, name=f"Sybilscope cluster {cid}", context="suspicious-activity",
                              description=_cluster_text(node) + (f"; folded: {self.graph.fold_note()}" if self.graph.folded else ""),
                              object_refs=sorted(ids), **_confidence(node.props.get("score"))))


def _cluster_text(node: Node) -> str:
    p = node.props
    parts = [f"{k}: {p[k]}" for k in ("score", "flagged", "size", "exchanges", "input_tokens", "output_tokens",
                                       "first_seen", "last_seen", "status", "suggested_operator",
                                       "suggestion_confidence", "attributed_operator") if p.get(k) is not None]
    return "; ".join(parts) or "cluster"


def bundle_json(graph: EvidenceGraph) -> dict[str, Any]:
    """The STIX bundle of ``graph`` as JSON (see the module docstring for the mapping)."""
    graph = clean_graph(graph, utf8_text)
    b = _Builder(graph)
    b.accounts()
    b.infrastructure()
    b.member_groups()
    b.operators()
    b.links()
    b.groupings()
    objects = sorted(b.objects.values(), key=lambda o: o["id"])
    return {"type": "bundle", "id": _sdo_id("bundle", "|".join(graph.cluster_ids)), "objects": objects}


def check_bundle(bundle: dict[str, Any]) -> None:
    """Parse the bundle strictly (no custom content): whole when small, else one object of
    each type and shape of properties, then the bundle of those."""
    objects = bundle["objects"]
    if len(objects) > FULL_CHECK:
        shapes: dict[tuple[str, frozenset[str]], dict[str, Any]] = {}
        for obj in objects:
            shapes.setdefault((obj["type"], frozenset(obj)), obj)
        objects = list(shapes.values())
    stix2.parse(json.dumps({**bundle, "objects": objects}, ensure_ascii=False), allow_custom=False)


def build_bundle(graph: EvidenceGraph) -> stix2.Bundle:
    """The bundle as stix2 objects (for callers that want them; slow on large graphs)."""
    bundle: stix2.Bundle = stix2.parse(json.dumps(bundle_json(graph), ensure_ascii=False), allow_custom=False)
    return bundle


def write_stix(graph: EvidenceGraph, path: Path) -> Path:
    """Write the bundle, after checking it parses strictly (no custom content)."""
    bundle = bundle_json(graph)
    check_bundle(bundle)
    path.write_bytes(json.dumps(bundle, indent=1, ensure_ascii=False).encode("utf-8"))
    return path
