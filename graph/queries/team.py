"""Team queries: saved queries shared through the graph as SavedQuery nodes.

A SavedQuery node holds the same fields as a built-in YAML file (parameters and the node-column
map as JSON text, per the schema's no-nested-values rule) plus ``owner`` and ``updated_at``.
Export writes one YAML file per query (the built-in format), import validates each file before
anything is written, so a bad file changes nothing.

Every definition is vetted as read-only Cypher before it is stored (graph/queries/guard.py: the
text pass everywhere, and on Neo4j the server's plan with the query's example parameters); it is
vetted again each time it runs. Saving, importing, overwriting and deleting a team query each
append an audit event (graph/cases.py) about the SavedQuery node, naming the investigator
(``who``) and holding the definition before and after, so a deleted or overwritten query can be
read back from the trail. Overwriting a query someone else owns is refused unless ``force`` is
given, and the event records that it was forced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from graph.cases import record_event
from graph.props import now_iso
from graph.queries import guard
from graph.queries.library import (
    QueryError,
    QuerySpec,
    bind_params,
    builtin_queries,
    check_query_id,
    spec_from_dict,
)
from graph.schema import Label
from graph.settings import Settings
from graph.store import GraphStore, Node


class OverwriteRefused(QueryError):
    """Saving would replace a team query that another investigator owns, without ``force``."""


def check_read_only(spec: QuerySpec) -> None:
    """The text pass (the only check possible without a Cypher engine; see guard.py)."""
    guard.check_text(spec.id, spec.cypher)


def vet_on_store(store: GraphStore, spec: QuerySpec) -> None:
    """On a store that runs Cypher, refuse ``spec`` unless the server's plan for it (with its
    example parameters) is a plain read; elsewhere the text pass already ran."""
    if callable(getattr(store, "explain_query", None)):
        params = bind_params(spec, spec.example_params())
        timeout = float(Settings()["user_query_timeout_s"])
        guard.vet(store, spec.id, spec.cypher, params, timeout=timeout)  # type: ignore[arg-type]


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
        "updated_at": now_iso(),
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


def _existing(store: GraphStore, query_id: str) -> tuple[QuerySpec | None, dict[str, Any]]:
    """The stored query ``query_id`` (None when absent or unreadable) and its raw properties."""
    node = store.get_node(Label.SAVED_QUERY, query_id)
    if node is None:
        return None, {}
    try:
        return _from_node(node), dict(node.props)
    except (QueryError, ValueError):
        return None, dict(node.props)


def _owner_of(spec: QuerySpec | None, props: Mapping[str, Any]) -> str:
    return spec.owner if spec is not None else str(props.get("owner") or "")


def check_overwrite(
    store: GraphStore, spec: QuerySpec, who: str, force: bool
) -> tuple[QuerySpec | None, dict[str, Any]]:
    """Refuse to replace a stored query another investigator owns unless ``force``; returns
    what ``_existing`` found."""
    existing, props = _existing(store, spec.id)
    owner = _owner_of(existing, props)
    if props and owner and owner != who and not force:
        raise OverwriteRefused(
            f"team query {spec.id!r} belongs to {owner}; {who} may only overwrite it when forcing "
            "(--force on the command line), which the audit trail records"
        )
    return existing, props


def _write(store: GraphStore, spec: QuerySpec, who: str, force: bool, via: str) -> QuerySpec:
    """Store ``spec`` (bumping the revision of one it replaces) and audit it; call in a batch."""
    existing, props = check_overwrite(store, spec, who, force)
    row = _to_node(spec)
    if props:
        row["revision"] = max(spec.revision, int(props.get("revision") or 1) + 1)
    store.upsert_nodes(Label.SAVED_QUERY, [row])
    saved = get_team_query(store, spec.id) or spec
    after: dict[str, Any] = saved.to_dict()
    if props:
        before = existing.to_dict() if existing is not None else props
        owner = _owner_of(existing, props)
        after.update(via=via, forced=bool(owner) and owner != who)
        record_event(store, who, "query_overwrite", (Label.SAVED_QUERY.value, spec.id), before, after)
    else:
        record_event(store, who, f"query_{via}", (Label.SAVED_QUERY.value, spec.id), {}, after)
    return saved


def save_team_query(
    store: GraphStore,
    raw: Mapping[str, Any],
    owner: str | None = None,
    *,
    who: str | None = None,
    force: bool = False,
) -> QuerySpec:
    """Validate, vet and store a team query; saving over an existing one bumps its revision.
    ``who`` is the investigator saving (default: the query's owner, saving their own query);
    replacing a query someone else owns needs ``force``. Audited as ``query_save`` or
    ``query_overwrite``."""
    spec = validate_team_query(raw, owner)
    vet_on_store(store, spec)
    with store.batch():
        return _write(store, spec, who or spec.owner, force, "save")


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


def delete_team_query(store: GraphStore, query_id: str, *, who: str) -> bool:
    """Delete a team query, auditing it (``query_delete``, the definition kept as ``before``).
    False when there was none."""
    check_query_id(query_id)
    with store.batch():
        existing, props = _existing(store, query_id)
        if not props:
            return False
        before = existing.to_dict() if existing is not None else props
        # Recorded first: the event's ABOUT link needs the node, the delete then detaches it.
        record_event(store, who, "query_delete", (Label.SAVED_QUERY.value, query_id), before, {})
        return store.delete_nodes([(Label.SAVED_QUERY, query_id)]) > 0


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
    store: GraphStore,
    paths: Iterable[Path],
    owner: str | None = None,
    default_owner: str | None = None,
    *,
    who: str | None = None,
    force: bool = False,
) -> list[QuerySpec]:
    """Validate and vet every file and check every overwrite first, then save them all in one
    batch: a bad file, an unsafe query or a colleague's query without ``force`` changes
    nothing. ``who`` is the investigator importing (default: each query's owner). Audited as
    ``query_import`` or ``query_overwrite``."""
    specs = read_query_files(paths, owner, default_owner)
    for spec in specs:
        vet_on_store(store, spec)
    with store.batch():
        for spec in specs:
            check_overwrite(store, spec, who or spec.owner, force)
        return [_write(store, spec, who or spec.owner, force, "import") for spec in specs]
