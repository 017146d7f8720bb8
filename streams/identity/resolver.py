"""Identity resolution: a raw envelope becomes canonical records keyed by account.

Deterministic, so the live agent and replay place every event identically: the account of an
email or meeting is the CRM account of a buyer who is a known contact, else the CRM account
that lists a buyer's registered domain (both from the CRM directory,
:mod:`streams.identity.directory`, the resolver's only state), else the registered domain of its
buyer-side participants as a provisional account; CRM records keep the account id they carry.
The seller side is decided by the configured seller domains. Automated mail is flagged here
(and excluded from scoring downstream, but kept and counted).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streams.contracts import ContractError, Envelope, parse_time
from streams.identity.directory import CrmDirectory, normalise_address
from streams.identity.domains import organisation_domain, registered_domain

AUTOMATED_LOCALPARTS = frozenset(
    {
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "mailer-daemon",
        "postmaster",
        "bounce",
        "notifications",
        "calendar-notification",
        "newsletter",
    }
)
# Bulk senders that set no List-Unsubscribe/Precedence header (common before 2005): their
# address gives them away.
BULK_LOCALPART_WORDS = (
    "newsletter",
    "mailer",
    "noreply",
    "no-reply",
    "notification",
    "alert",
    "bounce",
    "listserv",
    "majordomo",
    "daemon",
    "digest",
    "promo",
)
BULK_SUBDOMAINS = frozenset(
    {
        "lists",
        "list",
        "news",
        "newsletter",
        "newsletters",
        "bounce",
        "bounces",
        "mailer",
        "mailers",
        "email",
        "e",
        "em",
        "mkt",
        "marketing",
    }
)


def is_bulk_sender(address: str) -> bool:
    local, _, domain = address.rpartition("@")
    if local in AUTOMATED_LOCALPARTS or any(word in local for word in BULK_LOCALPART_WORDS):
        return True
    organisation = registered_domain(domain)
    below = domain[: -len(organisation)].rstrip(".").split(".") if organisation else []
    return any(label in BULK_SUBDOMAINS for label in below)


# Interactions forwarded as they are: CRM entity upserts go to the score agent unchanged.
CRM_ENTITIES = ("crm_account/1", "crm_contact/1", "crm_opportunity/1")
CRM_CONFIDENCE = 1.0  # CRM records and activities: the CRM names the account
CONTACT_CONFIDENCE = 0.95  # a buyer address is a known CRM contact of the account
CRM_DOMAIN_CONFIDENCE = 0.9  # a buyer's domain is listed by exactly one CRM account
# A buyer's domain is listed by several CRM accounts: one is picked (most buyers, then lowest
# id) but it is a guess, below the 0.5 that the data-quality board counts as low confidence.
SHARED_CRM_DOMAIN_CONFIDENCE = 0.45
DOMAIN_CONFIDENCE = 0.8  # the buyers' one corporate domain (a provisional account)
SPLIT_DOMAIN_CONFIDENCE = 0.5  # the most common of several corporate domains among the buyers


class ResolveError(ContractError):
    """A valid message that cannot be placed on any account; the text says why."""


@dataclass(frozen=True, slots=True)
class Match:
    """The account an interaction is placed on, how it was found and how sure that is."""

    account_id: str
    method: str
    confidence: float
    candidates: tuple[str, ...] = ()  # every account that could have been meant, when several

    def detail(self) -> dict[str, Any]:
        """What the ``detail`` column records about the match: the candidates of a guess."""
        return {"match_candidates": list(self.candidates)} if len(self.candidates) > 1 else {}


@dataclass(frozen=True, slots=True)
class Resolved:
    """One canonical record for the ``interactions`` topic, keyed by account."""

    account_id: str
    envelope: Envelope


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


ROLE_LOCALPARTS = AUTOMATED_LOCALPARTS | frozenset(
    {
        "info",
        "sales",
        "support",
        "admin",
        "contact",
        "hello",
        "office",
        "help",
        "billing",
        "marketing",
        "news",
        "team",
        "enquiries",
        "service",
        "webmaster",
        "hr",
        "jobs",
        "careers",
    }
)


def is_organisation(address: str) -> bool:
    """The address belongs to an organisation's own domain (not free-mail, not a bare suffix)."""
    return bool(organisation_domain(domain_of(address)))


def can_create_account(address: str) -> bool:
    """Free-mail and role addresses, and bare public suffixes, never become accounts."""
    local = address.rpartition("@")[0]
    return is_organisation(address) and local not in ROLE_LOCALPARTS and not is_bulk_sender(address)


def thread_key(email: dict[str, Any], participants: Iterable[str]) -> str:
    """The thread of a ``raw_email/1`` payload.

    The provider's thread id (Gmail ``threadId``, Graph ``conversationId``), else the first
    References id (the thread's root), else In-Reply-To. Mail without any of them (most of the
    Enron mailbox) is threaded by its normalised subject's hash together with the sorted
    participant set, so that "Re: Pricing" between the same people joins "Pricing"; without a
    subject a message is its own thread.
    """
    references = email.get("references") or []
    linked = email.get("thread_id") or (references[0] if references else email.get("in_reply_to"))
    if linked:
        return str(linked)
    if not email.get("subject_hash"):
        return str(email["message_id"])
    people = ",".join(sorted({normalise_address(a) for a in participants}))
    return "subject:" + hashlib.sha256(f"{email['subject_hash']}|{people}".encode()).hexdigest()[:32]


class Resolver:
    """Places raw envelopes on accounts for one set of seller domains."""

    def __init__(self, seller_domains: Iterable[str], directory: CrmDirectory | None = None) -> None:
        self.seller_domains = tuple(sorted({d.lower() for d in seller_domains}))
        self.directory = directory or CrmDirectory()

    def is_seller(self, address: str) -> bool:
        domain = domain_of(address)
        return any(domain == d or domain.endswith("." + d) for d in self.seller_domains)

    def resolve(self, envelope: Envelope) -> list[Resolved]:
        """Canonical records for one envelope; :class:`ResolveError` if it fits nowhere."""
        schema = envelope.schema
        if schema == "raw_email/1":
            return [self._email(envelope)]
        if schema == "raw_meeting/1":
            return [self._meeting(envelope)]
        if schema == "crm_activity/1":
            return [self._activity(envelope)]
        if schema in ("crm_contact/1", "crm_account/1"):
            self.directory.learn(envelope)
        if schema in CRM_ENTITIES:
            return [Resolved(envelope.payload["account_id"], envelope)]
        if schema == "crm_seller/1":  # not an account's record: keyed by the seller
            return [Resolved(f"seller:{envelope.payload['seller_id']}", envelope)]
        raise ResolveError(f"schema {schema!r} is not a raw source schema the resolver knows")

    def _split(self, addresses: Iterable[str]) -> tuple[list[str], list[str]]:
        sellers: list[str] = []
        buyers: list[str] = []
        for address in dict.fromkeys(normalise_address(a) for a in addresses):
            (sellers if self.is_seller(address) else buyers).append(address)
        return sellers, buyers

    def _account(self, buyers: list[str], envelope: Envelope, automated: bool = False) -> Match:
        """The buyers' account, in the order: CRM contact, CRM account domain, provisional domain.

        A buyer address that is a known CRM contact decides first (the most common contact
        account). Next a buyer's organisation domain listed by a CRM account (any address on it,
        role addresses included: they join an account, they do not create one). Otherwise the
        buyers' organisation domain becomes a provisional account: automated mail keeps its
        sender's organisation (it is counted, never scored); a person's mail needs a corporate
        address. Ties go to the lowest id, so every resolver decides alike.
        """
        if not self.seller_domains:
            raise ResolveError(
                f"{envelope.event_id}: no seller domains configured, so the seller side is unknown; "
                "set RAPPORT_SELLER_DOMAINS or pass --seller-domain"
            )
        if not buyers:
            raise ResolveError(f"{envelope.event_id}: only seller-side participants; no account")
        at = parse_time(envelope.occurred_at).timestamp()
        known = Counter(a for a in (self.directory.account_of(b, at) for b in buyers) if a)
        if known:
            return Match(min(known, key=lambda a: (-known[a], a)), "crm_contact", CONTACT_CONFIDENCE)
        listed: Counter[str] = Counter()
        for buyer in buyers:
            if is_organisation(buyer):
                listed.update(self.directory.accounts_of_domain(registered_domain(domain_of(buyer)), at))
        if listed:
            candidates = tuple(sorted(listed, key=lambda a: (-listed[a], a)))
            shared = len(candidates) > 1
            confidence = SHARED_CRM_DOMAIN_CONFIDENCE if shared else CRM_DOMAIN_CONFIDENCE
            return Match(candidates[0], "crm_domain", confidence, candidates)
        corporate = [b for b in buyers if can_create_account(b) or (automated and is_organisation(b))]
        if not corporate:
            # No ": " in the reason: ingest summaries group reasons by what follows the first one,
            # and the data-quality board counts reasons starting with "unmatched".
            raise ResolveError(
                "unmatched; the buyer side has only free-mail, role or public-suffix addresses, "
                "which never create accounts"
            )
        counts = Counter(registered_domain(domain_of(b)) for b in corporate)
        confidence = DOMAIN_CONFIDENCE if len(counts) == 1 else SPLIT_DOMAIN_CONFIDENCE
        return Match(min(counts, key=lambda d: (-counts[d], d)), "domain", confidence)

    def _interaction(self, envelope: Envelope, account_id: str, **fields: Any) -> Resolved:
        payload = {
            "account_id": account_id,
            "occurred_at": envelope.occurred_at,
            "source_event_id": envelope.event_id,
            "thread_id": None,
            "in_reply_to": None,
            "version": 0,
            "status": None,
            "kind": fields.get("channel", ""),
            "detail": {},
            **fields,
        }
        # Built from a validated envelope by this module; tests check it meets interaction/1.
        return Resolved(
            account_id,
            Envelope("interaction/1", envelope.event_id, envelope.source, envelope.occurred_at, payload),
        )

    @staticmethod
    def is_automated(envelope: Envelope) -> bool:
        """Bulk or machine mail: list headers, auto-submitted, or a bulk sender address."""
        if envelope.schema != "raw_email/1":
            return False
        p = envelope.payload
        return bool(
            p.get("list_unsubscribe")
            or (p.get("auto_submitted") or "no").lower() != "no"
            or (p.get("precedence") or "").lower() in ("bulk", "list", "junk")
            or is_bulk_sender(normalise_address(p["from"]))
        )

    def _email(self, envelope: Envelope) -> Resolved:
        p = envelope.payload
        sender = normalise_address(p["from"])
        sellers, buyers = self._split([sender, *p["to"], *p.get("cc", [])])
        automated = self.is_automated(envelope)
        match = self._account(buyers, envelope, automated)
        direction = "outbound" if self.is_seller(sender) else "inbound"
        return self._interaction(
            envelope,
            match.account_id,
            interaction_id=f"email:{p['message_id']}",
            channel="email",
            direction=direction,
            sellers=sellers,
            buyers=buyers,
            automated=automated,
            match_method=match.method,
            match_confidence=match.confidence,
            thread_id=thread_key(p, [*sellers, *buyers]),
            in_reply_to=p.get("in_reply_to"),
            detail={
                "size_bytes": p.get("size_bytes", 0),
                "has_attachments": p.get("has_attachments", False),
                "sender": sender,
                **match.detail(),
            },
        )

    def _meeting(self, envelope: Envelope) -> Resolved:
        p = envelope.payload
        organizer = normalise_address(p["organizer"])
        statuses = {normalise_address(a["email"]): a.get("partstat", "NEEDS-ACTION") for a in p["attendees"]}
        sellers, buyers = self._split([organizer, *statuses])
        match = self._account(buyers, envelope)
        return self._interaction(
            envelope,
            match.account_id,
            interaction_id=f"meeting:{p['uid']}",
            channel="meeting",
            kind="meeting",
            direction="outbound" if self.is_seller(organizer) else "inbound",
            sellers=sellers,
            buyers=buyers,
            automated=False,
            match_method=match.method,
            match_confidence=match.confidence,
            version=p["sequence"],
            status=p["status"].lower(),
            detail={
                "organizer": organizer,
                "partstat": statuses,
                "end": p["end"],
                "created": p.get("created"),
                "description_length": p.get("description_length", 0),
                **match.detail(),
            },
        )

    def _activity(self, envelope: Envelope) -> Resolved:
        p = envelope.payload
        kind = p["type"]
        direction = {"call": "mutual", "meeting": "mutual", "note": "internal"}.get(kind, "outbound")
        return self._interaction(
            envelope,
            p["account_id"],
            interaction_id=f"crm:{p['activity_id']}",
            channel="crm",
            kind=kind,
            direction=direction,
            sellers=[normalise_address(p["owner"])],
            buyers=[normalise_address(a) for a in p.get("contact_emails", [])],
            automated=False,
            match_method="crm",
            match_confidence=CRM_CONFIDENCE,
        )
