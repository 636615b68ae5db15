r"""What each export format cannot carry of a real prompt's text, and what it gets instead.

Prompts, notes and extra bundle columns carry control characters, NULs, lone surrogates,
non-characters, bidi overrides and multi-megabyte pastes. One rule per format:

=================  ===========================================  ==================================
format             cannot carry                                 written instead
=================  ===========================================  ==================================
GraphML, GEXF      XML 1.0-illegal characters: C0 controls      U+FFFD (``xml_text``)
                   but tab, LF and CR; lone surrogates;
                   U+FFFE, U+FFFF
JSON, STIX,        lone surrogates (UTF-8 cannot encode them;   U+FFFD (``utf8_text``); the files
Parquet            ``\ud800`` escapes are rejected by strict    are UTF-8, ``ensure_ascii=False``
                   parsers)                                     (JSON escapes the C0 controls)
CSV                lone surrogates; NUL (spreadsheets and       U+FFFD (``csv_text``); a cell cut
                   C parsers cut the cell or the file there);   to ``CSV_CELL_CHARS`` saying how
                   cells over 32,767 characters (spreadsheets   long it was (``fit``); Parquet
                   cut or split them, Python's csv reader       keeps the whole text
                   refuses fields over 128 KiB)
report (Markdown,  anything that hides, restyles or reorders    a visible escape: ``\x1b``,
HTML), HTML page   text: C0 controls but tab and LF (CR LF      ``\x85``, ``\u202e``, ``\ud800``
                   counts as LF), DEL, C1 (so ``ESC [31m``      (``display_text``); long text cut
                   shows as ``\x1b[31m``), bidi embeddings,     to an excerpt with its length
                   overrides and isolates (U+202A–U+202E,       (``excerpt``)
                   U+2066–U+2069), lone surrogates and
                   non-characters
=================  ===========================================  ==================================

Machine formats (GraphML, GEXF, JSON, STIX, Parquet) keep the whole text, only the characters
above replaced, one code point for one, so lengths survive. A well-formed surrogate pair left
as two code points (text decoded with ``surrogatepass``) is first joined into the character it
encodes. U+FFFD in a machine format means "a character this format cannot hold was here"; the
staged rows in the workspace keep the original. CR is written as ``&#13;`` in both (GraphML's
element text, GEXF's attributes): a raw CR or CR LF would be read back as LF.

Bidi *marks* (LRM, RLM, ALM) are left alone: they are ordinary in Arabic and Hebrew text and
cannot reorder strong characters. Markdown also gets its own escaping (``md_text``) so a prompt
cannot become a heading, a link or raw HTML.

Keys (node keys, property names) go through ``distinct``: a key changed by a rule gets a short
digest of the original, so two keys that differ only in an illegal character stay two keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from typing import Any

from graph.export.selection import EvidenceGraph
from graph.store import Node, NodeKey, Relationship

REPLACEMENT = "\ufffd"
CSV_CELL_CHARS = 32_767
"""The most characters a spreadsheet cell holds (Excel, LibreOffice Calc)."""

_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CSV_ILLEGAL = re.compile("[\x00\ud800-\udfff]")
# C0 but tab and LF, DEL, C1, bidi embeddings/overrides/isolates, surrogates, non-characters.
_UNSAFE_DISPLAY = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(f"{chr(p + 0xFFFE)}{chr(p + 0xFFFF)}" for p in range(0x10000, 0x110000, 0x10000))
    + "]"
)
_MD_SPECIAL = re.compile(r"([\\`<>\[\]|&])")
# A line starting like this would become a heading, quote, list, rule or fence.
_MD_BLOCK_START = re.compile(r"^(\s*)([#>+\-=*_~]|\d{1,9}(?=[.)](\s|$)))")


def join_pairs(text: str) -> str:
    r"""``text`` with each high+low surrogate pair joined into the character it encodes.

    >>> ascii(join_pairs("smile \ud83d\ude00, lone \ud800"))
    "'smile \\U0001f600, lone \\ud800'"
    """
    if not _SURROGATE.search(text):
        return text
    return _PAIR.sub(lambda m: m.group(0).encode("utf-16", "surrogatepass").decode("utf-16"), text)


def xml_text(text: str) -> str:
    r"""Text XML 1.0 can hold (GraphML, GEXF): illegal characters become U+FFFD.

    >>> ascii(xml_text("tab\t, vt\x0b, nul\x00, \ud800, \ufffe, \x1b[31m, \x85"))
    "'tab\\t, vt\\ufffd, nul\\ufffd, \\ufffd, \\ufffd, \\ufffd[31m, \\x85'"
    """
    return _XML_ILLEGAL.sub(REPLACEMENT, join_pairs(text))


def utf8_text(text: str) -> str:
    r"""Text strict UTF-8 can hold (JSON, STIX, Parquet): lone surrogates become U+FFFD.

    >>> ascii(utf8_text("a\ud800b\x00\x0b"))
    "'a\\ufffdb\\x00\\x0b'"
    """
    return _SURROGATE.sub(REPLACEMENT, join_pairs(text))


def csv_text(text: str) -> str:
    r"""Text for a CSV cell: lone surrogates and NUL become U+FFFD, the rest is kept
    (the csv module quotes line breaks).

    >>> ascii(csv_text("a\x00b\ud800\x0b"))
    "'a\\ufffdb\\ufffd\\x0b'"
    """
    return _CSV_ILLEGAL.sub(REPLACEMENT, join_pairs(text))


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def display_text(text: str) -> str:
    r"""Text a person reads (the report, the HTML page): every character that could hide,
    restyle or visually reorder text becomes a visible escape; tab and LF stay, CR LF is LF.

    >>> print(display_text("\x1b[31mred\x1b[0m, abc\u202edcba, nul\x00, \ud800, line\r\nnext"))
    \x1b[31mred\x1b[0m, abc\u202edcba, nul\x00, \ud800, line
    next
    """
    return _UNSAFE_DISPLAY.sub(lambda m: _visible(m.group(0)), join_pairs(text).replace("\r\n", "\n"))


def excerpt(text: str, limit: int) -> str:
    r"""At most ``limit`` characters of ``text``, saying how long the whole is when cut.

    >>> excerpt("short", 10)
    'short'
    >>> excerpt("x" * 1_000_000, 5)
    'xxxxx… [1,000,000 characters in all]'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text):,} characters in all]"


def fit(text: str, max_chars: int) -> str:
    r"""``excerpt`` of ``text`` that, marker included, is at most ``max_chars`` long.

    >>> fit("x" * 100, 40)
    'xxxxxxxxxxxxxxx… [100 characters in all]'
    >>> len(fit("x" * 1_000_000, CSV_CELL_CHARS)) <= CSV_CELL_CHARS
    True
    """
    if len(text) <= max_chars:
        return text
    return excerpt(text, max(0, max_chars - len(excerpt(text, 0))))


def md_text(text: str) -> str:
    r"""``display_text`` for one line of Markdown: characters that would start code, a link,
    raw HTML, an entity or a table cell are backslash-escaped, a leading block marker
    (heading, quote, list, rule, numbered item) too, and line breaks show as ``↵`` so the
    text stays in its block.

    >>> print(md_text("# <b>[x](y)</b> | a & b\x1b[1m"))
    \# \<b\>\[x\](y)\</b\> \| a \& b\x1b\[1m
    >>> print(md_text("1. one\ntwo"), md_text("0.9"))
    1\. one ↵ two 0.9
    """
    shown = display_text(_MD_SPECIAL.sub(r"\\\1", text))
    shown = _MD_BLOCK_START.sub(lambda m: m.group(1) + m.group(2) + "\\" if m.group(2)[0].isdigit()
                                else m.group(1) + "\\" + m.group(2), shown, count=1)
    return shown.replace("\t", " ").replace("\n", " ↵ ")


def distinct(original: str, cleaned: str) -> str:
    r"""``cleaned`` when nothing changed, else ``cleaned`` with ``~`` and 8 hex digits of the
    original's SHA-256, so keys that differed only in replaced characters stay apart.

    >>> distinct("acct-1", "acct-1")
    'acct-1'
    >>> distinct("a\x00", "a\ufffd") != distinct("a\x01", "a\ufffd")
    True
    """
    if cleaned == original:
        return cleaned
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}~{digest}"


def clean_key(text: str, clean: Callable[[str], str]) -> str:
    r"""A key (node key, property name) under a format's rule, kept distinct (see ``distinct``).

    >>> clean_key("ok", xml_text), clean_key("a\x0b", xml_text) != clean_key("a\x0c", xml_text)
    ('ok', True)
    """
    return distinct(text, clean(text))


def clean_value(value: Any, clean: Callable[[str], str]) -> Any:
    r"""``value`` with every string in it (list items, dict keys and values) under ``clean``;
    numbers, booleans and None unchanged.

    >>> ascii(clean_value(["ok", "\ud800", 3, None], csv_text))
    "['ok', '\\ufffd', 3, None]"
    """
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list | tuple):
        return [clean_value(v, clean) for v in value]
    if isinstance(value, dict):
        return {clean_key(str(k), clean): clean_value(v, clean) for k, v in value.items()}
    return value


def clean_props(props: dict[str, Any], clean: Callable[[str], str]) -> dict[str, Any]:
    """A property map with names as keys (``clean_key``) and values under ``clean``."""
    return {clean_key(str(name), clean): clean_value(value, clean) for name, value in props.items()}


def clean_graph(graph: EvidenceGraph, clean: Callable[[str], str]) -> EvidenceGraph:
    """The evidence graph as one format can hold it: keys (so every reference to a node
    changes alike), cluster ids, property names and values under ``clean``."""
    def ref(r: NodeKey) -> NodeKey:
        return (r[0], clean_key(r[1], clean))

    return dataclasses.replace(
        graph,
        nodes=[Node(n.label, clean_key(n.key, clean), clean_props(n.props, clean)) for n in graph.nodes],
        relationships=[Relationship(r.type, ref(r.start), ref(r.end), clean_props(r.props, clean)) for r in graph.relationships],
        cluster_ids=[clean_key(c, clean) for c in graph.cluster_ids],
        hubs={ref(k): v for k, v in graph.hubs.items()},
    )
