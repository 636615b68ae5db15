"""The foundation commands as a user runs them: the installed console script, real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SYBILSCOPE = shutil.which("sybilscope") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sybilscope")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYBILSCOPE_")}
    full_env.update(env or {})
    return subprocess.run([SYBILSCOPE, *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_settings_json_lists_every_setting_with_its_source(tmp_path: Path) -> None:
    result = run("settings", "--json", "--workspace", str(tmp_path), env={"SYBILSCOPE_BATCH_SIZE": "77"})
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["batch_size"]["value"] == 77 and rows["batch_size"]["source"] == "env SYBILSCOPE_BATCH_SIZE"
    assert rows["workspace"]["source"] == "option"
    assert rows["store"]["value"] == "embedded"
    assert all(r["help"] for r in rows.values())


def test_stats_json_on_the_embedded_store(tmp_path: Path) -> None:
    from graph.stores.embedded import EmbeddedStore
    from graph.workspace import embedded_dir

    EmbeddedStore(embedded_dir(tmp_path)).upsert_relationships(
        "USED_IP", "Account", "IP", [{"start": "a1", "end": "1.2.3.4"}]
    )
    result = run("stats", "--json", "--workspace", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"nodes": {"Account": 1, "IP": 1}, "relationships": {"USED_IP": 1}}


def test_unreachable_neo4j_is_one_line_naming_the_uri_and_the_fix(tmp_path: Path) -> None:
    result = run("stats", "--workspace", str(tmp_path), "--store", "bolt://127.0.0.1:1")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bolt://127.0.0.1:1" in lines[0] and "sybilscope neo4j start" in lines[0]
    assert "Traceback" not in result.stderr


def test_unknown_store_is_a_clear_error(tmp_path: Path) -> None:
    result = run("stats", "--workspace", str(tmp_path), "--store", "postgres://x")
    assert result.returncode != 0
    assert "unknown store 'postgres://x'" in result.stderr


@pytest.mark.parametrize(
    "command",
    ["settings", "neo4j", "generate", "load", "stats", "detect", "evaluate", "export", "query", "ui", "demo"],
)
def test_every_contract_command_is_registered(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
