"""Run a saved query by id on either store, with typed, validated parameters.

On Neo4j the query's Cypher is vetted by its plan first (graph/queries/guard.py: a plain read of
this database, nothing else) and then runs read-only (``Neo4jStore.run_read_query``: a READ
transaction the server stops after ``user_query_timeout_s``); Neo4j's own error message is what
the user sees. At most ``user_query_row_limit`` rows come back, and a cut result says so. On the embedded
store a built-in query runs its Python twin (graph/queries/embedded.py); a team query runs there
only when it is an unchanged built-in with other defaults (``based_on``); user-written Cypher is
refused with a message saying to use Neo4j.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.queries.embedded import IMPLEMENTATIONS
from graph.queries.library import (
    QueryError,
    QuerySpec,
    bind_params,
    builtin_queries,
    check_query_id,
)
from graph.settings import Settings
from graph.store import GraphStore, NodeKey


@dataclass
class QueryResult:
    query_id: str
    columns: list[str]
    rows: list[dict[str, Any]]
    params: dict[str, Any]
    engine: str
    """``cypher`` (run on Neo4j), ``python`` (the built-in's Python twin) or ``staging`` (a
    value the graph does not hold, answered from the staged rows: graph/queries/staged.py)."""
    truncated: bool = False
    nodes: dict[str, str] = field(default_factory=dict)
    row_limit: int = 0
    """The most rows this run could return; ``truncated`` says the query had more."""

    def truncation_note(self) -> str:
        """What to tell the user when the rows were cut, else an empty string."""
        if not self.truncated:
            return ""
        return (
            f"only the first {self.row_limit} rows are shown; the query returned more "
            "(raise the limit with --max-rows or SYBILSCOPE_USER_QUERY_ROW_LIMIT, or narrow the query)"
        )

    def node_refs(self) -> list[NodeKey]:
        """The graph nodes the rows name (columns declared as node keys), in first-seen order."""
        seen: dict[NodeKey, None] = {}
        for row in self.rows:
            for column, label in self.nodes.items():
                value = row.get(column)
                if label.startswith("@"):
                    label = str(row.get(label[1:]) or "")
                if not label or value is None:
                    continue
                for key in value if isinstance(value, list) else [value]:
                    if key is not None and not isinstance(key, dict):
                        seen[(label, str(key))] = None
        return list(seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query_id,
            "engine": self.engine,
            "params": self.params,
            "columns": self.columns,
            "rows": self.rows,
            "truncated": self.truncated,
            "row_limit": self.row_limit,
        }


def is_cypher_store(store: GraphStore) -> bool:
    """True for a store that can run Cypher itself (Neo4j)."""
    return callable(getattr(store, "run_read_query", None))


def all_queries(store: GraphStore | None = None) -> dict[str, QuerySpec]:
    """Built-in queries, plus the team's saved queries when a store is given."""
    out = builtin_queries()
    if store is not None:
        from graph.queries.team import list_team_queries

        for spec in list_team_queries(store):
            out.setdefault(spec.id, spec)
    return dict(sorted(out.items()))


def resolve(store: GraphStore, query_id: str) -> QuerySpec:
    """The built-in or team query called ``query_id`` (the id is checked before any lookup)."""
    check_query_id(query_id)
    builtins = builtin_queries()
    if query_id in builtins:
        return builtins[query_id]
    from graph.queries.team import get_team_query

    spec = get_team_query(store, query_id)
    if spec is None:
        raise QueryError(f"no saved query {query_id!r}; 'sybilscope query list' shows them")
    return spec


def python_twin(spec: QuerySpec) -> str | None:
    """The built-in whose Python implementation computes ``spec``, if there is one."""
    if spec.builtin:
        return spec.id if spec.id in IMPLEMENTATIONS else None
    base = builtin_queries().get(spec.based_on) if spec.based_on else None
    if base is None or " ".join(base.cypher.split()) != " ".join(spec.cypher.split()):
        return None
    base_params = {(p.name, p.type) for p in base.parameters}
    if {(p.name, p.type) for p in spec.parameters} != base_params:
        return None
    return base.id


def run_spec(
    store: GraphStore,
    spec: QuerySpec,
    params: Mapping[str, Any] | None = None,
    *,
    engine: str = "auto",
    max_rows: int | None = None,
    timeout: float | None = None,
    workspace: Path | None = None,
) -> QueryResult:
    """Run ``spec`` with ``params`` (text or typed values). ``engine``: ``auto`` (Cypher on
    Neo4j, the Python twin elsewhere), ``cypher`` or ``python`` (tests compare the two).
    ``max_rows`` and ``timeout`` (seconds, Neo4j only) default to the settings
    ``user_query_row_limit`` and ``user_query_timeout_s``. With ``workspace``, a value pivot
    the graph gives no row for is answered from the staged rows (``_staged``), and so is one
    whose value's node says the graph holds only part of its uses (a hub template)."""
    result = _run_on_store(store, spec, params, engine=engine, max_rows=max_rows, timeout=timeout)
    if workspace is None or (result.rows and not _uses_staged(store, spec, result.params)):
        return result
    return _staged(spec, result, workspace) or result


def _uses_staged(store: GraphStore, spec: QuerySpec, params: Mapping[str, Any]) -> bool:
    """Whether the value a built-in pivot asks about has its uses in staging, not in the graph."""
    from graph.queries.staged import STAGED_WHEN

    twin = python_twin(spec) if spec.builtin or spec.based_on else None
    check = STAGED_WHEN.get(twin or "")
    return check is not None and check(store, params)


def _staged(spec: QuerySpec, result: QueryResult, workspace: Path) -> QueryResult | None:
    """The staged answer of a built-in value pivot (or an unchanged copy of one) that found
    nothing in the graph: the value may be one a single account used, which stays in staging."""
    from graph.queries.staged import STAGED_TWINS

    twin = python_twin(spec) if spec.builtin or spec.based_on else None
    if twin not in STAGED_TWINS:
        return None
    rows = STAGED_TWINS[twin](workspace, **result.params)
    if not rows:
        return None
    columns = list(IMPLEMENTATIONS[twin].columns)
    limit = result.row_limit
    return QueryResult(spec.id, columns, [{c: r.get(c) for c in columns} for r in rows[:limit]], result.params, "staging",
                       len(rows) > limit, dict(spec.nodes), limit)


def _run_on_store(
    store: GraphStore,
    spec: QuerySpec,
    params: Mapping[str, Any] | None = None,
    *,
    engine: str = "auto",
    max_rows: int | None = None,
    timeout: float | None = None,
) -> QueryResult:
    """``run_spec`` on the store alone: Cypher on Neo4j or the built-in's Python twin."""
    if max_rows is None or timeout is None:
        settings = Settings()
        max_rows = int(settings["user_query_row_limit"]) if max_rows is None else max_rows
        timeout = float(settings["user_query_timeout_s"]) if timeout is None else timeout
    if max_rows < 1:
        raise QueryError(f"the row limit must be at least 1, got {max_rows}")
    if timeout <= 0:
        raise QueryError(f"the query timeout must be positive, got {timeout:g} s")
    bound = bind_params(spec, params or {})
    if engine not in ("auto", "cypher", "python"):
        raise QueryError(f"unknown engine {engine!r}")
    use_cypher = engine == "cypher" or (engine == "auto" and is_cypher_store(store))
    if use_cypher:
        if not is_cypher_store(store):
            raise QueryError(f"the {store.name} store cannot run Cypher")
        columns, rows, truncated = store.run_read_query(  # type: ignore[attr-defined]
            spec.cypher, bound, max_rows=max_rows, timeout=timeout, name=spec.id
        )
        return QueryResult(spec.id, columns, rows, bound, "cypher", truncated, dict(spec.nodes), max_rows)
    twin = python_twin(spec)
    if twin is None:
        raise QueryError(
            f"query {spec.id!r} is user-written Cypher, which only runs on Neo4j; "
            f"the {store.name} store has no Cypher engine (use --store bolt://HOST:PORT)"
        )
    impl = IMPLEMENTATIONS[twin]
    rows = impl.fn(store, **bound)
    truncated = len(rows) > max_rows
    return QueryResult(
        spec.id, list(impl.columns), rows[:max_rows], bound, "python", truncated, dict(spec.nodes), max_rows
    )


def run_query(
    store: GraphStore,
    query_id: str,
    params: Mapping[str, Any] | None = None,
    *,
    engine: str = "auto",
    max_rows: int | None = None,
    timeout: float | None = None,
    workspace: Path | None = None,
) -> QueryResult:
    """Run the built-in or team query ``query_id``."""
    return run_spec(store, resolve(store, query_id), params, engine=engine, max_rows=max_rows, timeout=timeout,
                    workspace=workspace)
