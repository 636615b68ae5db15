"""Enrichment on ingest: IP parsing and longest-prefix intel match, e-mail/phone/name keyed hashing.

Everything here works on *distinct* values (a batch's unique IPs, a table's e-mails), so the
per-row cost stays in vectorised code. The IP match keeps one dict per prefix length and probes
the lengths present from longest to shortest: a handful of dict lookups per address, however many
networks the intel lists, which scales to millions of distinct addresses.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.private_files import open_private, private_dir, private_file
from graph.workspace import salt_path

WEBMAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "icloud.com", "me.com", "aol.com", "proton.me",
        "protonmail.com", "gmx.com", "gmx.de", "web.de", "mail.ru", "yandex.ru", "yandex.com",
        "qq.com", "163.com", "126.com", "naver.com", "zoho.com",
    }
)
DERIVED_V4_PREFIX = 24
DERIVED_V6_PREFIX = 48


# ---- salt and hashing ---------------------------------------------------------------------------


HASH_SCHEME = "hmac-sha256"
"""How e-mail, phone and billing-name hashes are made (recorded in staging/bundles.json).
Workspaces staged before it was recorded used ``LEGACY_HASH_SCHEME``."""
LEGACY_HASH_SCHEME = "sha256-salt-prefix"
_KEY_CHECK_MESSAGE = "sybilscope key check"


def load_salt(setting: str, workspace: Path) -> str:
    """The hashing key: the ``hash_salt`` setting, else a random key generated once and kept
    in ``<workspace>/salt`` (so hashes stay comparable across loads of one workspace). The
    file is created 0600 in a 0700 workspace (and narrowed so when an older version left it
    wider): with it, anyone holding the staging area could test guesses against the hashes."""
    if setting:
        return setting
    path = salt_path(workspace)
    private_dir(workspace)
    if path.exists():
        private_file(path)
        return path.read_text(encoding="utf-8").strip()
    tmp = path.with_name(f".salt.{os.getpid()}")
    with open_private(tmp) as fh:
        fh.write(secrets.token_hex(16))
    try:
        os.link(tmp, path)  # fails if another load created it first: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8").strip()


def salted_hash(salt: str, value: str | None) -> str | None:
    """HMAC-SHA-256 of ``value`` keyed with ``salt``, as hex; None for a missing value. A keyed
    hash, not a salted digest: without the key a leaked staging area or graph cannot be
    matched against guessed addresses, and with a digest the salt would only slow that down."""
    if value is None or value == "":
        return None
    # surrogatepass: a quarantined value with a lone surrogate still hashes, deterministically
    return hmac.digest(salt.encode("utf-8"), value.encode("utf-8", "surrogatepass"), "sha256").hex()


def key_check(salt: str) -> str:
    """A fingerprint of the hashing key (the HMAC of a fixed text): two loads with different
    keys make hashes that never match, so the staging area records it and refuses a mix. It
    says nothing about the key itself."""
    return hmac.digest(salt.encode("utf-8"), _KEY_CHECK_MESSAGE.encode("utf-8"), "sha256").hex()[:16]


def hash_personal(column: str, salt: str, raw: Any) -> str | None:
    """The keyed hash of a raw e-mail, phone or billing name exactly as staging hashes it
    (normalised first, so a quarantined row can be matched to staged ones by its hash); a
    value that does not normalise is hashed as it is, trimmed."""
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else str(raw)
    normalised: str | None
    if column == "email":
        parsed = parse_email(text)
        normalised = parsed.normalised if parsed else None
    elif column == "phone":
        normalised = normalise_phone(text)
    else:
        normalised = normalise_name(text)
    return salted_hash(salt, normalised or text.strip())


_CARD = re.compile(r"(?<![0-9])([0-9])((?:[ -]?[0-9]){11,17})([ -]?[0-9]{4})(?![0-9])")


def mask_card_numbers(value: Any) -> Any:
    """Card-number-like digit runs (13-19 digits, spaces or dashes allowed) in a raw value, or
    in every string of a dict, with all but the first and last four digits masked: a
    quarantined row must not keep a full card number."""
    if isinstance(value, str):
        return _CARD.sub(lambda m: m.group(1) + re.sub(r"[0-9]", "*", m.group(2)) + m.group(3), value)
    if isinstance(value, dict):
        return {k: mask_card_numbers(v) for k, v in value.items()}
    return value


UNSPLIT_ROW = "row could not be split into columns, so its e-mail, phone or billing name could not be hashed: see the source file at this row"


def redact_personal(value: Any, columns: Iterable[str], salt: str) -> Any:
    """A quarantined raw row without raw personal data: each of ``columns`` (e-mail, phone,
    billing name) replaced by ``<column>_hash``, its keyed hash (``hash_personal``). A row of
    such a table that never split into columns (malformed JSON, wrong CSV field count) is
    replaced by its length and keyed hash: the personal values in it cannot be told apart."""
    wanted = tuple(columns)
    if not wanted:
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in wanted:
                out[key + "_hash"] = hash_personal(key, salt, item)
            else:
                out[key] = item
        return out
    text = value if isinstance(value, str) else repr(value)
    return {"redacted": UNSPLIT_ROW, "chars": len(text), "hash": salted_hash(salt, text)}


# ---- e-mail -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    domain: str
    normalised: str
    shape: str


def split_email(raw: str) -> tuple[str, str] | None:
    """(local part, domain), lower-cased and trimmed, or None when not an address."""
    text = raw.strip().lower()
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain or "." not in domain:
        return None
    return local, domain


def normalise_email(local: str, domain: str) -> str:
    """The canonical address: webmail providers ignore dots and ``+tags`` in the local part, so
    ``J.Doe+x@gmail.com`` and ``jdoe@gmail.com`` are one mailbox."""
    if domain in WEBMAIL:
        local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@{domain}"


_RUN = re.compile(r"[a-z]+|[0-9]+|[^a-z0-9]")


def local_shape(local: str) -> str:
    """The shape of a local part: letters runs become ``word``, digit runs ``digits``,
    separators stay (``dev.ops0401`` -> ``word.word+digits``); a bare word is ``letters``.
    A ``+tag`` is dropped first. Sequentially generated addresses share one shape."""
    local = local.split("+", 1)[0]
    parts: list[str] = []
    for run in _RUN.findall(local):
        if run.isalpha() and run.isascii():
            token = "word"
        elif run.isdigit() and run.isascii():
            token = "digits"
        else:
            token = run if run in "._-" else "?"
        if parts and token in ("word", "digits") and parts[-1] in ("word", "digits"):
            parts.append("+")
        parts.append(token)
    shape = "".join(parts)
    if shape == "word":
        return "letters"
    return shape or "empty"


def parse_email(raw: str | None) -> Email | None:
    """Domain, normalised address and local-part shape of a raw e-mail, or None."""
    if not raw:
        return None
    split = split_email(raw)
    if split is None:
        return None
    local, domain = split
    return Email(domain=domain, normalised=normalise_email(local, domain), shape=local_shape(local))


def normalise_phone(raw: str | None) -> str | None:
    """Digits only, keeping a leading ``+``: formatting differences do not split one number."""
    if not raw:
        return None
    text = raw.strip()
    digits = re.sub(r"[^0-9]", "", text)
    if not digits:
        return None
    return ("+" if text.startswith("+") else "") + digits


def normalise_name(raw: str | None) -> str | None:
    """Case and spacing folded, so ``JOHN  doe`` and ``John Doe`` hash alike."""
    if not raw or not raw.strip():
        return None
    return " ".join(raw.lower().split())


# ---- IP addresses -------------------------------------------------------------------------------


def parse_ip(raw: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from text (IPv4-mapped IPv6 becomes IPv4), or None when unparseable."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_network(raw: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR (host bits masked) or single address as a /32 or /128, or None."""
    if raw is None or not raw.strip():
        return None
    try:
        return ipaddress.ip_network(raw.strip(), strict=False)
    except ValueError:
        return None


def derived_network(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The /24 (IPv4) or /48 (IPv6) an address belongs to when no intel covers it."""
    prefix = DERIVED_V4_PREFIX if addr.version == 4 else DERIVED_V6_PREFIX
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class IntelIndex:
    """Longest-prefix match of addresses against ip_intel networks."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        # (version, prefix length) -> {network integer >> host bits: row}
        self._tables: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}
        for row in rows:
            net = parse_network(row.get("network"))
            if net is None:
                continue
            bits = net.max_prefixlen - net.prefixlen
            entry = dict(row)
            entry["network"] = str(net)
            self._tables.setdefault((net.version, net.prefixlen), {})[int(net.network_address) >> bits] = entry
        self._order: dict[int, list[int]] = {
            v: sorted((p for (ver, p) in self._tables if ver == v), reverse=True) for v in (4, 6)
        }
        # IPv4 as sorted numpy keys per prefix length, for ``match_v4`` on whole arrays.
        self._v4: list[tuple[int, np.ndarray, list[dict[str, Any]]]] = []
        for prefix in self._order[4]:
            table = self._tables[(4, prefix)]
            keys = np.array(sorted(table), dtype=np.int64)
            self._v4.append((prefix, keys, [table[int(k)] for k in keys]))
        self.v4_rows: list[dict[str, Any]] = [row for _p, _k, rows in self._v4 for row in rows]

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def rows(self) -> list[dict[str, Any]]:
        """Every intel row kept (network normalised), most specific prefix last."""
        return [row for key in sorted(self._tables) for row in self._tables[key].values()]


    def match_v4(self, values: np.ndarray) -> np.ndarray:
        """For IPv4 addresses as integers: the index into ``v4_rows`` of the most specific
        network containing each, or -1. One binary search per prefix length present."""
        out = np.full(len(values), -1, dtype=np.int64)
        offset = 0
        for prefix, keys, rows in self._v4:
            todo = out < 0
            if not todo.any():
                break
            shifted = values[todo] >> (32 - prefix)
            pos = np.searchsorted(keys, shifted)
            pos_clipped = np.minimum(pos, len(keys) - 1)
            hit = keys[pos_clipped] == shifted
            found = np.where(hit, pos_clipped + offset, -1)
            out[np.flatnonzero(todo)] = found
            offset += len(rows)
        return out

    def match(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> dict[str, Any] | None:
        """The intel row of the most specific network containing ``addr``, or None."""
        value, width = int(addr), addr.max_prefixlen
        for prefix in self._order[addr.version]:
            row = self._tables[(addr.version, prefix)].get(value >> (width - prefix))
            if row is not None:
                return row
        return None


@dataclass(frozen=True)
class IpInfo:
    ip: str
    version: int
    network: str
    intel: dict[str, Any] | None


class IpResolver:
    """Raw IP text -> normalised address, network and intel, cached per distinct text."""

    def __init__(self, index: IntelIndex, max_cache: int = 2_000_000) -> None:
        self.index = index
        self._cache: dict[str, IpInfo | None] = {}
        self._max = max_cache

    def resolve(self, raw: str) -> IpInfo | None:
        hit = self._cache.get(raw)
        if hit is not None or raw in self._cache:
            return hit
        addr = parse_ip(raw)
        info: IpInfo | None = None
        if addr is not None:
            intel = self.index.match(addr)
            network = intel["network"] if intel else derived_network(addr)
            info = IpInfo(ip=str(addr), version=addr.version, network=network, intel=intel)
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[raw] = info
        return info

    def resolve_many(self, values: pa.Array) -> tuple[pa.Array, pa.Array]:
        """``resolve`` for a column of distinct values: (normalised IP, network) arrays, null
        where unparseable. Canonical dotted-quad IPv4 (the bulk of real traffic) is parsed and
        matched with numpy; anything else (IPv6, padded or odd forms) goes through ``resolve``."""
        mask = pc.fill_null(pc.match_substring_regex(values, pattern=IPV4_CANONICAL), False).to_numpy(zero_copy_only=False)
        v4_idx, rest_idx = np.flatnonzero(mask), np.flatnonzero(~mask)
        quads = values.take(pa.array(v4_idx, pa.int64()))
        parts = pc.split_pattern(quads, ".")
        octets = pc.list_flatten(parts).cast(pa.int64()).to_numpy().reshape(-1, 4)
        ints = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
        match = self.index.match_v4(ints)
        derived = pc.binary_join_element_wise(
            pc.list_element(parts, 0), pc.list_element(parts, 1), pc.list_element(parts, 2), "0/24", "."
        )
        intel_nets = pa.array([r["network"] for r in self.index.v4_rows] + [None], pa.string())
        from_intel = intel_nets.take(pa.array(np.where(match >= 0, match, len(intel_nets) - 1)))
        v4_nets = pc.coalesce(from_intel, derived)
        rest_ips: list[str | None] = []
        rest_nets: list[str | None] = []
        for raw in values.take(pa.array(rest_idx, pa.int64())).to_pylist():
            info = self.resolve(raw) if raw is not None else None
            rest_ips.append(None if info is None else info.ip)
            rest_nets.append(None if info is None else info.network)
        # results in (IPv4 rows, other rows) order, put back in the input's order
        order = np.empty(len(values), dtype=np.int64)
        order[np.concatenate([v4_idx, rest_idx])] = np.arange(len(values))
        back = pa.array(order)
        ips = pa.concat_arrays([quads.cast(pa.string()), pa.array(rest_ips, pa.string())]).take(back)
        nets = pa.concat_arrays([v4_nets.cast(pa.string()), pa.array(rest_nets, pa.string())]).take(back)
        return ips, nets


# A dotted quad exactly as ``ipaddress`` prints it: 0-255 without leading zeros.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_CANONICAL = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
