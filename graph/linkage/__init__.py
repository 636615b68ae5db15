"""Link evidence between accounts, one module per signal family.

``link_accounts(facts, cap)`` runs every family (network, payment, device, email, prompt,
timing) into one ``Evidence``: per account pair, each family's score and the reasons behind it,
plus the hubs that were suppressed. See ``evidence`` for how weights combine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from graph.linkage.device import link_device
from graph.linkage.email import link_email
from graph.linkage.evidence import FAMILIES, Evidence, Hub, Pair, Reason, pair_of
from graph.linkage.facts import Facts, read_facts
from graph.linkage.network import link_network
from graph.linkage.payment import link_payment
from graph.linkage.prompt import link_prompt
from graph.linkage.timing import link_timing

__all__ = ["FAMILIES", "Evidence", "Facts", "Hub", "Pair", "Reason", "link_accounts", "pair_of", "read_facts"]

LINKERS: dict[str, Callable[[Evidence, Facts, int], int]] = {
    "network": link_network,
    "payment": link_payment,
    "device": link_device,
    "email": link_email,
    "prompt": link_prompt,
    "timing": lambda ev, facts, cap: link_timing(ev, facts.workspace, cap),
}


def link_accounts(facts: Facts, cap: int, timings: dict[str, float] | None = None, keep_floor: float = 0.0,
                  phase: Callable[[str], None] | None = None, evidence: Evidence | None = None) -> Evidence:
    """Every family's evidence over ``facts``, and the links of takeover campaigns
    (graph/takeover.py); ``timings`` (if given) gets seconds per family
    and ``phase`` hears which family is being linked. Pairs whose combined weight stays under
    ``keep_floor`` are dropped (see ``Evidence``). ``evidence``: an engine's to link into
    (graph/engine), else a new local one with ``keep_floor``."""
    evidence = Evidence(keep_floor=keep_floor) if evidence is None else evidence
    for family in FAMILIES:
        if phase is not None:
            phase(f"linking accounts: {family} evidence")
        started = time.perf_counter()
        LINKERS[family](evidence, facts, cap)
        if timings is not None:
            timings[f"link_{family}"] = round(time.perf_counter() - started, 3)
    from graph import takeover  # graph.takeover builds on this package: imported when linking

    if phase is not None:
        phase("linking accounts: takeover campaigns")
    started = time.perf_counter()
    takeover.link_campaigns(evidence, facts.onsets())  # a ring with nothing shared but its change
    if timings is not None:
        timings["link_takeover"] = round(time.perf_counter() - started, 3)
    if phase is not None:
        phase("combining the evidence of each account pair")
    started = time.perf_counter()
    len(evidence)  # combine once, every reason in, so the time shows on its own
    if timings is not None:
        timings["link_combine"] = round(time.perf_counter() - started, 3)
    return evidence
