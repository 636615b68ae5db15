"""Is a piece of user Cypher a plain read of this database? Decided by what it does, not how it
is spelled.

Saved queries are user-written Cypher that colleagues run, so each one is vetted before it is
saved and again every time it runs. The authority is the server's own plan: ``EXPLAIN`` (with
the query's parameters) compiles the query without running it, and the plan is refused when

* Neo4j does not classify the query as read-only (``query_type`` other than ``r``);
* an operator writes (Create, Merge, Delete, Set…, Remove…, Foreach, CALL … IN TRANSACTIONS),
  is ``LoadCSV`` (server files and URLs), a schema or administration command (runtime
  SCHEMA/SYSTEM, ``AdministrationCommand``, Drop…), or any ``SHOW …``/``TERMINATE …`` command
  (SHOW TRANSACTIONS exposes colleagues' queries and parameters, SHOW SETTINGS the server's
  configuration; none is needed to investigate a graph);
* an operator runs on another database than the session's (``USE``);
* a procedure outside ``ALLOWED_PROCEDURES`` is called;
* a namespaced function that is not one of the server's built-ins is called: a plugin function
  runs arbitrary code the plan never shows (APOC's ``apoc.cypher.runFirstColumn`` runs Cypher,
  LOAD CSV included, from a string).

A plan Neo4j cannot produce (syntax error, an administration command EXPLAIN does not support)
is refused too. ``text_refusal`` is a cheap first pass on the text with comments and string
literals blanked out and backticks removed, so ``LOAD/**/CSV`` and ``CALL `dbms`.x`` read as
what they are; it gives an early, friendly message (and is all the embedded store, which has
no Cypher engine, can check), but a query it lets through still has to pass the plan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from graph.queries.library import QueryError
from graph.store import StoreError, StoreUnavailable

# Procedures a saved query may call. Each is READ mode, confined to the current database and
# returns only schema names (labels, types, property keys and how they combine), which any
# MATCH could enumerate anyway. Left out on purpose: everything in dbms.* (configuration,
# connections, components, transactions), db.stats.* (the query collector holds colleagues'
# query text), tx.*, db.clearQueryCaches and other housekeeping, db.index.* and db.await*,
# apoc.* (apoc.load.* reads files and URLs, apoc.cypher.* runs unchecked Cypher, others
# write) and gds.* (projections and algorithms that write or hold the heap).
ALLOWED_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshipTypes",
        "db.propertyKeys",
        "db.schema.visualization",
        "db.schema.nodeTypeProperties",
        "db.schema.relTypeProperties",
    }
)

# Operator families (the name before any "(…)" qualifier and the "@database" suffix).
_WRITE_OPERATOR = re.compile(
    r"^(Create|Merge|LockingMerge|Delete|DetachDelete|Set|Remove|Foreach|SubqueryForeach"
    r"|TransactionForeach|TransactionApply)"
)
_ADMIN_OPERATOR = re.compile(
    r"^(Show|Terminate|Administration|Drop|DoNothingIfExists|Alter|Grant|Revoke|Deny|Rename"
    r"|Start|Stop|Enable|Deallocate|Reallocate|Cordon)"
)
_ADMIN_RUNTIMES = frozenset({"SYSTEM", "SCHEMA"})
_QUERY_TYPES = {"r": "read", "rw": "read-write", "w": "write", "s": "schema or administration"}

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# A dotted name followed by "(": in Cypher only a namespaced function or procedure call
# (property access is never followed by a parenthesis).
_NAMESPACED_CALL = re.compile(rf"(?<![\w.$])({_NAME}(?:\s*\.\s*{_NAME})+)\s*\(")
_PROCEDURE_CALL = re.compile(rf"(?<![\w.$])CALL\s+({_NAME}(?:\s*\.\s*{_NAME})*)", re.IGNORECASE)
_PLAN_PROCEDURE = re.compile(rf"^\s*({_NAME}(?:\.{_NAME})*)\s*\(")
# Keywords of clauses a read never needs; not after "." / "$" / ":" (a property, parameter or
# label of that name) and not before ":" (a map key).
_TEXT_REFUSED = re.compile(
    r"(?<![\w.$:])(CREATE|MERGE|DELETE|DETACH|SET|REMOVE|DROP|FOREACH|LOAD\s+CSV|TERMINATE"
    r"|SHOW\s+(?:ALL|BUILT|CURRENT|DEFAULT|HOME|DATABASES?|TRANSACTIONS?|SETTINGS?|USERS?|ROLES?"
    r"|PRIVILEGES?|SERVERS?|ALIAS(?:ES)?|PROCEDURES?|FUNCTIONS?|INDEX(?:ES)?|CONSTRAINTS?)"
    r"|GRANT|REVOKE|DENY|ALTER|RENAME)\b(?!\s*:)",
    re.IGNORECASE,
)


class UnsafeCypher(QueryError):
    """User Cypher that is not a plain read of this database; the message says what it does."""


# ---- the text -------------------------------------------------------------------------------


def code_text(cypher: str) -> str:
    """``cypher`` with comments blanked, every string literal emptied and backtick quoting
    removed, so keywords and names can be searched without being fooled by either."""
    out: list[str] = []
    i, n = 0, len(cypher)
    while i < n:
        ch = cypher[i]
        if cypher.startswith("//", i):
            end = cypher.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif cypher.startswith("/*", i):
            end = cypher.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif ch in "'\"":
            j = i + 1
            while j < n and cypher[j] != ch:
                j += 2 if cypher[j] == "\\" else 1
            out.append("''")
            i = j + 1
        elif ch == "`":
            j, name = i + 1, []
            while j < n:
                if cypher.startswith("``", j):
                    name.append("`")
                    j += 2
                    continue
                if cypher[j] == "`":
                    break
                name.append(cypher[j])
                j += 1
            # A quoted name stays one word, so `My Label` cannot split into keywords.
            out.append(re.sub(r"\W", "_", "".join(name)) or "_")
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _dotted(name: str) -> str:
    return re.sub(r"\s+", "", name)


def called_names(code: str) -> set[str]:
    """Namespaced function and procedure names called in ``code`` (from ``code_text``)."""
    return {_dotted(m.group(1)) for m in _NAMESPACED_CALL.finditer(code)}


def procedure_names(code: str) -> set[str]:
    """Names after ``CALL`` in ``code`` (from ``code_text``): procedures, not subqueries."""
    return {_dotted(m.group(1)) for m in _PROCEDURE_CALL.finditer(code)}


def text_refusal(cypher: str) -> str | None:
    """Why the text alone already shows ``cypher`` is not a plain read, or None."""
    code = code_text(cypher)
    match = _TEXT_REFUSED.search(code)
    if match:
        return f"{' '.join(match.group(1).split()).upper()!r} is not allowed"
    for name in sorted(procedure_names(code)):
        if name not in ALLOWED_PROCEDURES:
            return f"calling the procedure {name!r} is not allowed"
    return None


def check_text(query_id: str, cypher: str) -> None:
    """Refuse ``cypher`` early when its text already shows it is not a plain read."""
    why = text_refusal(cypher)
    if why:
        raise UnsafeCypher(f"query {query_id!r}: saved queries are read-only; {why}")


# ---- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStep:
    """One operator of an EXPLAIN plan as the driver returns it."""

    operator: str
    """The operator's name without qualifier or database: ``Expand`` for ``Expand(All)@neo4j``."""
    database: str
    details: str
    runtime: str = ""


@dataclass(frozen=True)
class Explained:
    """What EXPLAIN said about a query: its type, the database it ran on and every operator."""

    query_type: str
    database: str
    steps: tuple[PlanStep, ...]


def plan_steps(plan: Mapping[str, Any] | None) -> tuple[PlanStep, ...]:
    """Every operator of a driver plan (``ResultSummary.plan``), depth first."""
    out: list[PlanStep] = []
    stack = [plan] if plan else []
    while stack:
        node = stack.pop()
        raw = str(node.get("operatorType") or "")
        name, _, database = raw.partition("@")
        args = node.get("args") or {}
        out.append(
            PlanStep(
                operator=name.split("(", 1)[0].strip(),
                database=database,
                details=str(args.get("Details") or ""),
                runtime=str(args.get("runtime") or ""),
            )
        )
        stack.extend(reversed(list(node.get("children") or [])))
    return tuple(out)


def plan_refusals(explained: Explained, builtin_functions: Iterable[str] | None, cypher: str = "") -> list[str]:
    """Every reason the plan is not a plain read of ``explained.database`` (empty: accepted).

    ``builtin_functions`` are the server's own function names; a namespaced call to anything
    else (seen in the query text or in an operator's details) is refused. None means the list
    is unknown, and then every namespaced function call is refused."""
    reasons: list[str] = []
    if explained.query_type != "r":
        kind = _QUERY_TYPES.get(explained.query_type, explained.query_type or "unknown")
        reasons.append(f"Neo4j classifies it as a {kind} query")
    # Function names are case-insensitive in Cypher, procedure names are not.
    builtins = frozenset(name.lower() for name in builtin_functions or ())
    procedures: set[str] = set()
    names = called_names(code_text(cypher))
    for step in explained.steps:
        op = step.operator
        if _WRITE_OPERATOR.match(op):
            reasons.append(f"it writes ({op})")
        elif op == "LoadCSV":
            reasons.append("it reads files or URLs (LOAD CSV)")
        elif op == "ProcedureCall":
            match = _PLAN_PROCEDURE.match(step.details)
            proc = match.group(1) if match else "an unreadable procedure"
            procedures.add(proc)
            if proc not in ALLOWED_PROCEDURES:
                reasons.append(f"it calls the procedure {proc}")
        elif _ADMIN_OPERATOR.match(op) or step.runtime in _ADMIN_RUNTIMES:
            reasons.append(f"it is an administration command ({op})")
        if step.database and explained.database and step.database != explained.database:
            reasons.append(f"it runs on the database {step.database!r}, not {explained.database!r}")
        names |= called_names(code_text(step.details))
    functions = sorted(n for n in names - procedures if n.lower() not in builtins)
    reasons += [f"it calls the function {name}, which is not built into Neo4j" for name in functions]
    return list(dict.fromkeys(reasons))


def check_plan(query_id: str, explained: Explained, builtin_functions: Iterable[str] | None, cypher: str = "") -> None:
    """Refuse the query unless its plan is a plain read (see the module docstring)."""
    reasons = plan_refusals(explained, builtin_functions, cypher)
    if reasons:
        raise UnsafeCypher(f"query {query_id!r}: saved queries are read-only; " + "; ".join(reasons))


# ---- vetting against a server ---------------------------------------------------------------


class ExplainingStore(Protocol):
    """What vetting needs from a store that runs Cypher (Neo4jStore)."""

    def explain_query(self, query: str, params: Mapping[str, Any], *, timeout: float) -> Explained: ...

    def builtin_functions(self) -> frozenset[str]: ...


def vet(store: ExplainingStore, query_id: str, cypher: str, params: Mapping[str, Any], *, timeout: float) -> None:
    """Refuse ``cypher`` unless it is a plain read: the text pass, then the plan."""
    check_text(query_id, cypher)
    vet_plan(store, query_id, cypher, params, timeout=timeout)


def vet_plan(
    store: ExplainingStore, query_id: str, cypher: str, params: Mapping[str, Any], *, timeout: float
) -> None:
    """Refuse ``cypher`` unless the server's plan for it with ``params`` is a plain read. A
    statement Neo4j cannot plan is refused with Neo4j's reason; an unreachable server is not a
    refusal and raises StoreUnavailable."""
    try:
        explained = store.explain_query(cypher, params, timeout=timeout)
    except StoreUnavailable:
        raise
    except StoreError as exc:
        if str(exc.cause).startswith("Neo.ClientError."):
            raise UnsafeCypher(f"query {query_id!r}: Neo4j cannot plan it, so it is not run ({exc.cause})") from None
        raise
    check_plan(query_id, explained, store.builtin_functions(), cypher)
