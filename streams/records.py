"""The shapes of Rapport's canonical records, each written once: the payload of every input
schema as a typed record, what scoring holds of it until it settles, and its warehouse row in
both directions (``row`` for the sink, ``from_row`` for ``forget``, which rebuilds the records
from the warehouse).

Imports nothing else of Rapport, so every stage may import it. Records are ``msgspec.Struct``:
measured here against slotted dataclasses on an interaction payload, ``msgspec.convert`` takes
0.77 µs against 0.55 µs for ``Dataclass(**payload)``, but it checks types on the way in, and
``msgspec.to_builtins`` takes 0.86 µs against 1.8 µs for the dataclass's field loop
(``dataclasses.asdict``: 30 µs). Held records are ``array_like``: a stored state keeps a list of
values per pending record, not a dict of names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import msgspec
import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: str) -> datetime:
    """ISO 8601 with offset (as the contracts require) → aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def format_time(value: datetime) -> str:
    """Aware datetime → the contracts' ISO form in UTC with millisecond precision."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def upsert_version(updated_at: str) -> int:
    """CRM upserts: the later record wins, whatever order they arrive in (and any CRM record
    wins over a provisional row, which has version 0)."""
    return int(parse_time(updated_at).timestamp() * 1000) + 1


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# --- what scoring holds of a record until it settles -----------------------------------------


class HeldInteraction(msgspec.Struct, array_like=True):
    interaction_id: str
    direction: str
    channel: str
    sellers: list[str]
    buyers: list[str]
    status: str | None
    version: int
    in_reply_to: str | None
    topics: list[str]  # conversation keys (streams.scoring.relationship.conversation_keys)
    automated: bool
    match_method: str
    detail: dict[str, Any]  # the detail fields scoring reads (HELD_DETAIL)


class HeldContact(msgspec.Struct, array_like=True):
    email: str
    title: str | None
    active: bool


class HeldOpportunity(msgspec.Struct, array_like=True):
    opportunity_id: str
    stage: str
    status: str


class HeldAccount(msgspec.Struct, array_like=True):
    owner: str


Held = HeldInteraction | HeldContact | HeldOpportunity | HeldAccount
HELD: dict[str, type[Held]] = {
    "interaction": HeldInteraction,
    "contact": HeldContact,
    "opportunity": HeldOpportunity,
    "account": HeldAccount,
}
HELD_DETAIL = (
    "sender",
    "organizer",
    "partstat",
    "end",
    "created",
    "description_length",
    "sender_seller_twin",
)
# States stored before the held records were typed kept a dict with short names.
_OLD_NAMES = {
    "iid": "interaction_id",
    "dir": "direction",
    "ch": "channel",
    "reply_to": "in_reply_to",
    "match": "match_method",
    "id": "opportunity_id",
}


def held_from_stored(kind: str, stored: Any) -> Held:
    """A held record as a stored state keeps it: a list of values, or (older states) a dict."""
    cls = HELD[kind]
    if isinstance(stored, Mapping):
        named = {_OLD_NAMES.get(k, k): v for k, v in stored.items()}
        named = {k: v for k, v in named.items() if k in cls.__struct_fields__}
        named.setdefault("topics", [])
        return msgspec.convert([named[k] for k in cls.__struct_fields__], cls)
    return msgspec.convert(stored, cls)


# --- the input records -----------------------------------------------------------------------


class Interaction(msgspec.Struct, kw_only=True):
    """The canonical interaction (``interaction/1``): one email, meeting or CRM activity placed
    on an account by identity resolution."""

    TABLE: ClassVar[str] = "interactions"

    interaction_id: str
    account_id: str
    occurred_at: str
    channel: str
    direction: str
    sellers: list[str]
    buyers: list[str]
    automated: bool
    match_method: str
    match_confidence: float
    source_event_id: str
    kind: str | None = None
    thread_id: str | None = None
    in_reply_to: str | None = None
    status: str | None = None
    version: int = 0
    detail: dict[str, Any] = {}

    def held(self, topics: list[str]) -> HeldInteraction:
        return HeldInteraction(
            self.interaction_id,
            self.direction,
            self.channel,
            self.sellers,  # a record decoded for this event alone: no copy
            self.buyers,
            self.status,
            self.version,
            self.in_reply_to,
            topics,
            self.automated,
            self.match_method,
            {k: self.detail[k] for k in HELD_DETAIL if k in self.detail},
        )

    def row(self) -> dict[str, Any]:
        return {
            "interaction_id": self.interaction_id,
            "account_id": self.account_id,
            "occurred_at": parse_time(self.occurred_at),
            "channel": self.channel,
            "direction": self.direction,
            "kind": self.kind or self.channel,
            "sellers": self.sellers,
            "buyers": self.buyers,
            "thread_id": self.thread_id or "",
            "in_reply_to": self.in_reply_to or "",
            "status": self.status or "",
            "automated": int(self.automated),
            "match_method": self.match_method,
            "match_confidence": float(self.match_confidence),
            "source_event_id": self.source_event_id,
            "detail": _json(self.detail),
            "version": self.version,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Interaction:
        return cls(
            interaction_id=row["interaction_id"],
            account_id=row["account_id"],
            occurred_at=format_time(row["occurred_at"]),
            channel=row["channel"],
            direction=row["direction"],
            kind=row["kind"],
            sellers=list(row["sellers"]),
            buyers=list(row["buyers"]),
            thread_id=row["thread_id"] or None,
            in_reply_to=row["in_reply_to"] or None,
            status=row["status"] or None,
            automated=bool(row["automated"]),
            match_method=row["match_method"],
            match_confidence=float(row["match_confidence"]),
            source_event_id=row["source_event_id"],
            version=int(row["version"]),
            detail=orjson.loads(row["detail"] or "{}"),
        )


class CrmAccount(msgspec.Struct, kw_only=True):
    """``crm_account/1``."""

    TABLE: ClassVar[str] = "accounts"

    account_id: str
    name: str
    domains: list[str]
    updated_at: str
    owner: str | None = None
    industry: str | None = None

    def held(self) -> HeldAccount:
        return HeldAccount(self.owner or "")

    def row(self, source: str) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "domains": [d.lower() for d in self.domains],
            "owner": self.owner or "",
            "industry": self.industry or "",
            "provisional": 0,
            "source": source,
            "updated_at": parse_time(self.updated_at),
            "version": upsert_version(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CrmAccount:
        return cls(
            account_id=row["account_id"],
            name=row["name"],
            domains=list(row["domains"]),
            owner=row["owner"] or None,
            industry=row["industry"] or None,
            updated_at=format_time(row["updated_at"]),
        )


ACCOUNTS = "accounts"  # the table of CrmAccount rows and provisional ones


def provisional_account_row(account_id: str) -> dict[str, Any]:
    """An account known only from its domain: listed so boards and data-quality checks see it."""
    return {
        "account_id": account_id,
        "name": account_id,
        "domains": [account_id],
        "owner": "",
        "industry": "",
        "provisional": 1,
        "source": "identity",
        "updated_at": EPOCH,
        "version": 0,
    }


class CrmContact(msgspec.Struct, kw_only=True):
    """``crm_contact/1``."""

    TABLE: ClassVar[str] = "contacts"

    contact_id: str
    account_id: str
    email: str
    updated_at: str
    name: str = ""
    title: str | None = None
    active: bool = True

    def held(self) -> HeldContact:
        return HeldContact(self.email.lower(), self.title, self.active)

    def row(self, source: str, seniority: str, department: str) -> dict[str, Any]:
        """The contacts row; ``seniority`` and ``department`` classify the title
        (:func:`streams.scoring.titles.classify_title`)."""
        return {
            "email": self.email.lower(),
            "contact_id": self.contact_id,
            "account_id": self.account_id,
            "name": self.name or "",
            "title": self.title or "",
            "seniority": seniority,
            "department": department,
            "active": int(self.active),
            "source": source,
            "updated_at": parse_time(self.updated_at),
            "version": upsert_version(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CrmContact:
        return cls(
            contact_id=row["contact_id"],
            account_id=row["account_id"],
            email=row["email"],
            name=row["name"],
            title=row["title"] or None,
            active=bool(row["active"]),
            updated_at=format_time(row["updated_at"]),
        )


class CrmOpportunity(msgspec.Struct, kw_only=True):
    """``crm_opportunity/1`` (``close_date`` and ``next_step`` are not kept)."""

    TABLE: ClassVar[str] = "opportunities"

    opportunity_id: str
    account_id: str
    stage: str
    status: str
    updated_at: str
    amount: float | None = None
    owner: str | None = None
    created_at: str | None = None

    def held(self) -> HeldOpportunity:
        return HeldOpportunity(self.opportunity_id, self.stage, self.status)

    def row(self, source: str = "") -> dict[str, Any]:
        return {
            "opportunity_id": self.opportunity_id,
            "account_id": self.account_id,
            "stage": self.stage,
            "status": self.status,
            "amount": float(self.amount or 0.0),
            "owner": self.owner or "",
            "created_at": parse_time(self.created_at or self.updated_at),
            "updated_at": parse_time(self.updated_at),
            "version": upsert_version(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CrmOpportunity:
        return cls(
            opportunity_id=row["opportunity_id"],
            account_id=row["account_id"],
            stage=row["stage"],
            status=row["status"],
            amount=float(row["amount"]),
            owner=row["owner"] or None,
            created_at=format_time(row["created_at"]),
            updated_at=format_time(row["updated_at"]),
        )


class CrmSeller(msgspec.Struct, kw_only=True):
    """``crm_seller/1``."""

    TABLE: ClassVar[str] = "sellers"

    seller_id: str
    name: str
    updated_at: str
    email: str | None = None
    manager: str | None = None
    team: str | None = None

    def row(self, source: str) -> dict[str, Any]:
        return {
            "seller_id": self.seller_id,
            "name": self.name,
            "email": (self.email or "").lower(),
            "manager": self.manager or "",
            "team": self.team or "",
            "source": source,
            "updated_at": parse_time(self.updated_at),
            "version": upsert_version(self.updated_at),
        }


# --- the rows scoring writes ------------------------------------------------------------------


class ScoreRow(msgspec.Struct, kw_only=True):
    """A row the scoring core makes; ``TABLE`` is its warehouse table, ``columns`` what the
    sink inserts (``explanation``: the JSON the boards and ``rapport explain`` read)."""

    TABLE: ClassVar[str]

    def columns(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


class HealthRow(ScoreRow):
    """An account's health and depth on a day (provisional while the day is open: even version)."""

    TABLE: ClassVar[str] = "account_health"
    account_id: str
    as_of: date
    score: float
    tier: str
    depth: float
    engaged_contacts: int
    explanation: str
    model_version: str
    version: int
    trend_30d: float
    seniority_coverage: int
    function_coverage: int
    sellers_engaged: int
    coverage: list[str]
    last_touch: datetime
    top_reason: str


class AlertRow(ScoreRow):
    """An alert as raised (version 1, open) or resolved (version 2)."""

    TABLE: ClassVar[str] = "alerts"
    alert_id: str
    account_id: str
    raised_at: datetime
    kind: str
    severity: str
    reason: str
    explanation: str
    model_version: str
    version: int
    status: str
    subject: str
    ended_at: datetime


class ValueRow(ScoreRow):
    """An interaction's value, written when its buyer-response window closes."""

    TABLE: ClassVar[str] = "interaction_value"
    interaction_id: str
    account_id: str
    occurred_at: datetime
    score: float
    explanation: str
    model_version: str
    version: int
    channel: str
    direction: str
    seller: str
    buyers: list[str]
    outcomes: list[str]


class PreparednessRow(ScoreRow):
    """The seller's preparedness for an external meeting, as of its start."""

    TABLE: ClassVar[str] = "meeting_preparedness"
    meeting_id: str
    account_id: str
    starts_at: datetime
    seller: str
    score: float
    explanation: str
    model_version: str
    version: int
    status: str
    tier: str
    buyer_attendees: int
    missing: list[str]


def payload_of(record: msgspec.Struct) -> dict[str, Any]:
    """The record as its schema's payload (what ``forget`` sends back through scoring)."""
    payload: dict[str, Any] = msgspec.to_builtins(record)
    return payload
