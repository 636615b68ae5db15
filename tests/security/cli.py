"""The installed ``sybilscope`` console script run as a user runs it: a real process, with no
SYBILSCOPE_* settings inherited from the test run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SYBILSCOPE = shutil.which("sybilscope") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sybilscope")


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYBILSCOPE_")}
    return subprocess.run(
        [SYBILSCOPE, *args], capture_output=True, text=True, env=env, cwd=cwd, input=stdin, timeout=120
    )
