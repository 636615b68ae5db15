"""What the security tests share: the console script run as a user runs it, and exact comparison."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

SYBILSCOPE = shutil.which("sybilscope") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sybilscope")


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``sybilscope`` in a real process, with no SYBILSCOPE_* settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYBILSCOPE_")}
    return subprocess.run(
        [SYBILSCOPE, *args], capture_output=True, text=True, env=env, cwd=cwd, input=stdin, timeout=120
    )


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, NaN equal to NaN, -0.0 apart from 0.0, lists element-wise."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return bool(a == b)
