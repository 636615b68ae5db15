"""What linkage, scoring and attribution read from the store, gathered in one pass.

``Facts`` holds, per shared-entity label, which accounts use each value with their counts and
first/last times, plus the properties of accounts and of the entities. Streaming the
relationships once (``iter_relationships``) works the same on both stores and keeps detection
independent of Cypher. The exception is the prompt-template uses, tens of millions at the seed
scale: they are read from staging when the workspace has it and kept column-wise
(``uses.UseTable``). The raw exchanges never enter here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.linkage.template_props import TemplateProps
from graph.linkage.uses import Use, UseTable
from graph.schema import USE_REL_OF, Label, Rel
from graph.staging import WITHHELD_PREFIX, read_template_table, read_template_uses
from graph.store import GraphStore

USE_RELS = USE_REL_OF
ENTITY_LABELS: tuple[str, ...] = (*USE_RELS, Label.NETWORK.value, Label.ASN.value)


@dataclass
class Facts:
    """Accounts, entities and who uses what. ``uses[label][key][account] -> Use``."""

    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    entities: dict[str, Mapping[str, dict[str, Any]]] = field(default_factory=dict)
    uses: dict[str, Mapping[str, Mapping[str, Use]]] = field(default_factory=dict)
    workspace: Path | None = None
    _accounts_using: dict[frozenset[tuple[str, str]], frozenset[str]] = field(default_factory=dict, repr=False, compare=False)
    _onsets: Any = field(default=None, repr=False, compare=False)
    _tables: dict[str, UseTable] = field(default_factory=dict, repr=False, compare=False)

    def props(self, label: str, key: str) -> dict[str, Any]:
        return self.entities.get(label, {}).get(key, {})

    def users(self, label: str) -> Mapping[str, Mapping[str, Use]]:
        return self.uses.get(label, {})

    def accounts_using(self, entities: frozenset[tuple[str, str]]) -> frozenset[str]:
        """Every account that uses any of ``entities`` ((label, key) pairs); remembered, since
        attribution asks it for each indicator of each cluster."""
        found = self._accounts_using.get(entities)
        if found is None:
            users: set[str] = set()
            for label, key in entities:
                values = self.users(label)
                if isinstance(values, UseTable):
                    users.update(values.accounts_of(key))
                else:
                    users.update(values.get(key, {}))
            found = self._accounts_using[entities] = frozenset(users)
        return found

    def onsets(self) -> Mapping[str, Any]:
        """account -> its behaviour-change onset (``graph.takeover.read_onsets``), read from
        the staged exchanges once per run: linking and scoring both ask, and at the seed scale
        each read is a pass over tens of millions of exchanges."""
        if isinstance(self._onsets, Future):
            self._onsets = self._onsets.result()
        if self._onsets is None:
            from graph import takeover  # graph.takeover builds on this package

            self._onsets = takeover.read_onsets(self.workspace)
        return self._onsets  # type: ignore[no-any-return]

    def read_onsets_meanwhile(self) -> None:
        """Start reading the onsets on a thread; ``onsets()`` waits for them. DuckDB's pass
        over the staged exchanges (about a minute at the seed scale) then runs while the
        accounts, values and uses stream in over Bolt, mostly waiting on the server."""
        if self._onsets is not None:
            return
        from graph import takeover

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onsets")
        self._onsets = pool.submit(takeover.read_onsets, self.workspace)
        pool.shutdown(wait=False)

    def table(self, label: str) -> UseTable:
        """The uses of ``label`` as a column table, made once: several linkers walk the same
        uses (network linking and prompt linking's infrastructure groups both read the IPs,
        1.3M uses at the seed scale)."""
        values = self.users(label)
        if isinstance(values, UseTable):
            return values
        table = self._tables.get(label)
        if table is None:
            table = self._tables[label] = UseTable.from_mapping(values)
        return table

    def template_table(self) -> UseTable:
        """The prompt-template uses as a column table (how ``read_facts`` keeps them), kept as
        the uses themselves."""
        table = self.uses[Label.PROMPT_TEMPLATE.value] = self.table(Label.PROMPT_TEMPLATE.value)
        return table

    def account_entities(self, accounts: Iterable[str] | None = None) -> dict[str, set[tuple[str, str]]]:
        """account -> every (label, key) it uses, for ``accounts`` (default: all)."""
        wanted = None if accounts is None else set(accounts)
        out: dict[str, set[tuple[str, str]]] = {}
        for label, values in self.uses.items():
            if isinstance(values, UseTable):
                for key, account in values.pairs_of(wanted):
                    out.setdefault(account, set()).add((label, key))
                continue
            for key, users in values.items():
                for account in users:
                    if wanted is None or account in wanted:
                        out.setdefault(account, set()).add((label, key))
        return out


def _use_from(props: dict[str, Any]) -> Use:
    count = props.get("count")
    return Use(
        count=int(count) if isinstance(count, int | float) and count else 1,
        first=str(props.get("first_seen") or ""),
        last=str(props.get("last_seen") or props.get("first_seen") or ""),
    )


def _derive(uses: Mapping[str, Mapping[str, Use]], parent_of: dict[str, str]) -> dict[str, dict[str, Use]]:
    """Uses of a parent entity (network of an IP, ASN of a network) from its children's."""
    out: dict[str, dict[str, Use]] = {}
    for child, users in uses.items():
        parent = parent_of.get(child)
        if not parent:
            continue
        bucket = out.setdefault(parent, {})
        for account, use in users.items():
            bucket.setdefault(account, Use()).merge(use)
    return out


def _props_by_key(nodes: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Properties by key, in key order: the stores stream in different orders, and everything
    downstream (pair generation, the order of vertices Leiden sees) follows dict order, so
    sorting here is what makes both stores give the same clusters."""
    return {n.key: dict(n.props) for n in sorted(nodes, key=lambda n: n.key)}


def _canonical(values: dict[str, dict[str, Use]]) -> dict[str, dict[str, Use]]:
    return {key: dict(sorted(users.items())) for key, users in sorted(values.items())}


def _template_uses(store: GraphStore, workspace: Path | None, accounts: Mapping[str, Any]) -> UseTable:
    """Prompt-template uses, the biggest table by far: from staging when the workspace has
    it (DuckDB computes every use the loader aggregates, in seconds instead of streaming tens
    of millions of relationships), else from the store, which lacks the uses of templates one
    account sent and of hub templates (``uses_staged``; over ``hub_max_accounts`` anyway)."""
    if workspace is not None:
        table = read_template_uses(workspace)
        if table is not None:
            return UseTable.from_arrow(table, accounts)
    return UseTable.from_uses(
        (rel.end[1], rel.start[1], _use_from(rel.props)) for rel in store.iter_relationships(Rel.SENT_TEMPLATE)
    )


def _template_props(store: GraphStore, workspace: Path | None) -> Mapping[str, dict[str, Any]]:
    """The templates' properties: column-wise from templates.parquet when the workspace has it
    (``TemplateProps``: every template an account sent, so its capability mix counts every
    prompt), plus the graph's nodes that staging lacks; a withheld ``h:`` node says only that
    it is withheld, which ``TemplateProps`` answers without holding millions of them."""
    table = read_template_table(workspace) if workspace is not None else None
    if table is None:
        return _props_by_key(store.iter_nodes(Label.PROMPT_TEMPLATE))
    props = TemplateProps(table)
    # the withheld nodes are most of the graph's templates (3.5M of 3.5M at the seed scale,
    # 140 s over Bolt) and TemplateProps answers for them unread
    others = store.iter_nodes(Label.PROMPT_TEMPLATE, skip_key_prefix=WITHHELD_PREFIX)
    props.add_missing(_props_by_key(n for n in others if n.key not in props))
    return props


def read_facts(store: GraphStore, workspace: Path | None = None, only: Iterable[str] | None = None,
               onsets: bool = False) -> Facts:
    """Gather accounts, entity properties and uses from ``store``; ``only`` limits the
    shared-entity labels read (IP brings its networks and ASNs along). ``onsets``: read the
    behaviour-change onsets from the workspace meanwhile (``Facts.read_onsets_meanwhile``),
    for a caller that will ask for them (detection does)."""
    wanted = set(USE_RELS) if only is None else set(only)
    facts = Facts(workspace=workspace)
    if onsets and workspace is not None:
        facts.read_onsets_meanwhile()
    facts.accounts = _props_by_key(store.iter_nodes(Label.ACCOUNT))
    for label in ENTITY_LABELS:
        if label == Label.PROMPT_TEMPLATE.value and label in wanted:
            facts.entities[label] = _template_props(store, workspace)
        elif label in wanted or (Label.IP.value in wanted and label in (Label.NETWORK.value, Label.ASN.value)):
            facts.entities[label] = _props_by_key(store.iter_nodes(label))
    facts.entities.setdefault(Label.IP.value, {})
    facts.entities.setdefault(Label.NETWORK.value, {})
    for label, rel_type in USE_RELS.items():
        if label not in wanted:
            continue
        if label == Label.PROMPT_TEMPLATE.value:
            facts.uses[label] = _template_uses(store, workspace, facts.accounts)
            continue
        values: dict[str, dict[str, Use]] = {}
        for rel in store.iter_relationships(rel_type):
            account, key = rel.start[1], rel.end[1]
            values.setdefault(key, {})[account] = _use_from(rel.props)
        facts.uses[label] = _canonical(values)
    if Label.IP.value not in wanted:
        return facts
    ip_net = {r.start[1]: r.end[1] for r in store.iter_relationships(Rel.IN_NETWORK)}
    for ip, props in facts.entities[Label.IP.value].items():
        if ip not in ip_net and props.get("network"):
            ip_net[ip] = str(props["network"])
    net_asn = {r.start[1]: r.end[1] for r in store.iter_relationships(Rel.IN_ASN)}
    for net, props in facts.entities[Label.NETWORK.value].items():
        if net not in net_asn and props.get("asn") not in (None, ""):
            net_asn[net] = str(props["asn"])
    facts.uses[Label.NETWORK.value] = _derive(facts.uses[Label.IP.value], ip_net)
    facts.uses[Label.ASN.value] = _derive(facts.uses[Label.NETWORK.value], net_asn)
    return facts
