"""The one rule of what an account is: CRM-listed, or both sides wrote to each other.

Shared by the identity ledger (:class:`streams.identity.relationship.Relationship`, which counts
a mailbox's organisations for ``ingest`` and ``audit``) and the scoring state (which counts the
same unique messages in event-time order and writes health rows and alerts only for a
relationship), so the two can never disagree about the rule itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.records import Held, HeldInteraction

CRM_METHODS = frozenset({"crm", "crm_contact", "crm_domain"})
# An exchange confined to one day is a one-off, not a relationship: presto-k's alerts on
# grassy.com, pira.com, austinenergy.com and ong.com (hand-labelled wrong or debatable, see
# docs/scoring.md) all came from one thread on one day. 24 hours, not "two dates": two archive
# copies of one mail can carry Date headers 10 hours apart (ong.com).
MIN_EXCHANGE_SPAN_S = 86400.0
# Mail both ways is not yet correspondence: the two sides must have written on one thread or one
# subject (a reply). presto-k's miami.edu (hand-labelled wrong: the seller's own football
# tickets) had an "Invoices" mail out and two unrelated notices in, months apart; every account
# labelled right or debatable shares at least one subject both ways. The conversation keys of
# each direction are kept (short hashes) only until the first match, at most this many.
TOPICS_KEPT = 128


def is_relationship(
    crm_listed: bool,
    inbound: int,
    outbound: int,
    affiliate: bool = False,
    span_s: float = 0.0,
    conversed: bool = False,
) -> bool:
    """CRM-listed, or its people and the seller side wrote to each other: unique person-sent
    messages each way over at least :data:`MIN_EXCHANGE_SPAN_S` (``span_s``: first to last such
    message), at least one of them answering the other side (``conversed``: :func:`note_topics`),
    and it is not the seller's own affiliate."""
    two_way = inbound > 0 and outbound > 0 and span_s >= MIN_EXCHANGE_SPAN_S and conversed
    return crm_listed or (two_way and not affiliate)


@dataclass(slots=True)
class Evidence:
    """An account's part of the rule: its evidence, counted as its events settle (unique
    person-sent messages each way, their span, whether the sides answered each other)."""

    crm_listed: bool = False
    exchanged: dict[str, int] = field(default_factory=lambda: {"inbound": 0, "outbound": 0})
    exchange_span: list[float] = field(default_factory=list)  # [first, last] exchanged message time
    affiliate: bool = False  # its people also write from a seller domain (the seller's own)
    conversed: bool = False  # the two sides wrote on one thread or subject (note_topics)
    topics: dict[str, int] = field(default_factory=dict)  # conversation key -> direction bits, until then

    def holds(self) -> bool:
        """The rule (:func:`is_relationship`) on this evidence."""
        span = self.exchange_span[1] - self.exchange_span[0] if self.exchange_span else 0.0
        inbound, outbound = self.exchanged["inbound"], self.exchanged["outbound"]
        return is_relationship(self.crm_listed, inbound, outbound, self.affiliate, span, self.conversed)

    def observe(self, at: float, data: Held) -> None:
        """Count one settled record: any CRM record lists the account; a unique person-sent
        message counts its way, its time and its conversation keys."""
        if not isinstance(data, HeldInteraction):
            self.crm_listed = True
            return
        if data.match_method in CRM_METHODS:
            self.crm_listed = True
        way = exchange(data.channel, data.direction, data.automated)
        if way and int(data.version) == 0:
            self.exchanged[way] += 1
            if not self.conversed and note_topics(self.topics, data.topics, way):
                self.conversed, self.topics = True, {}
            span = self.exchange_span
            self.exchange_span = [min(span[0], at), max(span[-1], at)] if span else [at, at]
        if way == "inbound" and data.detail.get("sender_seller_twin"):
            self.affiliate = True  # the ledger's affiliate evidence (streams.identity.relationship)


def conversation_keys(
    interaction_id: str, thread_id: str | None, in_reply_to: str | None, topic: str | None
) -> list[str]:
    """What ties a message to the other side's, as short hashes: its own id and the id it
    answers (In-Reply-To), its thread (a provider thread, the References root; the resolver's
    subject-and-people fallback), and its subject's keyed hash (``detail.topic``: replies often
    add or drop a cc, which changes the fallback thread)."""
    own = interaction_id.partition(":")[2] if interaction_id.startswith("email:") else None
    keys = {k for k in (own, in_reply_to, thread_id, f"topic:{topic}" if topic else None) if k}
    return sorted(hashlib.blake2b(k.encode(), digest_size=6).hexdigest() for k in keys)


def note_topics(topics: dict[str, int], keys: Iterable[str], way: str) -> bool:
    """Record one exchanged message's conversation keys for its direction (``way``); True when
    one of them was seen the other way already. ``topics`` (key -> direction bits) keeps the
    :data:`TOPICS_KEPT` most recently used keys; the caller clears it after a match."""
    bit = 2 if way == "outbound" else 1
    answered = False
    for key in keys:
        seen = topics.pop(key, 0)
        answered = answered or bool(seen & ~bit)
        topics[key] = seen | bit
    while len(topics) > TOPICS_KEPT:
        del topics[next(iter(topics))]
    return answered


def exchange(channel: str, direction: str, automated: bool) -> str | None:
    """Which way a message counts for the rule: ``inbound``, ``outbound`` or not at all (only
    person-sent email counts; list and machine mail, meetings and CRM entries do not)."""
    if channel != "email" or automated:
        return None
    return "outbound" if direction == "outbound" else "inbound"
