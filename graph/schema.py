"""The graph schema: node labels, relationship types, key properties, constraints and indexes.

This module is the whitelist all Cypher draws labels and relationship types from: a label or
type that is not declared here is refused before any query text is built (see ``check_label``
and ``check_rel_type``). Every node is identified by its label and one string key property.

Conventions shared by both stores, so their behaviour matches:
- keys are strings; property values are str, int, float, bool or homogeneous lists of those
  (what Neo4j can store); nested data (reasons, indicator lists) is stored as a JSON string;
- timestamps are ISO-8601 UTC strings (``2025-04-22T10:00:00Z``), which sort as text;
- a relationship is identified by (start node, type, end node): writing it twice merges.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Label(StrEnum):
    ACCOUNT = "Account"
    IP = "IP"
    NETWORK = "Network"
    ASN = "ASN"
    PAYMENT_METHOD = "PaymentMethod"
    DEVICE = "Device"
    CLIENT_FINGERPRINT = "ClientFingerprint"
    EMAIL_DOMAIN = "EmailDomain"
    PROMPT_TEMPLATE = "PromptTemplate"
    CLUSTER = "Cluster"
    OPERATOR = "Operator"
    INDICATOR = "Indicator"
    AUDIT_EVENT = "AuditEvent"
    NOTE = "Note"
    SAVED_QUERY = "SavedQuery"
    LOAD_RUN = "LoadRun"


class Rel(StrEnum):
    USED_IP = "USED_IP"  # Account -> IP {first_seen, last_seen, count, signup}
    IN_NETWORK = "IN_NETWORK"  # IP -> Network
    IN_ASN = "IN_ASN"  # Network -> ASN
    PAID_WITH = "PAID_WITH"  # Account -> PaymentMethod {first_seen}
    USED_DEVICE = "USED_DEVICE"  # Account -> Device {first_seen, last_seen}
    USED_CLIENT = "USED_CLIENT"  # Account -> ClientFingerprint {first_seen, last_seen, count}
    HAS_EMAIL_DOMAIN = "HAS_EMAIL_DOMAIN"  # Account -> EmailDomain
    SENT_TEMPLATE = "SENT_TEMPLATE"  # Account -> PromptTemplate {count, first_seen, last_seen}; none to a hub template (uses_staged)
    LINKED = "LINKED"  # Account -> Account {weight, families, reasons (JSON)}
    MEMBER_OF = "MEMBER_OF"  # Account -> Cluster {bridge}
    SUGGESTED_OPERATOR = "SUGGESTED_OPERATOR"  # Cluster -> Operator {confidence, indicators (JSON)}
    ATTRIBUTED_TO = "ATTRIBUTED_TO"  # Cluster -> Operator {confidence, rationale, by, at}
    SHARES_INFRASTRUCTURE = "SHARES_INFRASTRUCTURE"  # Cluster -> Cluster {weight, accounts, values (JSON), families}
    HAS_INDICATOR = "HAS_INDICATOR"  # Operator -> Indicator {source, confidence}
    ABOUT = "ABOUT"  # AuditEvent / Note -> any node


@dataclass(frozen=True)
class RelSpec:
    type: Rel
    start: Label
    end: Label


# The key property of every label: what MERGE matches on and what the uniqueness constraint covers.
KEY_PROPERTY: dict[Label, str] = {
    Label.ACCOUNT: "account_id",
    Label.IP: "ip",
    Label.NETWORK: "cidr",
    Label.ASN: "asn",
    Label.PAYMENT_METHOD: "payment_id",
    Label.DEVICE: "device_id",
    Label.CLIENT_FINGERPRINT: "fingerprint",
    Label.EMAIL_DOMAIN: "domain",
    Label.PROMPT_TEMPLATE: "template_id",
    Label.CLUSTER: "cluster_id",
    Label.OPERATOR: "operator_id",
    Label.INDICATOR: "indicator_id",
    Label.AUDIT_EVENT: "event_id",
    Label.NOTE: "note_id",
    Label.SAVED_QUERY: "query_id",
    Label.LOAD_RUN: "run_id",
}

# Secondary indexes (label, property) that investigations search or filter on.
INDEXES: tuple[tuple[Label, str], ...] = (
    (Label.ACCOUNT, "email_hash"),
    (Label.ACCOUNT, "org_id"),
    (Label.ACCOUNT, "created_at"),
    (Label.PAYMENT_METHOD, "card_bin"),
    (Label.NETWORK, "kind"),
    (Label.NETWORK, "provider"),
    (Label.CLUSTER, "score"),
    (Label.CLUSTER, "status"),
    (Label.AUDIT_EVENT, "at"),
)

# The relationship types with the labels they connect. One type may join different label pairs
# (ABOUT points at anything), so this is a list, not a mapping.
RELATIONSHIPS: tuple[RelSpec, ...] = (
    RelSpec(Rel.USED_IP, Label.ACCOUNT, Label.IP),
    RelSpec(Rel.IN_NETWORK, Label.IP, Label.NETWORK),
    RelSpec(Rel.IN_ASN, Label.NETWORK, Label.ASN),
    RelSpec(Rel.PAID_WITH, Label.ACCOUNT, Label.PAYMENT_METHOD),
    RelSpec(Rel.USED_DEVICE, Label.ACCOUNT, Label.DEVICE),
    RelSpec(Rel.USED_CLIENT, Label.ACCOUNT, Label.CLIENT_FINGERPRINT),
    RelSpec(Rel.HAS_EMAIL_DOMAIN, Label.ACCOUNT, Label.EMAIL_DOMAIN),
    RelSpec(Rel.SENT_TEMPLATE, Label.ACCOUNT, Label.PROMPT_TEMPLATE),
    RelSpec(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT),
    RelSpec(Rel.MEMBER_OF, Label.ACCOUNT, Label.CLUSTER),
    RelSpec(Rel.SUGGESTED_OPERATOR, Label.CLUSTER, Label.OPERATOR),
    RelSpec(Rel.ATTRIBUTED_TO, Label.CLUSTER, Label.OPERATOR),
    RelSpec(Rel.SHARES_INFRASTRUCTURE, Label.CLUSTER, Label.CLUSTER),
    RelSpec(Rel.HAS_INDICATOR, Label.OPERATOR, Label.INDICATOR),
    *(RelSpec(Rel.ABOUT, Label.AUDIT_EVENT, label) for label in Label),
    *(RelSpec(Rel.ABOUT, Label.NOTE, label) for label in Label),
)

# Relationships from an account to a shared entity: the evidence linkage is built from.
USE_REL_OF: dict[str, str] = {
    Label.IP.value: Rel.USED_IP.value,
    Label.PAYMENT_METHOD.value: Rel.PAID_WITH.value,
    Label.DEVICE.value: Rel.USED_DEVICE.value,
    Label.CLIENT_FINGERPRINT.value: Rel.USED_CLIENT.value,
    Label.EMAIL_DOMAIN.value: Rel.HAS_EMAIL_DOMAIN.value,
    Label.PROMPT_TEMPLATE.value: Rel.SENT_TEMPLATE.value,
}
"""Which relationship gives each shared value label's uses by accounts (and so its accounts)."""

INFRASTRUCTURE_RELS: tuple[Rel, ...] = (
    Rel.USED_IP,
    Rel.PAID_WITH,
    Rel.USED_DEVICE,
    Rel.USED_CLIENT,
    Rel.HAS_EMAIL_DOMAIN,
    Rel.SENT_TEMPLATE,
)


class StagedColumn(NamedTuple):
    """A column of a staged table (``graph.staging.layout``)."""

    table: str
    column: str


# Where the rows behind an account's use of each shared entity are staged: the table and the
# column holding the entity's key, the primary source first (the exchanges an IP served before
# the sign-ups made from it). Evidence export reads every source; the investigation view shows
# the primary one.
ENTITY_SOURCES: dict[Label, tuple[StagedColumn, ...]] = {
    Label.IP: (StagedColumn("exchanges", "ip"), StagedColumn("accounts", "signup_ip")),
    Label.NETWORK: (StagedColumn("exchanges", "network"),),
    Label.PAYMENT_METHOD: (StagedColumn("payments", "payment_id"),),
    Label.DEVICE: (StagedColumn("devices", "device_id"),),
    Label.CLIENT_FINGERPRINT: (StagedColumn("exchanges", "client_fingerprint"),),
    Label.EMAIL_DOMAIN: (StagedColumn("accounts", "email_domain"),),
    Label.PROMPT_TEMPLATE: (StagedColumn("exchanges", "template_id"),),
}
# An account's own rows.
ACCOUNT_SOURCE = StagedColumn("accounts", "account_id")


def primary_source(label: str) -> StagedColumn | None:
    """The staged column an account's use of a ``label`` entity is read from first; None for
    labels with no staged rows (clusters, operators, …)."""
    try:
        return ENTITY_SOURCES[Label(label)][0]
    except (ValueError, KeyError):
        return None


class SchemaError(ValueError):
    """A label, relationship type or property outside the schema's whitelist."""


def check_label(label: str) -> Label:
    """Return ``label`` as a whitelisted Label, or raise SchemaError: the only way a label
    reaches query text."""
    try:
        return Label(label)
    except ValueError:
        raise SchemaError(f"unknown node label {label!r}") from None


def check_rel_type(rel_type: str) -> Rel:
    """Return ``rel_type`` as a whitelisted Rel, or raise SchemaError."""
    try:
        return Rel(rel_type)
    except ValueError:
        raise SchemaError(f"unknown relationship type {rel_type!r}") from None


def check_rel_spec(rel_type: str, start: str, end: str) -> RelSpec:
    """The declared RelSpec for (type, start label, end label), or SchemaError."""
    spec = RelSpec(check_rel_type(rel_type), check_label(start), check_label(end))
    if spec not in RELATIONSHIPS:
        raise SchemaError(f"relationship {start}-[:{rel_type}]->{end} is not in the schema")
    return spec


def key_of(label: str) -> str:
    """The key property name of a label."""
    return KEY_PROPERTY[check_label(label)]


PropertyValue = str | int | float | bool | list[str] | list[int] | list[float] | list[bool]


_INT64 = range(-(2**63), 2**63)


def _storable_scalar(value: object) -> bool:
    """A str, bool, int or float Neo4j can take: ints within 64 bits, text that is valid
    Unicode (a lone surrogate cannot be sent as UTF-8)."""
    if isinstance(value, bool | float):
        return True
    if isinstance(value, int):
        return value in _INT64
    if isinstance(value, str):
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    return False


def check_property_value(name: str, value: object) -> None:
    """Refuse values Neo4j cannot store, so the embedded store refuses them too."""
    if value is None or _storable_scalar(value):
        return
    items = list(value) if isinstance(value, list | tuple) else [value]
    homogeneous = len({type(v) for v in items}) <= 1
    if homogeneous and all(_storable_scalar(v) for v in items):
        return
    if homogeneous and all(isinstance(v, str | int) for v in items):
        raise SchemaError(
            f"property {name!r} has a value the graph cannot store (an integer beyond 64 bits or "
            f"text that is not valid Unicode): {repr(value)[:80]}"
        )
    raise SchemaError(
        f"property {name!r} has a value of type {type(value).__name__} that the graph cannot store;"
        " store nested data as a JSON string"
    )
