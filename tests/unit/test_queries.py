"""The saved-query library: definitions, typed parameters, the embedded implementations,
team queries, and the hostile inputs (names, parameter values) that must be refused or treated
as data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from graph.queries.embedded import IMPLEMENTATIONS
from graph.queries.library import (
    PARAM_TYPES,
    QUERY_ID,
    QueryError,
    bind_params,
    builtin_queries,
    check_query_id,
    parse_assignments,
    spec_from_dict,
)
from graph.queries.runner import all_queries, run_query
from graph.queries.team import (
    export_team_queries,
    get_team_query,
    import_team_queries,
    list_team_queries,
    save_team_query,
)
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import HUB_IP, build_world


@pytest.fixture(scope="module")
def world() -> EmbeddedStore:
    store = EmbeddedStore(None)
    build_world(store)
    return store


def _minimal(**over: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "id": "team_accounts_on_ip", "name": "n", "category": "c", "description": "d",
        "parameters": [{"name": "ip", "type": "string", "example": "1.2.3.4"}],
        "cypher": "MATCH (a:Account)-[:USED_IP]->(:IP {ip: $ip}) RETURN a.account_id AS account_id",
        "owner": "alice",
    }
    raw.update(over)
    return raw


# ---- definitions ------------------------------------------------------------------------------


def test_at_least_fifteen_builtins_each_valid_with_a_python_twin() -> None:
    specs = builtin_queries()
    assert len(specs) >= 15
    assert set(specs) == set(IMPLEMENTATIONS)
    for spec in specs.values():
        assert QUERY_ID.fullmatch(spec.id)
        assert spec.name and spec.category and spec.description and spec.cypher
        assert all(p.type in PARAM_TYPES for p in spec.parameters)
        assert spec.nodes, f"{spec.id} declares no node columns for the graph view"
        assert "$" in spec.cypher or not spec.parameters
        for p in spec.parameters:  # every parameter reaches the Cypher as a parameter
            assert f"${p.name}" in spec.cypher, (spec.id, p.name)


def test_every_builtin_finds_rows_with_its_example_parameters(world: EmbeddedStore) -> None:
    for spec in builtin_queries().values():
        result = run_query(world, spec.id, spec.example_params())
        assert result.rows, f"{spec.id} found nothing with its example parameters"
        assert result.columns == list(IMPLEMENTATIONS[spec.id].columns)
        assert all(list(row) == result.columns for row in result.rows)
        assert result.engine == "python"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_minimal(id="Bad-Id"), "invalid query id"),
        (_minimal(parameters=[{"name": "ip", "type": "blob", "example": 1}]), "has type 'blob'"),
        (_minimal(parameters=[{"name": "ip", "type": "int"}]), "needs an example"),
        (_minimal(parameters=[{"name": "ip", "type": "int", "example": "x"}]), "not an integer"),
        (_minimal(parameters=[{"name": "ip; x", "type": "int", "example": 1}]), "invalid parameter name"),
        (_minimal(cypher=""), "'cypher' must be"),
        (_minimal(nodes={"a": "NotALabel"}), "unknown node label"),
        (_minimal(revision=0), "revision"),
    ],
)
def test_invalid_definitions_are_refused(raw: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        spec_from_dict(raw)


# ---- parameters -------------------------------------------------------------------------------


def test_parameters_are_typed_from_text() -> None:
    spec = builtin_queries()["accounts_on_asn"]
    bound = bind_params(spec, {"asn": "64500", "kinds": "hosting, proxy", "since": "2025-04-22",
                               "until": "2025-06-05T23:59:59+02:00"})
    assert bound == {"asn": "64500", "kinds": ["hosting", "proxy"], "since": "2025-04-22T00:00:00Z",
                     "until": "2025-06-05T21:59:59Z"}
    assert bind_params(spec, {**bound, "kinds": '["vpn"]'})["kinds"] == ["vpn"]
    top = builtin_queries()["top_clusters"]
    assert bind_params(top, {"flagged_only": "yes", "min_score": "0.25"}) == {
        "min_score": 0.25, "flagged_only": True, "limit": 50}


@pytest.mark.parametrize(
    ("query_id", "params", "message"),
    [
        ("top_clusters", {"limit": "ten"}, "not an integer"),
        ("top_clusters", {"limit": "-1"}, "below the minimum"),
        ("top_clusters", {"min_score": "nan"}, "not a finite number"),
        ("top_clusters", {"flagged_only": "maybe"}, "not a boolean"),
        ("top_clusters", {"limit": True}, "boolean"),
        ("clusters_active_between", {"since": "last tuesday", "until": "2025-01-01"}, "not an ISO-8601"),
        ("accounts_on_ip", {}, "needs parameter 'ip'"),
        ("accounts_on_ip", {"ip": "1.2.3.4", "extra": "1"}, "no parameter extra"),
        ("path_between_accounts", {"from_account": "a", "to_account": "b", "max_hops": "99"}, "above the maximum"),
    ],
)
def test_bad_parameter_values_are_refused(world: EmbeddedStore, query_id: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        run_query(world, query_id, params)


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(QueryError):
        parse_assignments(["novalue"])


# ---- injection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["accounts_on_ip; MATCH (n) DETACH DELETE n", "../../etc/passwd", "accounts_on_ip' OR 1=1 --", "ACCOUNTS_ON_IP",
     "", "a", "x" * 65, "accounts on ip", "accounts_on_ip\n"],
)
def test_query_names_must_match_the_strict_id(world: EmbeddedStore, name: str) -> None:
    with pytest.raises(QueryError, match="invalid query id"):
        run_query(world, name, {})


@pytest.mark.parametrize(
    "payload",
    ["' OR 1=1 //", "x'}) MATCH (n) DETACH DELETE n //", "203.0.113.7' OR '1'='1", "$ip", "\\u0027"],
)
def test_cypher_injection_in_parameters_is_only_data(world: EmbeddedStore, payload: str) -> None:
    before = world.counts()
    assert run_query(world, "accounts_on_ip", {"ip": payload}).rows == []
    assert run_query(world, "cluster_members", {"cluster_id": payload}).rows == []
    assert world.counts() == before


def test_unknown_query_is_a_clear_error(world: EmbeddedStore) -> None:
    with pytest.raises(QueryError, match="no saved query 'nope_nope'"):
        run_query(world, "nope_nope", {})


def test_check_query_id_accepts_a_plain_id() -> None:
    assert check_query_id("accounts_on_ip") == "accounts_on_ip"


# ---- what the built-ins find -----------------------------------------------------------------


def test_shared_infrastructure_skips_hubs(world: EmbeddedStore) -> None:
    rows = run_query(world, "shared_infrastructure", {"account_id": "acct-a1"}).rows
    entities = {e for r in rows for e in r["entities"]}
    assert f"IP:{HUB_IP}" not in entities and "IP:203.0.113.7" in entities
    with_hubs = run_query(world, "shared_infrastructure", {"account_id": "acct-a1", "max_accounts": 100}).rows
    assert f"IP:{HUB_IP}" in {e for r in with_hubs for e in r["entities"]}


def test_new_accounts_on_operator_infrastructure_finds_the_newcomer(world: EmbeddedStore) -> None:
    rows = run_query(world, "new_accounts_on_operator_infrastructure",
                     {"operator_id": "op-alpha", "since": "2025-05-01T00:00:00Z"}).rows
    assert rows == [{"account_id": "acct-n1", "created_at": "2025-05-20T12:00:00Z", "shared_entities": 2, "known_accounts": 4}]


def test_path_between_accounts_goes_through_the_shared_ip(world: EmbeddedStore) -> None:
    result = run_query(world, "path_between_accounts", {"from_account": "acct-a1", "to_account": "acct-c1"})
    assert [(r["label"], r["key"]) for r in result.rows] == [("Account", "acct-a1"), ("IP", "192.0.2.1"), ("Account", "acct-c1")]
    assert result.node_refs() == [("Account", "acct-a1"), ("IP", "192.0.2.1"), ("Account", "acct-c1")]


def test_clusters_of_operator_confirmed_and_suggested(world: EmbeddedStore) -> None:
    confirmed = run_query(world, "clusters_of_operator", {"operator_id": "op-alpha"}).rows
    assert [(r["cluster_id"], r["kind"]) for r in confirmed] == [("c-1", "confirmed")]
    both = run_query(world, "clusters_of_operator", {"operator_id": "op-alpha", "include_suggested": "true"}).rows
    assert [(r["cluster_id"], r["kind"]) for r in both] == [("c-1", "confirmed"), ("c-1", "suggested"), ("c-2", "suggested")]


def test_node_refs_cover_list_columns(world: EmbeddedStore) -> None:
    result = run_query(world, "shared_devices", {})
    assert ("Device", "dev-2") in result.node_refs() and ("Account", "acct-b3") in result.node_refs()


# ---- team queries -----------------------------------------------------------------------------


def test_team_query_round_trip_through_yaml(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "a")
    spec = save_team_query(store, _minimal())
    assert spec.owner == "alice" and not spec.builtin
    again = save_team_query(store, _minimal(description="changed"))
    assert again.revision == 2
    files = export_team_queries(store, tmp_path / "out")
    assert [f.name for f in files] == ["team_accounts_on_ip.yaml"]
    other = EmbeddedStore(tmp_path / "b")
    imported = import_team_queries(other, files)
    assert [s.id for s in imported] == ["team_accounts_on_ip"]
    got = get_team_query(other, "team_accounts_on_ip")
    assert got is not None and got.description == "changed" and got.owner == "alice"
    assert "team_accounts_on_ip" in all_queries(other)


def test_team_queries_cannot_shadow_builtins_or_write(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    with pytest.raises(QueryError, match="built-in"):
        save_team_query(store, _minimal(id="accounts_on_ip"))
    with pytest.raises(QueryError, match="read-only"):
        save_team_query(store, _minimal(cypher="MATCH (n) DETACH DELETE n"))
    with pytest.raises(QueryError, match="needs an owner"):
        save_team_query(store, _minimal(owner=""))
    assert list_team_queries(store) == []


def test_import_is_all_or_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_minimal()))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_minimal(id="team_bad", parameters=[{"name": "x", "type": "int", "example": "no"}])))
    store = EmbeddedStore(tmp_path / "s")
    with pytest.raises(QueryError, match="bad.yaml"):
        import_team_queries(store, [good, bad])
    assert list_team_queries(store) == []


def test_user_written_cypher_is_refused_on_the_embedded_store(world: EmbeddedStore, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    build_world(store)
    save_team_query(store, _minimal())
    with pytest.raises(QueryError, match="only runs on Neo4j"):
        run_query(store, "team_accounts_on_ip", {"ip": "203.0.113.7"})


def test_team_copy_of_a_builtin_runs_on_the_embedded_store(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s")
    build_world(store)
    base = builtin_queries()["accounts_on_ip"].to_dict()
    save_team_query(store, {**base, "id": "proxy_exit_ip", "based_on": "accounts_on_ip", "owner": "bob",
                            "parameters": [{"name": "ip", "type": "string", "example": "203.0.113.7"}]})
    result = run_query(store, "proxy_exit_ip", {"ip": "203.0.113.7"})
    assert [r["account_id"] for r in result.rows] == ["acct-a1", "acct-a2", "acct-a4", "acct-n1"]
    # once its Cypher is edited it is user-written: no Python twin any more
    save_team_query(store, {**base, "id": "proxy_exit_ip", "based_on": "accounts_on_ip", "owner": "bob",
                            "cypher": base["cypher"] + " LIMIT 1"})
    with pytest.raises(QueryError, match="only runs on Neo4j"):
        run_query(store, "proxy_exit_ip", {"ip": "203.0.113.7"})
