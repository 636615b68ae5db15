"""Where detection's pair stages run: in this process (``local``) or on Apache Spark (``spark``).

The setting ``engine`` picks one; ``open_engine(settings)`` gives an object with
``link_accounts(facts, cap, timings, keep_floor, phase) -> Evidence`` and closes it (the Spark
session with it) when the detection run ends. Both engines hand back an ``Evidence`` the rest
of detection reads the same way, so clusters, scores and LINKED edges do not depend on the
engine (tests/contract/test_engines.py holds them to it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from graph.linkage import Evidence, Facts, link_accounts
from graph.settings import Settings
from graph.workspace import detection_dir

ENGINES = ("local", "spark")


class Engine(Protocol):
    def link_accounts(self, facts: Facts, cap: int, timings: dict[str, float], keep_floor: float,
                      phase: Callable[[str], None] | None) -> Evidence: ...


class LocalEngine:
    """Every stage in this process, with NumPy and SciPy (graph/linkage, graph/clustering)."""

    def link_accounts(self, facts: Facts, cap: int, timings: dict[str, float], keep_floor: float,
                      phase: Callable[[str], None] | None) -> Evidence:
        return link_accounts(facts, cap, timings, keep_floor=keep_floor, phase=phase)


def engine_name(settings: Settings) -> str:
    """The ``engine`` setting, checked."""
    name = str(settings["engine"]).strip().lower()
    if name not in ENGINES:
        raise ValueError(f"setting engine (SYBILSCOPE_ENGINE) must be one of {', '.join(ENGINES)}, got {name!r}")
    return name


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The engine the settings name, open for one detection run."""
    if engine_name(settings) == "local":
        yield LocalEngine()
        return
    from graph.engine.spark import SparkBackend  # pyspark is imported only when asked for

    workspace = settings.workspace
    backend = SparkBackend(str(settings["spark_master"]), scratch_parent=detection_dir(workspace) if workspace.exists() else None)
    try:
        yield backend
    finally:
        backend.close()
