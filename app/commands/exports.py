"""``sybilscope export clusters|graph``: the cluster table and evidence exports.

``export clusters -o PATH --format csv|json`` writes every cluster with its members (CSV columns
exactly ``cluster_id,account_id,score,flagged,operator_id``). ``export graph -o PATH --format
graphml|gexf|json|stix|html|csv|parquet|report [--cluster ID …] [--operator ID] [--redact]``
writes the evidence of the chosen clusters (default: every flagged cluster); ``report`` and the
table formats write a directory. A one-line summary goes to stderr; stdout stays empty unless
``--json`` asks for the summary as JSON.
"""

from __future__ import annotations

from pathlib import Path

import click

from app.commands.common import common_options, emit_json, open_configured_store
from graph.settings import Settings


@click.group("export")
def export_group() -> None:
    """Export clusters and evidence."""


@export_group.command("clusters")
@common_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def export_clusters(settings: Settings, output: Path, fmt: str) -> None:
    """Every cluster with its members (one CSV row per member)."""
    from graph.export.clusters import write_clusters

    with open_configured_store(settings) as store:
        n = write_clusters(store, output, fmt)
    what = "member rows" if fmt == "csv" else "clusters"
    click.echo(f"wrote {n} {what} to {output}", err=True)


@export_group.command("graph")
@common_options
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="File to write (a directory for report, csv and parquet).")
@click.option("--format", "fmt", required=True,
              type=click.Choice(["graphml", "gexf", "json", "stix", "html", "csv", "parquet", "report"]))
@click.option("--cluster", "clusters", multiple=True, metavar="ID", help="Cluster to export (repeatable).")
@click.option("--operator", metavar="ID", help="Export every cluster attributed or suggested to this operator.")
@click.option("--redact", is_flag=True, help="Hash identifiers (salt not exported); drop e-mail, billing data and prompt text; scrub notes, rationales and reasons.")
@click.option("--degree-cap", type=click.IntRange(min=1), default=None,
              help="Leave out shared values with more accounts than this [default: the ui_degree_cap setting].")
@click.option("--full", is_flag=True,
              help="Everything one hop around the members, not just what links them; says first how big it is.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary of what was written on stdout.")
def export_graph_cmd(
    settings: Settings, output: Path, fmt: str, clusters: tuple[str, ...], operator: str | None,
    redact: bool, degree_cap: int | None, full: bool, as_json: bool,
) -> None:
    """Evidence exports: graph files, STIX 2.1, standalone HTML, the evidence report.

    Each holds the evidence graph of the clusters (members and the values two or more of
    them share). Above the evidence_fold_members setting (SYBILSCOPE_EVIDENCE_FOLD_MEMBERS,
    1,500) the graph is folded: members who share the same values form one group node (with
    its member count and list), links between groups are aggregated, and every file says
    so; the report's members.csv and links.csv still list every member and its strongest
    links. --full is never folded. The report is a directory: report.md and report.html,
    the full tables as CSV, graph.html and, when the report stays within its 10 MB budget,
    graph.json (else it says so; --format json writes it)."""
    from graph.export.run import export_graph

    if clusters and operator:
        raise click.UsageError("give --cluster or --operator, not both")
    with open_configured_store(settings) as store:
        result = export_graph(
            store, output, fmt, cluster_ids=clusters, operator_id=operator, redact=redact,
            workspace=settings.workspace, degree_cap=degree_cap or settings["ui_degree_cap"],
            full=full, links_per_account=settings["evidence_links_per_account"],
            phase=lambda text: click.echo(text, err=True) if text.startswith(("full export", "leaving", "folding")) else None,
        )
    if as_json:
        emit_json(result.to_json())
    click.echo(
        f"wrote {fmt} export of {len(result.clusters)} cluster(s), {result.nodes} nodes and "
        f"{result.relationships} relationships{' (redacted)' if redact else ''}"
        f"{f', folded: {result.folded}' if result.folded else ''} to {output}",
        err=True,
    )
