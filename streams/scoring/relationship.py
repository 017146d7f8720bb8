"""The one rule of what an account is: CRM-listed, or both sides wrote to each other.

Shared by the identity ledger (:class:`streams.identity.relationship.Relationship`, which counts
a mailbox's organisations for ``ingest`` and ``audit``) and the scoring state (which counts the
same unique messages in event-time order and writes health rows and alerts only for a
relationship), so the two can never disagree about the rule itself.
"""

from __future__ import annotations

CRM_METHODS = frozenset({"crm", "crm_contact", "crm_domain"})


def is_relationship(crm_listed: bool, inbound: int, outbound: int, affiliate: bool = False) -> bool:
    """CRM-listed, or its people wrote to the seller side and the seller side wrote to them
    (unique person-sent messages each way), and it is not the seller's own affiliate."""
    return crm_listed or (inbound > 0 and outbound > 0 and not affiliate)


def exchange(channel: str, direction: str, automated: bool) -> str | None:
    """Which way a message counts for the rule: ``inbound``, ``outbound`` or not at all (only
    person-sent email counts; list and machine mail, meetings and CRM entries do not)."""
    if channel != "email" or automated:
        return None
    return "outbound" if direction == "outbound" else "inbound"
