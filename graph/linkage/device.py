"""Device and client-fingerprint evidence.

A device id seen on several accounts is strong evidence. A TLS/SDK client fingerprint is weaker
(one build of a tool on many machines), and the defaults everyone shares (browsers, the official
SDK) are hubs: they exceed the cap and are reported instead of linked.
"""

from __future__ import annotations

from graph.linkage.evidence import Evidence
from graph.linkage.facts import Facts
from graph.linkage.hubs import link_shared_values, shared_reason, shared_weights
from graph.schema import Label

FAMILY = "device"
DEVICE_BASE = 0.9
CLIENT_BASE = 0.4


def link_device(evidence: Evidence, facts: Facts, cap: int) -> int:
    """Add shared-device and shared-client-fingerprint reasons."""
    added = 0
    for label, kind, base in (
        (Label.DEVICE.value, "shared_device", DEVICE_BASE),
        (Label.CLIENT_FINGERPRINT.value, "shared_client", CLIENT_BASE),
    ):
        added += link_shared_values(
            evidence, family=FAMILY, label=label, values=facts.table(label), cap=cap,
            reason_for=shared_reason(FAMILY, kind, label, base), weights_of=shared_weights(base), link_synchronised=label == Label.DEVICE.value,
        )
    return added
