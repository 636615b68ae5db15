"""The Streamlit view of saved queries, driven headlessly with AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.views import queries
from graph.queries.team import get_team_query
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from tests.worlds.evidence import evidence_workspace, run_view

QUERIES_APP = "from app.views import queries\nqueries.render()\n"


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return evidence_workspace(tmp_path, monkeypatch)


_run = run_view


def test_query_form_runs_and_opens_nodes_in_the_cluster_view(workspace: Path) -> None:
    app = _run(QUERIES_APP)
    app.selectbox(key="query_pick").set_value("accounts_sharing_payment").run()
    assert app.text_input(key="param_accounts_sharing_payment_account_id").value == "acct-a1"
    app.button[0].click().run()  # the form's Run button
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    # Every node key in the table links to its pivot on the search page.
    assert list(table["account_id"]) == ["search?pivot=account:acct-a2", "search?pivot=account:acct-a3"]
    app.button(key="query_open").click().run()
    # The account asked about comes first: the result is drawn around it.
    assert app.session_state["open_in_cluster_view"] == [
        "Account|acct-a1", "Account|acct-a2", "PaymentMethod|pay-1", "Account|acct-a3"]


def test_typed_widgets_and_bad_values(workspace: Path) -> None:
    app = _run(QUERIES_APP)
    app.selectbox(key="query_pick").set_value("clusters_active_between").run()
    app.text_input(key="param_clusters_active_between_since").set_value("not a date")
    app.button[0].click().run()
    assert any("ISO-8601" in e.value for e in app.error)
    app.selectbox(key="query_pick").set_value("top_clusters").run()
    assert app.checkbox(key="param_top_clusters_flagged_only").value is False
    app.checkbox(key="param_top_clusters_flagged_only").check()
    app.button[0].click().run()
    assert list(app.dataframe[0].value["cluster_id"]) == ["cluster?cluster=c-1", "cluster?cluster=c-2"]


def test_save_as_team_query(workspace: Path) -> None:
    app = _run(QUERIES_APP)
    app.selectbox(key="query_pick").set_value("accounts_on_ip").run()
    form_inputs = [t for t in app.text_input if t.label.startswith("Id (")]
    form_inputs[0].set_value("team_exit_ip")
    save = next(b for b in app.button if b.label == "Save")
    save.click().run()
    assert not app.exception
    spec = get_team_query(EmbeddedStore(embedded_dir(workspace)), "team_exit_ip")
    assert spec is not None and spec.based_on == "accounts_on_ip" and spec.owner == "analyst"


def test_unknown_account_is_named_not_taken_for_no_path(workspace: Path) -> None:
    app = _run(QUERIES_APP)
    app.selectbox(key="query_pick").set_value("path_between_accounts").run()
    app.text_input(key="param_path_between_accounts_to_account").set_value("acct-nobody")
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert [e.value for e in app.error] == [
        "Unknown account 'acct-nobody': the graph holds no such node, so the query has nothing to start from."]


def test_query_parameters_that_name_nodes() -> None:
    from graph.queries.library import builtin_queries
    from graph.schema import Label

    specs = builtin_queries()
    on_ip = queries.param_nodes(specs["accounts_on_ip"], {"ip": "203.0.113.7"})
    assert on_ip == [(Label.IP.value, "203.0.113.7")]
    path = queries.param_nodes(specs["path_between_accounts"], {"from_account": "a", "to_account": "b", "max_hops": 6})
    assert path == [("Account", "a"), ("Account", "b")]
    assert queries.param_nodes(specs["payment_methods_by_bin"], {"card_bin": "411111"}) == []
