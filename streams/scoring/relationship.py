"""The one rule of what an account is: CRM-listed, or both sides wrote to each other.

Shared by the identity ledger (:class:`streams.identity.relationship.Relationship`, which counts
a mailbox's organisations for ``ingest`` and ``audit``) and the scoring state (which counts the
same unique messages in event-time order and writes health rows and alerts only for a
relationship), so the two can never disagree about the rule itself.
"""

from __future__ import annotations

CRM_METHODS = frozenset({"crm", "crm_contact", "crm_domain"})
# An exchange confined to one day is a one-off, not a relationship: presto-k's alerts on
# grassy.com, pira.com, austinenergy.com and ong.com (hand-labelled wrong or debatable, see
# docs/scoring.md) all came from one thread on one day. 24 hours, not "two dates": two archive
# copies of one mail can carry Date headers 10 hours apart (ong.com).
MIN_EXCHANGE_SPAN_S = 86400.0


def is_relationship(
    crm_listed: bool, inbound: int, outbound: int, affiliate: bool = False, span_s: float = 0.0
) -> bool:
    """CRM-listed, or its people wrote to the seller side and the seller side wrote to them
    (unique person-sent messages each way) over at least :data:`MIN_EXCHANGE_SPAN_S` (``span_s``:
    first to last such message), and it is not the seller's own affiliate."""
    two_way = inbound > 0 and outbound > 0 and span_s >= MIN_EXCHANGE_SPAN_S
    return crm_listed or (two_way and not affiliate)


def exchange(channel: str, direction: str, automated: bool) -> str | None:
    """Which way a message counts for the rule: ``inbound``, ``outbound`` or not at all (only
    person-sent email counts; list and machine mail, meetings and CRM entries do not)."""
    if channel != "email" or automated:
        return None
    return "outbound" if direction == "outbound" else "inbound"
