"""Team queries: saved queries shared through the graph as SavedQuery nodes.

A SavedQuery node holds the same fields as a built-in YAML file (parameters and the node-column
map as JSON text, per the schema's no-nested-values rule) plus ``owner`` and ``updated_at``.
Export writes one YAML file per query (the built-in format), import validates each file before
anything is written, so a bad file changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from graph.queries.library import (
    QueryError,
    QuerySpec,
    builtin_queries,
    check_query_id,
    spec_from_dict,
)
from graph.schema import Label
from graph.store import GraphStore, Node

# Saved queries are read-only; the server enforces that on Neo4j, this refuses the obvious
# cases early so a team member learns it when saving, not when a colleague runs it.
_WRITE_CLAUSE = re.compile(
    r"\b(CREATE|MERGE|DELETE|DETACH|SET|REMOVE|DROP|FOREACH|LOAD\s+CSV)\b|\bCALL\s+(dbms|db\.create|apoc)",
    re.IGNORECASE,
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_read_only(spec: QuerySpec) -> None:
    match = _WRITE_CLAUSE.search(spec.cypher)
    if match:
        raise QueryError(f"query {spec.id!r}: saved queries are read-only; {match.group(0)!r} is not allowed")


def validate_team_query(
    raw: Mapping[str, Any], owner: str | None = None, default_owner: str | None = None
) -> QuerySpec:
    """A team query definition, validated (strict id, typed parameters, read-only Cypher,
    no clash with a built-in). ``owner`` overrides the definition's; ``default_owner`` fills
    it in when the definition has none."""
    data = dict(raw)
    if owner:
        data["owner"] = owner
    elif not data.get("owner") and default_owner:
        data["owner"] = default_owner
    spec = spec_from_dict(data, builtin=False)
    if spec.id in builtin_queries():
        raise QueryError(f"{spec.id!r} is a built-in query; save the team's version under another id")
    if not spec.owner:
        raise QueryError(f"team query {spec.id!r} needs an owner")
    check_read_only(spec)
    return spec


def _to_node(spec: QuerySpec) -> dict[str, Any]:
    return {
        "query_id": spec.id,
        "name": spec.name,
        "category": spec.category,
        "description": spec.description,
        "parameters": json.dumps([p.to_dict() for p in spec.parameters], sort_keys=True, default=str),
        "cypher": spec.cypher,
        "revision": spec.revision,
        "nodes": json.dumps(spec.nodes, sort_keys=True),
        "owner": spec.owner,
        "based_on": spec.based_on or None,
        "updated_at": _now(),
    }


def _from_node(node: Node) -> QuerySpec:
    p = node.props
    return spec_from_dict(
        {
            "id": node.key,
            "name": p.get("name"),
            "category": p.get("category"),
            "description": p.get("description"),
            "parameters": json.loads(p.get("parameters") or "[]"),
            "cypher": p.get("cypher"),
            "revision": int(p.get("revision") or 1),
            "nodes": json.loads(p.get("nodes") or "{}"),
            "owner": p.get("owner"),
            "based_on": p.get("based_on"),
        },
        builtin=False,
    )


def save_team_query(store: GraphStore, raw: Mapping[str, Any], owner: str | None = None) -> QuerySpec:
    """Validate and store a team query; saving over an existing one bumps its revision."""
    spec = validate_team_query(raw, owner)
    existing = store.get_node(Label.SAVED_QUERY, spec.id)
    row = _to_node(spec)
    if existing is not None:
        row["revision"] = max(spec.revision, int(existing.props.get("revision") or 1) + 1)
    store.upsert_nodes(Label.SAVED_QUERY, [row])
    return get_team_query(store, spec.id) or spec


def get_team_query(store: GraphStore, query_id: str) -> QuerySpec | None:
    node = store.get_node(Label.SAVED_QUERY, check_query_id(query_id))
    return _from_node(node) if node is not None else None


def list_team_queries(store: GraphStore) -> list[QuerySpec]:
    """Every valid team query, by id (an unreadable node is skipped, not fatal)."""
    out = []
    for node in store.find_nodes(Label.SAVED_QUERY):
        try:
            out.append(_from_node(node))
        except (QueryError, ValueError):
            continue
    return out


def delete_team_query(store: GraphStore, query_id: str) -> bool:
    return store.delete_nodes([(Label.SAVED_QUERY, check_query_id(query_id))]) > 0


def export_team_queries(store: GraphStore, directory: Path, ids: Iterable[str] | None = None) -> list[Path]:
    """Write each team query (all, or ``ids``) as ``<id>.yaml`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {check_query_id(i) for i in ids} if ids else None
    written = []
    for spec in list_team_queries(store):
        if wanted is not None and spec.id not in wanted:
            continue
        path = directory / f"{spec.id}.yaml"
        path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        written.append(path)
    if wanted is not None and len(written) != len(wanted):
        missing = sorted(wanted - {p.stem for p in written})
        raise QueryError(f"no team query {', '.join(missing)}")
    return written


def read_query_files(
    paths: Iterable[Path], owner: str | None = None, default_owner: str | None = None
) -> list[QuerySpec]:
    """Parse and validate YAML query files (a directory means its ``*.yaml``), all or nothing."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    specs = []
    for path in files:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise QueryError(f"{path}: cannot read ({exc})") from None
        try:
            specs.append(validate_team_query(raw if isinstance(raw, Mapping) else {}, owner, default_owner))
        except QueryError as exc:
            raise QueryError(f"{path}: {exc}") from None
    return specs


def import_team_queries(
    store: GraphStore, paths: Iterable[Path], owner: str | None = None, default_owner: str | None = None
) -> list[QuerySpec]:
    """Validate every file first, then save them all in one batch."""
    specs = read_query_files(paths, owner, default_owner)
    with store.batch():
        return [save_team_query(store, spec.to_dict()) for spec in specs]
