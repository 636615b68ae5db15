"""Query definitions: load and validate the YAML query files and type-check parameters.

A query file holds one query::

    id: accounts_on_ip            # strict id: lower-case letters, digits, underscores
    name: Accounts on an IP
    category: infrastructure
    description: ...
    revision: 1
    parameters:
      - {name: ip, type: string, example: "203.0.113.7", description: ...}
      - {name: limit, type: int, example: 50, default: 100}
    cypher: |
      MATCH ... WHERE x = $ip RETURN ...
    nodes: {account_id: Account}  # result columns holding node keys, for the graph view

Parameter values never reach query text: they are parsed to their declared type here and sent
as Cypher parameters (or Python arguments on the embedded store), so an injection string in a
parameter is only ever data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from graph.schema import SchemaError, check_label

QUERY_ID = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
PARAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
PARAM_TYPES = ("string", "int", "float", "bool", "datetime", "list[string]")
MAX_STRING = 2000
MAX_LIST = 1000
BUILTIN_DIR = Path(__file__).parent / "builtin"


class QueryError(ValueError):
    """A query definition or a parameter value is invalid; the message says which and why."""


def check_query_id(query_id: str) -> str:
    """Return ``query_id`` if it matches the strict id pattern, else raise QueryError."""
    if not isinstance(query_id, str) or not QUERY_ID.fullmatch(query_id):
        raise QueryError(
            f"invalid query id {query_id!r}: use 2-64 lower-case letters, digits and underscores, "
            "starting with a letter"
        )
    return query_id


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    example: Any
    description: str = ""
    default: Any = None
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "example": self.example}
        if self.description:
            out["description"] = self.description
        if not self.required:
            out["default"] = self.default
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        return out


@dataclass(frozen=True)
class QuerySpec:
    id: str
    name: str
    category: str
    description: str
    parameters: tuple[Parameter, ...]
    cypher: str
    revision: int = 1
    nodes: dict[str, str] = field(default_factory=dict)
    """Result column -> label, for columns whose values are node keys (or lists of them);
    ``"@col"`` instead of a label means the label is in column ``col`` of the same row."""
    owner: str = ""
    based_on: str = ""
    """For a team query: the built-in whose Python implementation runs it on the embedded store."""
    builtin: bool = True

    def example_params(self) -> dict[str, Any]:
        return {p.name: p.example for p in self.parameters}

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (also the team-query export format)."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "revision": self.revision,
            "parameters": [p.to_dict() for p in self.parameters],
            "cypher": self.cypher,
        }
        if self.nodes:
            out["nodes"] = dict(self.nodes)
        if self.owner:
            out["owner"] = self.owner
        if self.based_on:
            out["based_on"] = self.based_on
        return out


# ---- parameter values -----------------------------------------------------------------------


def _parse_datetime(name: str, raw: Any) -> str:
    """An ISO-8601 datetime (or date) as the schema's UTC text, so it compares as text."""
    if isinstance(raw, datetime):
        value = raw
    else:
        text = str(raw).strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"parameter {name!r}: {raw!r} is not an ISO-8601 datetime") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off"}:
        return False
    raise QueryError(f"parameter {name!r}: {raw!r} is not a boolean (true/false)")


def _parse_int(name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise QueryError(f"parameter {name!r}: expected an integer, got a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    try:
        return int(str(raw).strip())
    except ValueError:
        raise QueryError(f"parameter {name!r}: {raw!r} is not an integer") from None


def _parse_float(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise QueryError(f"parameter {name!r}: expected a number, got a boolean")
    try:
        value = float(raw if isinstance(raw, int | float) else str(raw).strip())
    except ValueError:
        raise QueryError(f"parameter {name!r}: {raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise QueryError(f"parameter {name!r}: {raw!r} is not a finite number")
    return value


def _parse_string(name: str, raw: Any) -> str:
    if isinstance(raw, bool | list | dict | tuple):
        raise QueryError(f"parameter {name!r}: expected a string, got {type(raw).__name__}")
    text = str(raw)
    if len(text) > MAX_STRING:
        raise QueryError(f"parameter {name!r}: longer than {MAX_STRING} characters")
    return text


def _parse_list(name: str, raw: Any) -> list[str]:
    """A list of strings: a real list, a JSON array, or comma-separated text."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except ValueError:
                raise QueryError(f"parameter {name!r}: {raw!r} is not a JSON list") from None
        else:
            raw = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(raw, list | tuple):
        raise QueryError(f"parameter {name!r}: expected a list of strings")
    if len(raw) > MAX_LIST:
        raise QueryError(f"parameter {name!r}: more than {MAX_LIST} items")
    return [_parse_string(name, item) for item in raw]


_PARSERS = {
    "string": _parse_string,
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "datetime": _parse_datetime,
    "list[string]": _parse_list,
}


def parse_value(param: Parameter, raw: Any) -> Any:
    """``raw`` (text from the CLI or a form, or a typed value) as the parameter's type, within
    its declared bounds."""
    value: Any = _PARSERS[param.type](param.name, raw)
    if param.minimum is not None and value < param.minimum:
        raise QueryError(f"parameter {param.name!r}: {value} is below the minimum {param.minimum:g}")
    if param.maximum is not None and value > param.maximum:
        raise QueryError(f"parameter {param.name!r}: {value} is above the maximum {param.maximum:g}")
    return value


def bind_params(spec: QuerySpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of ``spec`` typed and validated: given values parsed, defaults filled,
    unknown names and missing required values refused."""
    unknown = sorted(set(given) - {p.name for p in spec.parameters})
    if unknown:
        known = ", ".join(p.name for p in spec.parameters) or "none"
        raise QueryError(f"query {spec.id!r} has no parameter {', '.join(unknown)} (parameters: {known})")
    out: dict[str, Any] = {}
    for param in spec.parameters:
        if param.name in given and given[param.name] is not None:
            out[param.name] = parse_value(param, given[param.name])
        elif not param.required:
            out[param.name] = None if param.default is None else parse_value(param, param.default)
        else:
            raise QueryError(f"query {spec.id!r} needs parameter {param.name!r} ({param.type})")
    return out


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=v", …]`` from the command line as a dict (values stay text until typed)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise QueryError(f"--param expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value
    return out


# ---- definitions ----------------------------------------------------------------------------


def _parameter(qid: str, raw: Any) -> Parameter:
    if not isinstance(raw, Mapping):
        raise QueryError(f"query {qid!r}: each parameter must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not PARAM_NAME.fullmatch(name):
        raise QueryError(f"query {qid!r}: invalid parameter name {name!r}")
    ptype = raw.get("type")
    if ptype not in PARAM_TYPES:
        raise QueryError(f"query {qid!r}: parameter {name!r} has type {ptype!r}; one of {', '.join(PARAM_TYPES)}")
    if "example" not in raw:
        raise QueryError(f"query {qid!r}: parameter {name!r} needs an example value")
    required = "default" not in raw
    bounds: dict[str, Any] = {}
    for key, attr in (("min", "minimum"), ("max", "maximum")):
        if raw.get(key) is not None:
            if ptype not in ("int", "float") or isinstance(raw[key], bool) or not isinstance(raw[key], int | float):
                raise QueryError(f"query {qid!r}: parameter {name!r}: {key} needs a numeric int/float parameter")
            bounds[attr] = float(raw[key])
    probe = Parameter(name, str(ptype), raw["example"], **bounds)
    example = parse_value(probe, raw["example"])
    default = None if required or raw["default"] is None else parse_value(probe, raw["default"])
    return Parameter(name, str(ptype), example, str(raw.get("description") or ""), default, required, **bounds)


def spec_from_dict(raw: Any, *, builtin: bool = True) -> QuerySpec:
    """Validate one query definition (from YAML or a SavedQuery node) into a QuerySpec."""
    if not isinstance(raw, Mapping):
        raise QueryError("a query definition must be a mapping")
    qid = check_query_id(raw.get("id", ""))
    for key in ("name", "category", "description", "cypher"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise QueryError(f"query {qid!r}: {key!r} must be a non-empty string")
    params = tuple(_parameter(qid, p) for p in raw.get("parameters") or [])
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise QueryError(f"query {qid!r}: duplicate parameter names")
    revision = raw.get("revision", 1)
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        raise QueryError(f"query {qid!r}: revision must be a positive integer")
    nodes = raw.get("nodes") or {}
    if not isinstance(nodes, Mapping):
        raise QueryError(f"query {qid!r}: 'nodes' must map result columns to labels")
    try:
        # "@column" names the result column that holds each row's label (paths mix labels).
        node_map = {
            str(col): str(lab) if str(lab).startswith("@") else check_label(str(lab)).value
            for col, lab in nodes.items()
        }
    except SchemaError as exc:
        raise QueryError(f"query {qid!r}: {exc}") from None
    based_on = str(raw.get("based_on") or "")
    if based_on:
        check_query_id(based_on)
    return QuerySpec(
        id=qid,
        name=raw["name"].strip(),
        category=raw["category"].strip(),
        description=raw["description"].strip(),
        parameters=params,
        cypher=raw["cypher"].strip(),
        revision=revision,
        nodes=node_map,
        owner=str(raw.get("owner") or ""),
        based_on=based_on,
        builtin=builtin,
    )


def load_file(path: Path, *, builtin: bool = True) -> QuerySpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise QueryError(f"{path.name}: not valid YAML ({exc})") from None
    try:
        return spec_from_dict(raw, builtin=builtin)
    except QueryError as exc:
        raise QueryError(f"{path.name}: {exc}") from None


_BUILTINS: dict[str, QuerySpec] | None = None


def builtin_queries() -> dict[str, QuerySpec]:
    """Every built-in query by id (loaded once; file name must equal the id)."""
    global _BUILTINS
    if _BUILTINS is None:
        out: dict[str, QuerySpec] = {}
        for path in sorted(BUILTIN_DIR.glob("*.yaml")):
            spec = load_file(path)
            if spec.id != path.stem:
                raise QueryError(f"{path.name}: id {spec.id!r} does not match the file name")
            out[spec.id] = spec
        _BUILTINS = out
    return dict(_BUILTINS)
