"""The server's console log, read back to explain a start that failed."""

from __future__ import annotations

import re
from pathlib import Path

LOG_TAIL_LINES = 20


def log_tail(log: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines this start wrote to the console log (from byte ``offset``)."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith("=== ")]
    return "\n".join(kept[-lines:])


def key_line(tail: str) -> str:
    """The most telling line of a log tail: the Launcher's complaint, else the last exception."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("sybilscope-neo4j") and re.search(r"failed|bad argument|usage", line):
            return line[:300]
    for line in reversed(lines):
        if not line.startswith("at ") and re.search(r"\b[\w.$]*(Exception|Error)\b:", line):
            return line[:300]
    return lines[-1][:300] if lines else "no output"
