"""Team queries are shared work: saving, importing, overwriting and deleting one each leave an
audit event naming the investigator, and replacing a colleague's query needs an explicit force
that the event records. Runs on both stores (the Neo4j half is marked ``neo4j``)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from graph.cases import AuditEvent, audit_trail
from graph.queries.library import QueryError
from graph.queries.team import (
    OverwriteRefused,
    delete_team_query,
    get_team_query,
    import_team_queries,
    list_team_queries,
    save_team_query,
)
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import evidence_workspace, run_view

CYPHER = "MATCH (a:Account)-[:USED_IP]->(:IP {ip: $ip}) RETURN a.account_id AS account_id"


def _raw(qid: str = "team_exit_ip", owner: str = "alice", **over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"id": qid, "name": "Accounts on an exit IP", "category": "infrastructure",
                           "description": "d", "owner": owner, "cypher": CYPHER,
                           "parameters": [{"name": "ip", "type": "string", "example": "203.0.113.7"}]}
    raw.update(over)
    return raw


def _events(store: GraphStore, action: str | None = None) -> list[AuditEvent]:
    return [e for e in audit_trail(store, action=action) if e.target.startswith("SavedQuery:")]


def test_save_is_audited(store: GraphStore) -> None:
    save_team_query(store, _raw(), who="alice")
    [event] = _events(store)
    assert (event.action, event.who, event.target) == ("query_save", "alice", "SavedQuery:team_exit_ip")
    assert event.before == {} and event.after["cypher"] == CYPHER and event.after["owner"] == "alice"


def test_overwriting_ones_own_query_is_audited_with_what_it_replaced(store: GraphStore) -> None:
    save_team_query(store, _raw(), who="alice")
    save_team_query(store, _raw(description="sharper"), who="alice")
    [event] = _events(store, "query_overwrite")
    assert event.who == "alice" and event.after["forced"] is False and event.after["via"] == "save"
    assert event.before["description"] == "d" and event.before["revision"] == 1
    assert event.after["description"] == "sharper" and event.after["revision"] == 2


def test_overwriting_a_colleagues_query_needs_force_which_is_audited(store: GraphStore) -> None:
    save_team_query(store, _raw(), who="alice")
    with pytest.raises(OverwriteRefused, match="belongs to alice.*--force"):
        save_team_query(store, _raw(owner="bob", cypher=CYPHER + " LIMIT 1"), who="bob")
    # Claiming to be the owner is not being the owner: the check is against who saves.
    with pytest.raises(OverwriteRefused):
        save_team_query(store, _raw(owner="alice", cypher=CYPHER + " LIMIT 1"), who="bob")
    kept = get_team_query(store, "team_exit_ip")
    assert kept is not None and kept.cypher == CYPHER and kept.owner == "alice" and kept.revision == 1
    assert [e.action for e in _events(store)] == ["query_save"]

    forced = save_team_query(store, _raw(owner="bob", cypher=CYPHER + " LIMIT 1"), who="bob", force=True)
    assert forced.owner == "bob" and forced.revision == 2
    [event] = _events(store, "query_overwrite")
    assert event.who == "bob" and event.after["forced"] is True
    assert event.before["owner"] == "alice" and event.before["cypher"] == CYPHER


def test_import_is_audited_and_refuses_a_colleagues_query_without_force(store: GraphStore, tmp_path: Path) -> None:
    save_team_query(store, _raw("team_alices", owner="alice"), who="alice")
    files = tmp_path / "in"
    files.mkdir()
    (files / "a.yaml").write_text(yaml.safe_dump(_raw("team_new_one", owner="bob")))
    (files / "b.yaml").write_text(yaml.safe_dump(_raw("team_alices", owner="bob", description="bob's")))
    with pytest.raises(OverwriteRefused, match="team_alices"):
        import_team_queries(store, [files], who="bob")
    # All or nothing: the file that was fine is not imported either.
    assert sorted(s.id for s in list_team_queries(store)) == ["team_alices"]
    assert [e.action for e in _events(store)] == ["query_save"]

    import_team_queries(store, [files], who="bob", force=True)
    imported = [e for e in _events(store) if e.action != "query_save"]
    assert sorted((e.action, e.target, e.who) for e in imported) == [
        ("query_import", "SavedQuery:team_new_one", "bob"),
        ("query_overwrite", "SavedQuery:team_alices", "bob"),
    ]
    over = next(e for e in imported if e.action == "query_overwrite")
    assert over.after["via"] == "import" and over.after["forced"] is True and over.before["owner"] == "alice"


def test_delete_is_audited_and_the_definition_stays_readable(store: GraphStore) -> None:
    save_team_query(store, _raw(), who="alice")
    assert delete_team_query(store, "team_exit_ip", who="carol")
    assert get_team_query(store, "team_exit_ip") is None
    [event] = _events(store, "query_delete")
    assert event.who == "carol" and event.after == {}
    assert event.before["cypher"] == CYPHER and event.before["owner"] == "alice"
    # Deleting what is not there changes nothing and records nothing.
    assert not delete_team_query(store, "team_exit_ip", who="carol")
    assert len(_events(store, "query_delete")) == 1


def test_an_unsafe_query_is_not_saved_nor_audited(store: GraphStore) -> None:
    with pytest.raises(QueryError, match="read-only"):
        save_team_query(store, _raw(cypher="LOAD/**/CSV FROM $ip AS row RETURN row"), who="alice")
    assert list_team_queries(store) == [] and _events(store) == []


# ---- the command line: who is the operating-system user -------------------------------------


@pytest.fixture()
def cli_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("SYBILSCOPE_STORE", "SYBILSCOPE_WORKSPACE", "SYBILSCOPE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "ws"


def _cli(workspace: Path, *args: str) -> tuple[int, str]:
    from app.cli import main

    result = CliRunner().invoke(main, [*args, "--workspace", str(workspace)])
    return result.exit_code, result.stderr


def test_cli_import_overwrite_and_delete_are_audited_as_the_os_user(cli_workspace: Path, tmp_path: Path) -> None:
    me = getpass.getuser()
    store = EmbeddedStore(cli_workspace / "embedded")
    save_team_query(store, _raw(owner="carol"), who="carol")
    src = tmp_path / "q.yaml"
    src.write_text(yaml.safe_dump(_raw(owner="", description="mine now")))

    code, err = _cli(cli_workspace, "query", "import", str(src))
    assert code != 0 and "belongs to carol" in err and "--force" in err and len(err.strip().splitlines()) == 1
    # --owner is only the name recorded on the query; it does not make the importer the owner.
    code, err = _cli(cli_workspace, "query", "import", str(src), "--owner", "carol")
    assert code != 0 and "belongs to carol" in err

    code, err = _cli(cli_workspace, "query", "import", str(src), "--force")
    assert code == 0, err
    store = EmbeddedStore(cli_workspace / "embedded")
    [over] = _events(store, "query_overwrite")
    assert over.who == me and over.after["forced"] is True and over.before["owner"] == "carol"
    assert over.after["owner"] == me and over.after["description"] == "mine now"

    code, err = _cli(cli_workspace, "query", "delete", "team_exit_ip")
    assert code == 0, err
    [gone] = _events(EmbeddedStore(cli_workspace / "embedded"), "query_delete")
    assert gone.who == me and gone.before["description"] == "mine now"


def test_cli_import_of_a_new_query_is_audited(cli_workspace: Path, tmp_path: Path) -> None:
    src = tmp_path / "q.yaml"
    src.write_text(yaml.safe_dump(_raw(owner="")))
    code, err = _cli(cli_workspace, "query", "import", str(src))
    assert code == 0, err
    [event] = _events(EmbeddedStore(cli_workspace / "embedded"))
    assert event.action == "query_import" and event.who == getpass.getuser()
    assert json.loads(json.dumps(event.after))["cypher"] == CYPHER


# ---- the UI: who is the signed-in investigator ----------------------------------------------

QUERIES_APP = "from app.views import queries\nqueries.render()\n"


def _ui_save(force: bool) -> Any:
    app = run_view(QUERIES_APP)
    app.selectbox(key="query_pick").set_value("accounts_on_ip").run()
    next(t for t in app.text_input if t.label.startswith("Id (")).set_value("team_exit_ip")
    if force:
        app.checkbox(key="save_team_query_force").check()
    next(b for b in app.button if b.label == "Save").click().run()
    assert not app.exception, app.exception
    return app


def test_ui_overwrite_of_a_colleagues_query_needs_the_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = evidence_workspace(tmp_path, monkeypatch)
    save_team_query(EmbeddedStore(ws / "embedded"), _raw(owner="carol"), who="carol")

    app = _ui_save(force=False)
    assert any("belongs to carol" in e.value for e in app.error)
    store = EmbeddedStore(ws / "embedded")
    kept = get_team_query(store, "team_exit_ip")
    assert kept is not None and kept.owner == "carol" and kept.based_on == ""

    app = _ui_save(force=True)
    assert not app.error
    store = EmbeddedStore(ws / "embedded")
    saved = get_team_query(store, "team_exit_ip")
    assert saved is not None and saved.owner == "analyst" and saved.based_on == "accounts_on_ip"
    [event] = _events(store, "query_overwrite")
    assert event.who == "analyst" and event.after["forced"] is True and event.before["owner"] == "carol"
