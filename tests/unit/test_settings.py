from __future__ import annotations

import pytest

from graph.settings import SETTINGS, Settings


def test_every_setting_has_help_and_an_env_var() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert s.help.strip(), s.name
        assert s.env_var == "SYBILSCOPE_" + s.name.upper()


def test_defaults_env_and_overrides_in_order_of_precedence() -> None:
    env = {"SYBILSCOPE_STORE": "bolt://db:7687", "SYBILSCOPE_BATCH_SIZE": "123"}
    settings = Settings({"workspace": "/tmp/ws"}, environ=env)
    assert settings["store"] == "bolt://db:7687" and settings.source("store") == "env SYBILSCOPE_STORE"
    assert settings["batch_size"] == 123
    assert settings["workspace"] == "/tmp/ws" and settings.source("workspace") == "option"
    assert settings["neo4j_database"] == "neo4j" and settings.source("neo4j_database") == "default"
    assert settings.is_neo4j
    assert Settings({"store": "bolt://x", "batch_size": None}, environ=env)["batch_size"] == 123


def test_empty_env_value_means_unset() -> None:
    assert Settings(environ={"SYBILSCOPE_STORE": ""})["store"] == "embedded"


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(ValueError, match="SYBILSCOPE_BATCH_SIZE"):
        Settings(environ={"SYBILSCOPE_BATCH_SIZE": "lots"})


def test_secrets_are_masked_in_rows() -> None:
    rows = {r["name"]: r for r in Settings(environ={"SYBILSCOPE_NEO4J_PASSWORD": "hunter2"}).rows()}
    assert rows["neo4j_password"]["value"] == "********"
    assert "hunter2" not in str(rows)


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(KeyError):
        Settings(environ={})["nope"]
