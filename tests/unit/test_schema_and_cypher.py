from __future__ import annotations

import re

import pytest

from graph import cypher
from graph.schema import (
    KEY_PROPERTY,
    RELATIONSHIPS,
    Label,
    Rel,
    SchemaError,
    check_label,
    check_property_value,
    check_rel_spec,
    check_rel_type,
)


def test_every_label_has_a_key_and_every_type_a_spec() -> None:
    assert set(KEY_PROPERTY) == set(Label)
    assert {spec.type for spec in RELATIONSHIPS} == set(Rel)


@pytest.mark.parametrize("bad", ["account", "Account`) MATCH (x", "", "Account:IP"])
def test_labels_outside_the_whitelist_are_refused(bad: str) -> None:
    with pytest.raises(SchemaError):
        check_label(bad)


def test_types_and_specs_are_checked() -> None:
    assert check_rel_type("USED_IP") is Rel.USED_IP
    with pytest.raises(SchemaError):
        check_rel_type("USED_IP]->() DELETE n//")
    check_rel_spec("LINKED", "Account", "Account")
    with pytest.raises(SchemaError):
        check_rel_spec("LINKED", "Account", "IP")


@pytest.mark.parametrize("value", ["x", 1, 1.5, True, ["a", "b"], [1, 2], [], None])
def test_storable_values(value: object) -> None:
    check_property_value("p", value)


@pytest.mark.parametrize("value", [{"a": 1}, [1, "a"], [True, 1], [[1]], object()])
def test_unstorable_values(value: object) -> None:
    with pytest.raises(SchemaError):
        check_property_value("p", value)


def test_schema_statements_cover_every_key_and_are_idempotent() -> None:
    statements = cypher.schema_statements()
    for label, prop in KEY_PROPERTY.items():
        assert any(f"(n:`{label.value}`) REQUIRE n.`{prop}` IS UNIQUE" in s for s in statements)
    assert all("IF NOT EXISTS" in s for s in statements)


def test_builders_put_values_in_parameters_only() -> None:
    query = cypher.merge_nodes("Account")
    assert "$rows" in query and "row.key" in query
    assert cypher.find_nodes("Account", ["country"], True).count("$where") == 1
    with pytest.raises(ValueError):
        cypher.find_nodes("Account", ["country = 'x' OR 1=1 //"], False)
    with pytest.raises(SchemaError):
        cypher.merge_relationships("LINKED`]->() DETACH DELETE a //", "Account", "Account")
    with pytest.raises(ValueError):
        cypher.shortest_path(["USED_IP"], 99)


def test_all_cypher_lives_in_one_module() -> None:
    """No other module under graph/ or app/ or loaders/ builds MATCH/MERGE text of its own."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"[\"'](?:MATCH|MERGE|UNWIND|CREATE CONSTRAINT|DETACH DELETE)\b")
    allowed = {root / "graph" / "cypher.py"}
    allowed_dirs = {root / "graph" / "queries"}  # saved queries are Cypher by nature (YAML + runner)
    offenders = [
        str(path.relative_to(root))
        for package in ("graph", "app", "loaders")
        for path in (root / package).rglob("*.py")
        if path not in allowed
        and not any(d in path.parents for d in allowed_dirs)
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_property_names_with_a_trailing_newline_are_refused() -> None:
    with pytest.raises(ValueError):
        cypher.property_name("country\n")
