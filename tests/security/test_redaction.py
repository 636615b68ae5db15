"""Redaction redacts (issue 14, row 6): identifiers, e-mail addresses, phone and card numbers,
IP addresses and URLs planted in a note, an attribution rationale, a status reason and a link
reason appear in no file of any redacted export format, while the plain export shows them all
(so the check can fail)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from graph import cases
from graph.export.run import GRAPH_FORMATS, export_graph
from graph.schema import Label, Rel
from graph.stores.embedded import EmbeddedStore
from tests.worlds.evidence import build_world, raw_identifiers, write_staging

# ---- redaction ----------------------------------------------------------------------------------

PLANTED = {
    "e-mail": "mallory.ops@evil-mail.example",
    "phone": "+1 415 555 0199",
    "card": "4111 1111 1111 1111",
    "ip outside the cluster": "198.18.7.7",
    "url": "https://evil-mail.example/drop?id=7",
    "account outside the cluster": "acct-c1",
    "operator name": "Alpha Lab",
}
# what must not show in any file: each planted value and its telling parts
NEEDLES = [*PLANTED.values(), "mallory", "evil-mail", "555 0199", "4111 1111", "198.18.7"]


def _plant(where: str) -> str:
    return (f"{where}: write to {PLANTED['e-mail']} or call {PLANTED['phone']}; card {PLANTED['card']} "
            f"from {PLANTED['ip outside the cluster']} as {PLANTED['account outside the cluster']} did, "
            f"for {PLANTED['operator name']}, see {PLANTED['url']}")


@pytest.mark.parametrize("folded", [False, True], ids=["members", "folded"])
def test_redacted_exports_show_no_planted_identifier_in_any_file(tmp_path: Path, folded: bool,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if folded:  # members grouped by what they share (graph/evidence_fold.py): the groups list them
        monkeypatch.setenv("SYBILSCOPE_EVIDENCE_FOLD_MEMBERS", "1")
    store = EmbeddedStore(None)
    build_world(store)
    ws = tmp_path / "ws"
    write_staging(ws)
    cases.add_note(store, (Label.CLUSTER.value, "c-1"), _plant("note"), who="bob")
    cases.attribute(store, "c-1", who="alice", confidence=0.9, rationale=_plant("rationale"), operator_id="op-alpha")
    cases.set_status(store, "c-1", "confirmed", who="alice", reason=_plant("status"))
    link = next(r for r in store.iter_relationships(Rel.LINKED) if r.start[1] == "acct-a1" and r.end[1] == "acct-a2")
    reasons = json.loads(link.props["reasons"])
    reasons[0]["why"] = _plant("link reason")
    store.upsert_relationships(Rel.LINKED, Label.ACCOUNT, Label.ACCOUNT,
                               [{"start": "acct-a1", "end": "acct-a2", "reasons": json.dumps(reasons)}])
    written: list[Path] = []
    for fmt in GRAPH_FORMATS:
        written += export_graph(store, tmp_path / f"redacted-{fmt}", fmt, cluster_ids=["c-1"], redact=True,
                                workspace=ws, degree_cap=50).files
    assert len(written) >= 20
    needles = {n: re.compile(rb"(?<![0-9A-Za-z])" + re.escape(n.encode()) + rb"(?![0-9A-Za-z])")
               for n in [*NEEDLES, *raw_identifiers()]}
    for path in written:
        data = path.read_bytes()
        leaked = [n for n, pattern in needles.items() if pattern.search(data)]
        assert not leaked, f"{path.name} shows {leaked}"
    md = (tmp_path / "redacted-report" / "report.md").read_text()
    for where in ("note", "rationale", "status"):  # scrubbed, not dropped: the rest of the text still reads
        assert f"{where}: write to \\[email\\] or call \\[phone\\]; card \\[card\\] from \\[ip\\] as h-" in md, where
    if not folded:  # a folded graph's links between groups carry no reasons (links.csv of the report does)
        assert "[email]" in (tmp_path / "redacted-json").read_text()  # the link reason travels scrubbed
    else:
        assert "members folded into" in (tmp_path / "redacted-json").read_text()
        assert ",h-" in (tmp_path / "redacted-report" / "links.csv").read_text()  # the members' links, hashed
    # the same export without --redact shows them all, so the check above can fail
    plain = export_graph(store, tmp_path / "plain", "report", cluster_ids=["c-1"], workspace=ws, degree_cap=50)
    text = b"".join(p.read_bytes() for p in plain.files)
    assert all(v.encode() in text for v in PLANTED.values())


