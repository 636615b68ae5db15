"""Untrusted text (notes, names) shown as itself in Streamlit, never as Markdown or HTML.

A note is typed by one investigator and read by another: as Markdown, ``![x](http://…)``
would load a remote image (a tracking pixel) when a colleague opens the cluster, and a link
could dress up as evidence. Showing it literally means nothing in it is fetched or followed.
"""

from __future__ import annotations

import re

# Every ASCII punctuation mark: CommonMark lets any of them be backslash-escaped.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def literal(text: str) -> str:
    """Markdown source that renders as ``text`` on one line: each punctuation mark escaped, so
    no image, link, autolink, HTML, emphasis, Streamlit directive (``:red[…]``,
    ``:material/…:``) or LaTeX (``$…$``) can form; runs of whitespace become one space."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))
