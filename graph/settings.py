"""The one table of settings: name, default, help text, and the ``SYBILSCOPE_*`` variable.

A value comes from, in order of precedence: an explicit override (a CLI option), the
environment variable, or the default. ``Settings.source`` says which, so
``sybilscope settings`` can show where every value came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "SYBILSCOPE_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: type = str

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    # Where things live
    Setting("workspace", ".sybilscope", "Workspace directory: embedded graph, staging, quarantine, local Neo4j data."),
    Setting("progress", "auto", "How long commands (generate, load, detect) report progress on stderr: 'auto' draws bars and spinners when stderr is a terminal and stays silent otherwise; 'lines' writes one timestamped line per step (elapsed time and peak memory), for logs and batch jobs; 'off' never."),
    Setting("store", "embedded", "Graph store: 'embedded' (networkx, persisted in the workspace) or a bolt:// / neo4j:// URI."),
    # Neo4j connection
    Setting("neo4j_user", "neo4j", "Neo4j user name (the local server runs without auth; any value works there)."),
    Setting("neo4j_password", "", "Neo4j password; empty means no authentication."),
    Setting("neo4j_database", "neo4j", "Neo4j database name."),
    Setting("neo4j_connect_timeout", 10.0, "Seconds to wait for a Neo4j connection before giving up.", float),
    # Local Neo4j server
    Setting("neo4j_version", "5.26.30", "Neo4j Community version the local server gathers from Maven Central."),
    Setting("neo4j_bolt_port", 7687, "Bolt port of the local Neo4j server (127.0.0.1 only).", int),
    Setting("neo4j_heap", "2g", "Java heap (-Xmx) of the local Neo4j server."),
    Setting("neo4j_pagecache", "2g", "Page cache size of the local Neo4j server."),
    Setting("neo4j_start_timeout", 180.0, "Seconds 'neo4j start' waits for Bolt to answer (jar download excluded).", float),
    Setting("neo4j_cache_dir", "", "Where gathered Neo4j jars are cached; empty means ~/.cache/sybilscope."),
    # Loading
    Setting("neo4j_bulk_import", "auto", "'auto': a load into an empty database of this workspace's local Neo4j writes import files and loads them with neo4j-admin database import (stopping and restarting the server); 'off': always MERGE in batches. Incremental loads and remote servers always MERGE in batches."),
    Setting("batch_size", 2000, "Rows per write batch (UNWIND $rows) when writing to the graph store.", int),
    Setting("hash_salt", "", "Key (HMAC-SHA-256) for hashing e-mails, phones and billing names; empty means a random key kept in <workspace>/salt (mode 0600)."),
    Setting("max_line_bytes", 64 << 20, "Longest input line (JSONL) or CSV field/line in bytes the loader reads; a longer one stops the load naming file and line.", int),
    Setting("max_decompressed_bytes", 200 << 30, "Most bytes the loader decompresses from one .gz input file (or a Parquet file declares uncompressed); more stops the load naming the file.", int),
    Setting("graph_template_hub_senders", 200, "A prompt template sent by more accounts than this is written to the graph as its node (accounts, exchanges, first/last time) without its SENT_TEMPLATE relationships: its uses stay in staging, where search, evidence, saved queries and detection read them. Such hub templates (an app's system prompt, a common one-liner) carried most template uses; 200 is the UI's degree cap, over which they are drawn as hubs anyway.", int),
    # Detection
    Setting("hub_max_accounts", 50, "A shared value (IP, network, card, device, template) used by more accounts than this is a hub: suppressed as link evidence and reported.", int),
    Setting("flag_threshold", 0.5, "A cluster is flagged when its score is at least this (0-1).", float),
    Setting("engine", "local", "Where detection makes, combines and cuts candidate pairs and finds the strong-link components: 'local' (this process, NumPy) or 'spark' (Apache Spark at spark_master; needs the optional 'spark' dependencies and Java 17). Both give the same clusters, scores and links."),
    Setting("spark_master", "local[2]", "Spark master URL for engine 'spark': local[n] runs Spark inside this process on n cores; spark://host:7077, yarn or k8s://... a cluster (see README, Running detection on Spark)."),
    Setting("links_per_account", 20, "LINKED edges detection writes per account: its strongest links inside its cluster (plus every strong link across clusters).", int),
    # Saved queries (user-written Cypher on Neo4j)
    Setting("user_query_timeout_s", 60.0, "Seconds a saved query (built-in or team) may run on Neo4j before the server stops it.", float),
    Setting("user_query_row_limit", 10_000, "Most rows a saved query returns; a result cut at this limit says so.", int),
    # Evidence exports
    Setting("evidence_links_per_account", 10, "LINKED edges an evidence graph (exports, the cluster canvas) keeps per member: its strongest links inside the cluster.", int),
    Setting("evidence_max_links", 2_500, "About the most LINKED edges one evidence graph keeps: a cluster too big for evidence_links_per_account each keeps fewer per member (at least one).", int),
    Setting("evidence_fold_members", 1_500, "An evidence graph (exports, the cluster canvas) of more members than this is folded: members grouped by the shared values they use, each group with its member count and list, links between groups aggregated; every member and its strongest links stay rows of the report's members.csv and links.csv. 0 never folds; --full never folds. Unfolded, a graph's files fit their size budgets up to about 2,400 members, but the exports of the medium world's 2,200-member cluster sit at the 5 s target (its report 4.1 – 5.9 s, redacted exports up to 1.7x plain), folded 2.0 – 3.8 s.", int),
    Setting("evidence_fold_groups", 200, "About the most groups a folded evidence graph has (see evidence_fold_members): members with the same shared values form a group, and the least shared values are set aside until no more groups than this are left.", int),
    # UI
    Setting("ui_port", 8501, "Port of 'sybilscope ui'.", int),
    Setting("ui_host", "127.0.0.1", "Address 'sybilscope ui' binds: 127.0.0.1 keeps it on this machine; 0.0.0.0 opens it to the network."),
    Setting("ui_degree_cap", 200, "Neighbours with more connections than this are shown as collapsed hubs in the UI.", int),
    Setting("ui_users_file", "", "YAML file of investigators with hashed passwords; empty means single-user mode."),
    Setting("ui_identity_header", "", "HTTP header carrying the investigator's name when behind an authenticating proxy."),
    Setting("ui_proxy_secret", "", "Shared secret the authenticating proxy sends on every request; required with ui_identity_header."),
    Setting("ui_proxy_secret_header", "X-Sybilscope-Proxy-Secret", "HTTP header carrying ui_proxy_secret from the proxy."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, raw: Any) -> Any:
    if setting.kind is bool and isinstance(raw, str):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    try:
        return setting.kind(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"setting {setting.name} ({setting.env_var}) expects {setting.kind.__name__}, got {raw!r}"
        ) from exc


class Settings:
    """Resolved values of every setting, each with the source it came from."""

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        for setting in SETTINGS:
            if overrides and overrides.get(setting.name) is not None:
                self._values[setting.name] = _coerce(setting, overrides[setting.name])
                self._sources[setting.name] = "option"
            elif env.get(setting.env_var, "") != "":
                self._values[setting.name] = _coerce(setting, env[setting.env_var])
                self._sources[setting.name] = f"env {setting.env_var}"
            else:
                self._values[setting.name] = setting.default
                self._sources[setting.name] = "default"

    def __getitem__(self, name: str) -> Any:
        if name not in _BY_NAME:
            raise KeyError(f"unknown setting {name!r}")
        return self._values[name]

    def source(self, name: str) -> str:
        return self._sources[name]

    def replaced(self, **values: Any) -> Settings:
        """A copy with ``values`` set, as options would set them."""
        copy = Settings.__new__(Settings)
        copy._values, copy._sources = dict(self._values), dict(self._sources)
        for name, raw in values.items():
            copy._values[name] = _coerce(_BY_NAME[name], raw)
            copy._sources[name] = "option"
        return copy

    @property
    def workspace(self) -> Path:
        return Path(self["workspace"]).expanduser().resolve()

    @property
    def is_neo4j(self) -> bool:
        return str(self["store"]).startswith(("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://"))

    def rows(self) -> list[dict[str, Any]]:
        """One row per setting, for ``sybilscope settings``; secrets are masked."""
        out = []
        for setting in SETTINGS:
            value = self._values[setting.name]
            if setting.name in {"neo4j_password", "hash_salt", "ui_proxy_secret"} and value:
                value = "********"
            out.append(
                {
                    "name": setting.name,
                    "value": value,
                    "default": setting.default,
                    "source": self._sources[setting.name],
                    "env_var": setting.env_var,
                    "help": setting.help,
                }
            )
        return out
