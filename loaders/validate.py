"""The rules of each table (input-bundle.md) and their vectorised row check.

``TABLE_SPECS`` says per table which columns the contract has, which are required, which are
timestamps, IPs, non-negative integers and so on, and what identifies a row (for duplicates).
``row_check_sql`` turns a spec into one DuckDB ``SELECT`` over a chunk of string columns that
returns the typed, normalised columns plus ``_reason``: the first row rule the row breaks, or
null. Rules that need the whole table (duplicates, unknown ``account_id``) are applied later,
in ``loaders.stage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    key: tuple[str, ...]
    """What identifies a row: two rows with equal keys are duplicates (exact or conflicting)."""
    timestamps: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    nonneg_ints: tuple[str, ...] = ()
    ints: tuple[str, ...] = ()
    unit_floats: tuple[str, ...] = ()
    digits: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Columns that must be a string of digits of a length in [min, max] (card BIN, last 4)."""
    account_ref: bool = False
    """Rows must name an account of the bundle (or of an earlier bundle)."""
    drop: tuple[str, ...] = ()
    """Columns replaced by derived ones and never staged (raw e-mail, phone, prompt…)."""
    identifiers: tuple[str, ...] = ()
    """Ids that become graph keys: a control character (NUL, tab, newline, DEL, C1) in one
    quarantines the row, so ``acct-2\\x00`` never becomes a second ``acct-2``."""
    free_text: tuple[str, ...] = ()
    """Text where a lone UTF-16 surrogate (JSON ``"\\ud800"``) is replaced by U+FFFD and the
    row kept; in any other column it quarantines the row (see ``loaders.reader``)."""
    personal: tuple[str, ...] = ()
    """Raw personal data (e-mail, phone, billing name): keyed-hashed in the staging area and
    in the quarantine alike, never kept raw."""


TABLE_SPECS: dict[str, TableSpec] = {
    "accounts": TableSpec(
        name="accounts",
        columns=("account_id", "created_at", "email", "phone", "signup_ip", "country", "org_id",
                 "verification", "status"),
        required=("account_id", "created_at"),
        key=("account_id",),
        timestamps=("created_at",),
        ips=("signup_ip",),
        drop=("email", "phone"),
        identifiers=("account_id", "org_id"),
        personal=("email", "phone"),
    ),
    "exchanges": TableSpec(
        name="exchanges",
        columns=("exchange_id", "account_id", "ts", "ip", "api_key_id", "user_agent",
                 "client_fingerprint", "model", "input_tokens", "output_tokens", "prompt",
                 "prompt_hash"),
        required=("exchange_id", "account_id", "ts"),
        key=("exchange_id",),
        timestamps=("ts",),
        ips=("ip",),
        nonneg_ints=("input_tokens", "output_tokens"),
        account_ref=True,
        drop=("prompt",),
        identifiers=("exchange_id", "account_id", "api_key_id", "client_fingerprint"),
        free_text=("prompt", "user_agent", "model"),
    ),
    "payments": TableSpec(
        name="payments",
        columns=("account_id", "payment_id", "card_bin", "card_last4", "billing_country",
                 "billing_name", "billing_postal", "first_seen"),
        required=("account_id", "payment_id"),
        key=("account_id", "payment_id"),
        timestamps=("first_seen",),
        digits={"card_bin": (6, 8), "card_last4": (4, 4)},
        account_ref=True,
        drop=("billing_name",),
        identifiers=("account_id", "payment_id"),
        free_text=("billing_name",),
        personal=("billing_name",),
    ),
    "devices": TableSpec(
        name="devices",
        columns=("account_id", "device_id", "first_seen", "last_seen"),
        required=("account_id", "device_id"),
        key=("account_id", "device_id"),
        timestamps=("first_seen", "last_seen"),
        account_ref=True,
        identifiers=("account_id", "device_id"),
    ),
    "ip_intel": TableSpec(
        name="ip_intel",
        columns=("network", "asn", "as_org", "kind", "country", "provider"),
        required=("network",),
        key=("network",),
        ints=("asn",),
        free_text=("as_org", "provider"),
    ),
    "operators": TableSpec(
        name="operators",
        columns=("operator_id", "name", "indicator_type", "indicator_value", "source",
                 "confidence"),
        required=("operator_id", "name", "indicator_type", "indicator_value"),
        key=("operator_id", "indicator_type", "indicator_value"),
        unit_floats=("confidence",),
        identifiers=("operator_id", "indicator_type", "indicator_value"),
        free_text=("name", "source"),
    ),
    "labels": TableSpec(
        name="labels",
        columns=("account_id", "operator_id"),
        required=("account_id",),
        key=("account_id",),
        account_ref=True,
        identifiers=("account_id", "operator_id"),
    ),
}

# Columns the loader derives in Python before the SQL check (see loaders.stage); the SQL sees
# them as ``_d_<name>``.
DERIVED: dict[str, tuple[str, ...]] = {
    "accounts": ("signup_ip", "email_domain", "email_hash", "email_shape", "phone_hash"),
    "exchanges": ("ip", "network", "template_id", "capability", "cot", "prompt_chars"),
    "payments": ("billing_name_hash",),
    "ip_intel": ("network",),
}


# C0 controls (NUL, tab, newline…), DEL and C1 controls, as an RE2 class in a SQL literal.
CONTROL_CHARACTERS = r"'[\x00-\x1f\x7f-\x{9f}]'"


def _q(name: str) -> str:
    """A quoted SQL identifier (column names come from the spec, never from input)."""
    return '"' + name.replace('"', '""') + '"'


def _v(col: str) -> str:
    """A raw column with surrounding whitespace trimmed and empty meaning missing."""
    return f"nullif(trim({_q(col)}), '')"


def timestamp_sql(expr: str) -> str:
    """ISO-8601 (offset, Z or naive = UTC) or integer epoch seconds -> naive UTC TIMESTAMP;
    null when unparseable (or absurd: beyond year 5138 in epoch seconds)."""
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL "
        f"WHEN regexp_full_match({expr}, '[+-]?[0-9]{{1,11}}') "
        f"THEN make_timestamp(CAST({expr} AS BIGINT) * 1000000) "
        f"ELSE TRY_CAST({expr} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' END"
    )


def row_check_sql(spec: TableSpec, source: str = "chunk") -> str:
    """One SELECT over ``source`` giving normalised columns, ``_row``, ``_reason`` and
    ``_raw`` (the raw row as JSON, only for rows with a reason) and ``_digest`` (a hash of the
    raw contract values, to tell exact duplicates from conflicting ones).

    Three layers, so each value is trimmed and parsed once: ``_v_<col>`` (trimmed, empty ->
    null), then ``_t_<col>`` (typed: timestamp, integer, float), then the checks and outputs."""
    derived = DERIVED.get(spec.name, ())
    trimmed = [f"{_v(c)} AS {_q('_v_' + c)}" for c in spec.columns]
    typed: list[str] = []
    for col in spec.timestamps:
        typed.append(f"({timestamp_sql(_q('_v_' + col))}) AS {_q('_t_' + col)}")
    for col in spec.nonneg_ints + spec.ints:
        typed.append(f"TRY_CAST({_q('_v_' + col)} AS BIGINT) AS {_q('_t_' + col)}")
    for col in spec.unit_floats:
        typed.append(f"TRY_CAST({_q('_v_' + col)} AS DOUBLE) AS {_q('_t_' + col)}")

    def v(col: str) -> str:
        return _q("_v_" + col)

    def t(col: str) -> str:
        return _q("_t_" + col)

    checks: list[tuple[str, str]] = [("_error IS NOT NULL", "_error")]
    for col in spec.required:
        checks.append((f"{v(col)} IS NULL", f"'missing {col}'"))
    for col in spec.identifiers:
        checks.append((f"regexp_matches({v(col)}, {CONTROL_CHARACTERS})", f"'control character in {col}'"))
    for col in spec.timestamps:
        checks.append((f"{v(col)} IS NOT NULL AND {t(col)} IS NULL", f"'unparseable timestamp in {col}'"))
    for col in spec.ips:
        checks.append((f"{v(col)} IS NOT NULL AND {_q('_d_' + col)} IS NULL", f"'unparseable IP in {col}'"))
    if spec.name == "ip_intel":
        checks.append((f"{v('network')} IS NOT NULL AND _d_network IS NULL", "'unparseable network (CIDR)'"))
    for col in spec.nonneg_ints + spec.ints:
        checks.append((f"{v(col)} IS NOT NULL AND {t(col)} IS NULL", f"'{col} is not an integer'"))
    for col in spec.nonneg_ints:
        checks.append((f"{t(col)} < 0", f"'negative {col}'"))
    for col in spec.unit_floats:
        checks.append((f"{v(col)} IS NOT NULL AND NOT coalesce({t(col)} BETWEEN 0 AND 1, false)",
                       f"'{col} is not a number between 0 and 1'"))
    for col, (lo, hi) in spec.digits.items():
        checks.append((f"{v(col)} IS NOT NULL AND NOT regexp_full_match({v(col)}, '[0-9]{{{lo},{hi}}}')",
                       f"'{col} is not {lo}-{hi} digits'" if lo != hi else f"'{col} is not {lo} digits'"))
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {why}" for cond, why in checks) + " END"

    out: list[str] = []
    for col in spec.columns:
        if col in spec.drop or col in derived:
            continue
        if col in spec.timestamps or col in spec.nonneg_ints or col in spec.ints or col in spec.unit_floats:
            out.append(f"{t(col)} AS {_q(col)}")
        else:
            out.append(f"CAST({v(col)} AS VARCHAR) AS {_q(col)}")
    for col in derived:
        out.append(f"{_q('_d_' + col)} AS {_q(col)}")
    raw_struct = ", ".join(f"{_q(c)} := {_q(c)}" for c in spec.columns)
    digest = ", ".join(_q(c) for c in spec.columns)
    layer1 = f"SELECT *, {', '.join(trimmed)} FROM {source}"  # noqa: S608 - identifiers from the spec
    layer2 = f"SELECT *, {', '.join(typed)} FROM ({layer1})" if typed else layer1  # noqa: S608
    return (
        f"SELECT {', '.join(out)}, _row, _reason, "  # noqa: S608 - identifiers from the spec
        f"CASE WHEN _reason IS NULL THEN NULL WHEN _raw IS NOT NULL THEN _raw "
        f"ELSE CAST(to_json(struct_pack({raw_struct})) AS VARCHAR) END AS _raw, "
        f"hash({digest}) AS _digest "
        f"FROM (SELECT *, {reason} AS _reason FROM ({layer2}))"
    )
