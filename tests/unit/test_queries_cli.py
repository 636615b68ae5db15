"""``sybilscope query …`` as a user runs it: list, show, run with typed parameters, share team
queries through YAML files, and one-line errors for bad names and values."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from app.cli import main
from graph.stores.embedded import EmbeddedStore
from graph.workspace import embedded_dir
from tests.worlds.evidence import build_world

SYBILSCOPE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sybilscope")


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("SYBILSCOPE_STORE", "SYBILSCOPE_WORKSPACE", "SYBILSCOPE_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    build_world(EmbeddedStore(embedded_dir(tmp_path)))
    return tmp_path


def _cli(workspace: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--workspace", str(workspace)])
    return result.exit_code, result.stdout, result.stderr


def test_query_list_json(workspace: Path) -> None:
    code, out, _ = _cli(workspace, "query", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) >= 15 and all(r["source"] == "builtin" for r in rows)
    ip = next(r for r in rows if r["id"] == "accounts_on_ip")
    assert ip["parameters"] == [{"name": "ip", "type": "string", "example": "203.0.113.7"}]


def test_query_run_with_params_json(workspace: Path) -> None:
    code, out, err = _cli(workspace, "query", "run", "accounts_sharing_payment", "--param", "account_id=acct-a1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["columns"] == ["account_id", "payment_id", "card_bin", "created_at"]
    assert [r["account_id"] for r in data["rows"]] == ["acct-a2", "acct-a3"]
    code, out, _ = _cli(workspace, "query", "run", "top_clusters", "--param", "flagged_only=true", "--param", "min_score=0.8", "--json")
    assert code == 0 and [r["cluster_id"] for r in json.loads(out)["rows"]] == ["c-1"]


def test_query_run_table_and_example(workspace: Path) -> None:
    code, out, _ = _cli(workspace, "query", "run", "shared_devices", "--example")
    assert code == 0 and "dev-2" in out and "acct-b3" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "run", "x; MATCH (n) DETACH DELETE n"], "invalid query id"),
        (["query", "run", "top_clusters", "--param", "limit=lots"], "not an integer"),
        (["query", "run", "top_clusters", "--param", "nolimit"], "NAME=VALUE"),
        (["query", "run", "accounts_on_ip"], "needs parameter 'ip'"),
    ],
)
def test_bad_names_and_values_fail_with_one_line(workspace: Path, args: list[str], message: str) -> None:
    code, _, err = _cli(workspace, *args)
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_team_queries_import_export_show_delete(workspace: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "q.yaml").write_text(yaml.safe_dump({
        "id": "big_cards", "name": "Cards behind many accounts", "category": "payment", "description": "d",
        "parameters": [{"name": "n", "type": "int", "example": 2}],
        "cypher": "MATCH (p:PaymentMethod)<-[:PAID_WITH]-(a) WITH p, count(a) AS n WHERE n >= $n RETURN p.payment_id AS payment_id",
    }))
    code, _, err = _cli(workspace, "query", "import", str(src), "--owner", "carol")
    assert code == 0, err
    code, out, _ = _cli(workspace, "query", "list", "--json")
    team = [r for r in json.loads(out) if r["source"] == "team"]
    assert [(r["id"], r["owner"]) for r in team] == [("big_cards", "carol")]
    code, out, _ = _cli(workspace, "query", "show", "big_cards")
    assert code == 0 and yaml.safe_load(out)["cypher"].startswith("MATCH (p:PaymentMethod)")
    code, _, err = _cli(workspace, "query", "run", "big_cards", "--param", "n=2")
    assert code != 0 and "only runs on Neo4j" in err
    code, _, _ = _cli(workspace, "query", "export", "-o", str(tmp_path / "out"))
    assert code == 0 and yaml.safe_load((tmp_path / "out" / "big_cards.yaml").read_text())["owner"] == "carol"
    code, _, _ = _cli(workspace, "query", "delete", "big_cards")
    assert code == 0
    code, _, err = _cli(workspace, "query", "delete", "big_cards")
    assert code != 0 and "no team query" in err


def test_installed_script_runs_a_query(workspace: Path) -> None:
    result = subprocess.run(
        [SYBILSCOPE, "query", "run", "accounts_on_ip", "--param", "ip=203.0.113.7", "--json", "--workspace", str(workspace)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert [r["account_id"] for r in json.loads(result.stdout)["rows"]] == ["acct-a1", "acct-a2", "acct-a4", "acct-n1"]
