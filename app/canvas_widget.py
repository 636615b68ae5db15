"""The drawing component of the cluster canvas: vis-network in a Streamlit component frame.

The frame's files are app/canvas_component/ (a page and its script, no build step) and the
vis-network library pyvis ships, the one the HTML export inlines (so the canvas and the export
draw alike). Streamlit serves a component from one directory, so the three are put together
once in a cache directory named by their contents; the page loads nothing from elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import streamlit.components.v1 as components

from graph.export.html import vis_network_js

SOURCE = Path(__file__).resolve().parent / "canvas_component"
FILES = ("index.html", "canvas.js")
HEIGHT = 760


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sybilscope" / "canvas-component"


def build_component_dir(root: Path | None = None) -> Path:
    """The component's directory (page, script and library), written once per version."""
    texts = {name: (SOURCE / name).read_text(encoding="utf-8") for name in FILES}
    texts["vis-network.min.js"] = vis_network_js()
    digest = hashlib.sha256("".join(texts[k] for k in sorted(texts)).encode("utf-8")).hexdigest()[:16]
    for base in ([root] if root else [_cache_root(), Path(tempfile.gettempdir()) / "sybilscope-canvas-component"]):
        target = base / digest
        try:
            if not all((target / name).is_file() for name in texts):
                target.mkdir(parents=True, exist_ok=True)
                for name, text in texts.items():
                    part = target / f".{name}.part"
                    part.write_text(text, encoding="utf-8")
                    part.replace(target / name)
            return target
        except OSError:
            continue
    raise RuntimeError("no writable directory for the canvas component (tried the user cache and the temp directory)")


@cache
def _component() -> Any:
    return components.declare_component("sybilscope_canvas", path=str(build_component_dir()))


def evidence_canvas(data: dict[str, Any], *, key: str, height: int = HEIGHT, on_change: Any = None) -> Any:
    """Draw ``data`` (app.canvas.canvas_data); returns the last event the canvas sent
    (``{action, data, timestamp}``: select_node, select_edge or expand) or None."""
    return _component()(data=data, height=height, key=key, on_change=on_change, default=None)
