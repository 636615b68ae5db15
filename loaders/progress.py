"""Progress reporting for a load: silent, rich bars on stderr (one per table) and a summary,
or one line per step.

The loader calls a ``LoadProgress``; ``RichProgress`` draws it when stderr is a terminal,
``LineProgress`` hands a line per step to a writer (setting ``progress`` = 'lines', for logs),
the base class does nothing (tests, pipes, cron).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any


class LoadProgress:
    """Callbacks the loader makes; the base class ignores them."""

    def start_table(self, table: str, files: int) -> None:
        """Reading ``table`` (``files`` files) begins."""

    def advance(self, table: str, rows: int) -> None:
        """``rows`` more rows of ``table`` were read (may be negative when a file is re-read)."""

    def finish_table(self, table: str) -> None:
        """``table`` is read and checked."""

    def phase(self, text: str) -> None:
        """A step without rows (checking duplicates, committing, writing the graph)."""

    def summary(self, tables: Mapping[str, Mapping[str, int]], seconds: Mapping[str, float]) -> None:
        """The final per-table counts."""

    def note(self, text: str) -> None:
        """A line after the summary (which path wrote the graph, with its figures)."""

    def close(self) -> None:
        """Stop drawing."""


class LineProgress(LoadProgress):
    """One line per step through ``say``: a table begun and read (rows, rows/s), each phase,
    and the notes; row counts in between go unreported, so a log stays short."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.started: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def start_table(self, table: str, files: int) -> None:
        self.started[table] = time.perf_counter()
        self.rows[table] = 0
        self.say(f"reading {table} ({files:,} file{'s' if files != 1 else ''})")

    def advance(self, table: str, rows: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows

    def finish_table(self, table: str) -> None:
        seconds = max(time.perf_counter() - self.started.get(table, time.perf_counter()), 1e-9)
        rows = self.rows.get(table, 0)
        self.say(f"read {table}: {rows:,} rows in {seconds:,.1f} s ({rows / seconds:,.0f}/s)")

    def phase(self, text: str) -> None:
        self.say(text)

    def note(self, text: str) -> None:
        self.say(text)


class RichProgress(LoadProgress):
    """A rich progress bar per table on stderr, then a summary table."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(stderr=True)
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows  {task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.phase_task: Any = None
        self.bar.start()

    def start_table(self, table: str, files: int) -> None:
        self.started[table] = time.perf_counter()
        self.rows[table] = 0
        self.tasks[table] = self.bar.add_task(table, total=None, rate="")

    def advance(self, table: str, rows: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows
        elapsed = max(time.perf_counter() - self.started.get(table, time.perf_counter()), 1e-9)
        self.bar.update(self.tasks[table], completed=self.rows[table],
                        rate=f"{self.rows[table] / elapsed:,.0f}/s")

    def finish_table(self, table: str) -> None:
        done = self.rows.get(table, 0)
        self.bar.update(self.tasks[table], total=max(done, 1), completed=max(done, 1))

    def phase(self, text: str) -> None:
        if self.phase_task is None:
            self.phase_task = self.bar.add_task(text, total=None, rate="")
        else:
            self.bar.update(self.phase_task, description=text)

    def summary(self, tables: Mapping[str, Mapping[str, int]], seconds: Mapping[str, float]) -> None:
        from rich.table import Table

        if self.phase_task is not None:
            self.bar.update(self.phase_task, description="done", total=1, completed=1)
        self.close()
        view = Table(title="Load")
        for col in ("table", "read", "loaded", "quarantined", "duplicates", "rows/s"):
            view.add_column(col, justify="left" if col == "table" else "right")
        for name, counts in tables.items():
            secs = seconds.get(name, 0.0)
            rate = f"{counts['read'] / secs:,.0f}" if secs > 0 else "-"
            view.add_row(name, *(f"{counts[k]:,}" for k in ("read", "loaded", "quarantined", "duplicates")), rate)
        self.console.print(view)

    def note(self, text: str) -> None:
        self.console.print(text)

    def close(self) -> None:
        self.bar.stop()
