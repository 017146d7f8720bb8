"""Identity resolution: a raw envelope becomes canonical records keyed by account.

Deterministic, so the live agent and replay place every event identically: the account of an
email or meeting is the CRM account of a buyer who is a known contact, else the CRM account
that lists a buyer's registered domain (both from the CRM directory,
:mod:`streams.identity.directory`, the resolver's only state), else the registered domain of its
buyer-side participants as a provisional account; CRM records keep the account id they carry.
The seller side is decided by the configured seller domains, plus the seller people's own
personal addresses (same name or first.last local part, :mod:`streams.identity.people`). An
email belongs to one organisation: inbound mail to its sender's, outbound mail to its To
recipients' (Cc only when no buyer is in To), so a cc'd third party never takes another
organisation's mail. Mail with no seller-side participant is no interaction (rejected with the
reason). Automated mail is flagged here (:mod:`streams.identity.noise`; excluded from scoring
downstream, but kept and counted).
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
from streams.identity.noise import AUTOMATED_LOCALPARTS, automated_reason, is_bulk_sender
from streams.identity.people import SellerPeople

__all__ = ["ResolveError", "Resolved", "Resolver", "is_bulk_sender", "normalise_address", "registered_domain"]

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
        self._seller_domain: dict[str, bool] = {}  # domain → on a seller domain (a cache)
        # Seller people's names live in the directory's store, so live workers share them too.
        self.people = SellerPeople(self.directory.store)

    def is_seller_domain(self, address: str) -> bool:
        domain = domain_of(address)
        known = self._seller_domain.get(domain)
        if known is None:
            known = any(domain == d or domain.endswith("." + d) for d in self.seller_domains)
            if len(self._seller_domain) < 65536:
                self._seller_domain[domain] = known
        return known

    def is_seller(self, address: str, name_key: str | None = None) -> bool:
        """On a seller domain, or a seller person's own personal address: the same name key or
        first.last as a seller address, on a free-mail or ISP domain. The same person on another
        organisation's domain is an affiliate instead (:meth:`seller_twin`; reported, not assumed)."""
        if self.is_seller_domain(address):
            return True
        return not is_organisation(address) and self.people.seller_twin(address, name_key) is not None

    def seller_twin(self, address: str, name_key: str | None = None) -> str | None:
        """The seller address of the same person as an outside address, if one is known."""
        return None if self.is_seller_domain(address) else self.people.seller_twin(address, name_key)

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
        domains = [registered_domain(domain_of(b)) for b in corporate]
        counts = Counter(domains)
        confidence = DOMAIN_CONFIDENCE if len(counts) == 1 else SPLIT_DOMAIN_CONFIDENCE
        # A tie goes to the first addressed (buyers come in header order), never the alphabet's first.
        return Match(min(counts, key=lambda d: (-counts[d], domains.index(d))), "domain", confidence)

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
    def automated_reason(envelope: Envelope) -> str | None:
        """Why an email is bulk or machine mail (:mod:`streams.identity.noise`), else ``None``."""
        if envelope.schema != "raw_email/1":
            return None
        p = envelope.payload
        envelope_sender = p.get("envelope_sender")
        return automated_reason(
            p, normalise_address(p["from"]), normalise_address(envelope_sender) if envelope_sender else None
        )

    @classmethod
    def is_automated(cls, envelope: Envelope) -> bool:
        """Bulk or machine mail: list headers, auto-submitted, or a list, bounce or bulk sender."""
        return cls.automated_reason(envelope) is not None

    def _email(self, envelope: Envelope) -> Resolved:
        p = envelope.payload
        sender = normalise_address(p["from"])
        key = p.get("from_name_key")
        if self.is_seller_domain(sender):
            self.people.learn(sender, key)
        outbound = self.is_seller(sender, key)
        to = [normalise_address(a) for a in p["to"]]
        cc = [normalise_address(a) for a in p.get("cc", [])]
        sellers, buyers = self._split([*to, *cc])
        if outbound:
            sellers = list(dict.fromkeys([sender, *sellers]))
        else:
            buyers = list(dict.fromkeys([sender, *buyers]))
        if not sellers and self.seller_domains:
            raise ResolveError(
                f"{envelope.event_id}: no seller participant; mail between outside parties "
                "(a bcc'd or forwarded report) is no interaction"
            )
        automated_because = self.automated_reason(envelope)
        automated = automated_because is not None
        # Whose mail it is: inbound, the sender's organisation; outbound, the To recipients'.
        addressed = ([b for b in buyers if b in to] or buyers) if outbound else [sender]
        twins = [a for a in sellers if not self.is_seller_domain(a)]
        if twins and not buyers:
            raise ResolveError(
                f"{envelope.event_id}: only seller-side participants, one a seller's own personal address; "
                "no account"
            )
        match = self._account(addressed, envelope, automated)
        twin = None if outbound else self.seller_twin(sender, key)
        return self._interaction(
            envelope,
            match.account_id,
            interaction_id=f"email:{p['message_id']}",
            channel="email",
            direction="outbound" if outbound else "inbound",
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
                **({"topic": str(p["subject_hash"])[:16]} if p.get("subject_hash") else {}),
                **({"sender_name_key": key} if key else {}),
                **({"automated_reason": automated_because} if automated_because else {}),
                **({"seller_personal_addresses": twins} if twins else {}),
                **({"sender_seller_twin": twin} if twin else {}),
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
