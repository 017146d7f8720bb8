"""The relationship ledger: which organisations the seller really corresponds with, and why not.

An organisation is a **relationship** when it is CRM-listed, or when seller people and its
people have written to each other in both directions (unique messages: copies are removed
before, :mod:`streams.identity.fingerprint`). Everything else is traffic kept and counted with
its reason, never a scored account: one-way inbound (newsletters, feeds, cold mail),
one-way outbound (unanswered outreach, prospects), automated (list and bulk mail; many rotating
sender addresses of one domain with one-way traffic), and, per message, mail that is no
interaction at all (no seller participant, free-mail/ISP senders, seller-only mail).

:class:`Relationship` is the per-organisation evidence — small, typed, pure, with
``to_dict``/``from_dict`` — so a scoring state can hold one per account. :class:`Ledger` folds a
mailbox's resolved interactions and rejections into them, and also reports **suggested seller
domains**: organisations whose people also write from a seller domain (the same name key or
first.last local part), or whose name is a seller domain's (``enron.net`` beside ``enron.com``):
affiliates that belong on the seller side (add them with ``--seller-domain`` or
``RAPPORT_SELLER_DOMAINS``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.contracts import Envelope, parse_time
from streams.identity.domains import registered_domain
from streams.identity.people import person_key
from streams.scoring.relationship import (
    CRM_METHODS,
    conversation_keys,
    exchange,
    is_relationship,
    note_topics,
)

ROTATING_SENDERS = 5  # distinct one-way sender addresses of one domain that mark a mailing system

# Reasons an organisation is not a relationship (``Relationship.reason``).
ONE_WAY_INBOUND = "one-way inbound"
ONE_WAY_OUTBOUND = "one-way outbound"
AUTOMATED = "automated"
ROTATING = "automated (rotating sender addresses, one-way)"
AFFILIATE = "affiliate (suggested seller domain)"
ONE_DAY = "two-way within one day only (a one-off)"
NO_REPLY = "both ways, but never on one thread or subject (no reply)"
# Reasons a message is no interaction (``Ledger.not_interactions``), from the resolver's rejection.
NO_SELLER = "no seller participant"
FREE_MAIL = "free-mail/ISP or role sender"
SELLER_ONLY = "seller-side only (internal mail)"
SELLER_PERSONAL = "the seller's own personal address (mail to or from it)"
OTHER = "other rejection"


@dataclass
class Relationship:
    """One organisation's correspondence with the seller side, counted in unique messages."""

    organisation: str
    crm_listed: bool = False
    inbound: int = 0  # messages its people wrote to seller people
    outbound: int = 0  # messages seller people wrote to its people
    automated: int = 0  # its list, bulk and machine mail
    buyer_people: set[str] = field(default_factory=set)  # its addresses that wrote or were written to
    seller_people: set[str] = field(default_factory=set)  # seller addresses that wrote or were written to
    senders: set[str] = field(default_factory=set)  # its addresses that sent mail (people or machines)
    first_exchange: str | None = None  # event time of its first person-sent message, either way
    last_exchange: str | None = None
    affiliate: bool = False  # a suggested seller domain (set by the ledger)
    conversed: bool = False  # the two sides wrote on one thread or subject (relationship.note_topics)
    topics: dict[str, int] = field(default_factory=dict)  # conversation key -> direction bits, until then

    def is_relationship(self) -> bool:
        """CRM-listed, or both sides wrote to each other (and it is not the seller's own affiliate)."""
        return is_relationship(
            self.crm_listed, self.inbound, self.outbound, self.affiliate, self.span_s(), self.conversed
        )

    def span_s(self) -> float:
        """Seconds from its first to its last person-sent message, either way."""
        if not self.first_exchange or not self.last_exchange:
            return 0.0
        return (parse_time(self.last_exchange) - parse_time(self.first_exchange)).total_seconds()

    def reason(self) -> str | None:
        """Why it is not a relationship (``None`` when it is)."""
        if self.is_relationship():
            return None
        if self.affiliate:
            return AFFILIATE
        if self.inbound and not self.outbound:
            return ROTATING if len(self.senders) >= ROTATING_SENDERS else ONE_WAY_INBOUND
        if self.outbound and not self.inbound:
            return ONE_WAY_OUTBOUND
        if self.outbound and not self.conversed:
            return NO_REPLY
        if self.outbound:
            return ONE_DAY
        return AUTOMATED

    def observe(self, interaction: dict[str, Any], occurred_at: str) -> None:
        """Count one unique ``interaction/1`` payload of this organisation."""
        if interaction.get("match_method") in CRM_METHODS:
            self.crm_listed = True
        if interaction.get("channel") != "email":
            return
        detail = interaction.get("detail") or {}
        sender = detail.get("sender")
        if interaction.get("direction") == "inbound" and sender:
            self.senders.add(sender)
        way = exchange("email", str(interaction.get("direction")), bool(interaction.get("automated")))
        if way is None:
            self.automated += 1
            return
        keys = conversation_keys(
            str(interaction.get("interaction_id") or ""),
            interaction.get("thread_id"),
            interaction.get("in_reply_to"),
            detail.get("topic"),
        )
        if not self.conversed and note_topics(self.topics, keys, way):
            self.conversed, self.topics = True, {}
        if way == "outbound":
            self.outbound += 1
            self.buyer_people.update(interaction.get("buyers") or [])
            if sender:
                self.seller_people.add(sender)
        else:
            self.inbound += 1
            if sender:
                self.buyer_people.add(sender)
            self.seller_people.update(interaction.get("sellers") or [])
        self.first_exchange = min(filter(None, (self.first_exchange, occurred_at)))
        self.last_exchange = max(filter(None, (self.last_exchange, occurred_at)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "organisation": self.organisation,
            "crm_listed": self.crm_listed,
            "inbound": self.inbound,
            "outbound": self.outbound,
            "automated": self.automated,
            "buyer_people": sorted(self.buyer_people),
            "seller_people": sorted(self.seller_people),
            "senders": sorted(self.senders),
            "first_exchange": self.first_exchange,
            "last_exchange": self.last_exchange,
            "affiliate": self.affiliate,
            "conversed": self.conversed,
            "topics": self.topics,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Relationship:
        return cls(
            organisation=data["organisation"],
            crm_listed=bool(data.get("crm_listed")),
            inbound=int(data.get("inbound", 0)),
            outbound=int(data.get("outbound", 0)),
            automated=int(data.get("automated", 0)),
            buyer_people=set(data.get("buyer_people") or ()),
            seller_people=set(data.get("seller_people") or ()),
            senders=set(data.get("senders") or ()),
            first_exchange=data.get("first_exchange"),
            last_exchange=data.get("last_exchange"),
            affiliate=bool(data.get("affiliate")),
            conversed=bool(data.get("conversed", "topics" not in data)),  # older ledgers: kept
            topics=dict(data.get("topics") or {}),
        )


def rejection_category(reason: str) -> str:
    """The ledger's category for a resolver or parser rejection reason."""
    if "no seller participant" in reason:
        return NO_SELLER
    if reason.startswith("unmatched") or "unmatched;" in reason:
        return FREE_MAIL
    if "personal address" in reason:
        return SELLER_PERSONAL
    if "only seller-side participants" in reason:
        return SELLER_ONLY
    return OTHER


@dataclass
class Ledger:
    """A mailbox's relationships, the messages that are no interaction, and suggested seller domains."""

    seller_domains: tuple[str, ...]
    relationships: dict[str, Relationship] = field(default_factory=dict)
    not_interactions: Counter[str] = field(default_factory=Counter)
    outside_twins: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    seller_name_keys: dict[str, str] = field(default_factory=dict)  # seller address → its name key

    def observe(self, envelope: Envelope) -> None:
        """Fold one resolved ``interaction/1`` (or a CRM record carrying its account id)."""
        payload = envelope.payload
        account = payload.get("account_id")
        if not account or str(account).startswith("seller:"):
            return
        relationship = self.relationships.setdefault(account, Relationship(account))
        if envelope.schema != "interaction/1":
            relationship.crm_listed = True  # a CRM account, contact or opportunity record
            return
        relationship.observe(payload, envelope.occurred_at)
        detail = payload.get("detail") or {}
        if payload.get("direction") == "outbound" and detail.get("sender_name_key"):
            self.seller_name_keys.setdefault(detail["sender"], detail["sender_name_key"])
        twin = detail.get("sender_seller_twin")
        if twin and payload.get("direction") == "inbound":
            self.outside_twins[account].add(str(payload["detail"]["sender"]))

    def seller_persons(self, relationship: Relationship) -> set[str]:
        """The distinct seller people behind its seller addresses (``m.presto`` and ``kevin.presto``,
        signed alike, are one; so are Notes' reversed ``scott'.'josey`` and ``josey.scott``)."""
        return {person_key(a, self.seller_name_keys.get(a)) for a in relationship.seller_people}

    def reject(self, reason: str) -> None:
        """Count one message that is no interaction, by its category."""
        self.not_interactions[rejection_category(reason)] += 1

    def suggested_seller_domains(self) -> list[dict[str, Any]]:
        """Organisations that look like the seller's own: shared people, or the seller's name."""
        seller_labels = {registered_domain(d).split(".")[0] for d in self.seller_domains}
        found = []
        for organisation in sorted(self.relationships):
            evidence = sorted(self.outside_twins.get(organisation, ()))
            named = organisation.split(".")[0] in seller_labels
            if evidence or named:
                why = []
                if evidence:
                    why.append("its people also write from a seller domain (same name or first.last)")
                if named:
                    why.append("its name is a seller domain's")
                found.append(
                    {
                        "domain": organisation,
                        "reason": "; ".join(why),
                        "people": evidence,
                        "add_with": f"--seller-domain {organisation} (or RAPPORT_SELLER_DOMAINS)",
                    }
                )
        return found

    def finish(self) -> list[Relationship]:
        """Mark suggested seller domains as affiliates; every organisation, most messages first."""
        for suggestion in self.suggested_seller_domains():
            self.relationships[suggestion["domain"]].affiliate = True
        return sorted(
            self.relationships.values(),
            key=lambda r: (-(r.inbound + r.outbound + r.automated), r.organisation),
        )

    def summary(self) -> dict[str, Any]:
        """The overall figures: accounts, relationships, unconfirmed traffic by reason."""
        ranked = self.finish()
        relationships = [r for r in ranked if r.is_relationship()]
        by_reason: Counter[str] = Counter()
        messages_by_reason: Counter[str] = Counter()
        for r in ranked:
            reason = r.reason()
            if reason:
                by_reason[reason] += 1
                messages_by_reason[reason] += r.inbound + r.outbound + r.automated
        two_way = [r for r in ranked if r.inbound and r.outbound]
        return {
            "organisations": len(ranked),
            "relationship_accounts": len(relationships),
            "two_way_share_of_organisations": round(len(two_way) / len(ranked), 3) if ranked else None,
            "two_way_share_of_relationship_accounts": (
                round(sum(1 for r in relationships if r.inbound and r.outbound) / len(relationships), 3)
                if relationships
                else None
            ),
            "unconfirmed_by_reason": dict(by_reason.most_common()),
            "unconfirmed_messages_by_reason": dict(messages_by_reason.most_common()),
            "not_interactions_by_reason": dict(self.not_interactions.most_common()),
            "suggested_seller_domains": self.suggested_seller_domains(),
        }


def ledger_of(envelopes: Iterable[Envelope], seller_domains: Iterable[str]) -> Ledger:
    """A ledger of resolved envelopes (unique ones: remove copies first)."""
    ledger = Ledger(tuple(seller_domains))
    for envelope in envelopes:
        ledger.observe(envelope)
    return ledger
