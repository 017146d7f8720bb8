"""Per-account state and the one function that advances it: :meth:`AccountState.apply`.

The state is small and bounded: per buyer contact two timestamps, decayed intensity sums,
and the ids seen within the allowed lateness (so a redelivered event changes nothing). It
serialises to a plain dict for faust's RocksDB table and for tests.

Every output is a warehouse row (table name + column dict); the same rows come out whether
events arrive through the live agents or through ``replay``, in any order within the lateness.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.contracts import Envelope, parse_time
from streams.scoring.health import account_health
from streams.scoring.profile import DEFAULT, Profile

Row = tuple[str, dict[str, Any]]


@dataclass
class AccountState:
    """What the scorer remembers about one account between events.

    Events wait in ``pending`` until the account's watermark (max event time seen) minus the
    allowed lateness passes them; they are then settled in event-time order, so the scores do
    not depend on arrival order within the lateness. :meth:`flush` settles everything (end of
    a replay, or an idle timer in live mode).
    """

    account_id: str
    watermark: float = 0.0  # max event time seen (epoch seconds)
    settled_until: float = 0.0  # event time of the last settled event
    settled: int = 0  # events settled; the version of the health rows
    seen: dict[str, float] = field(default_factory=dict)  # event id -> event time, within lateness
    seen_limit: int = 64  # prune ``seen`` when it grows past this (amortised, not per event)
    pending: list[list[Any]] = field(
        default_factory=list
    )  # [at, id, direction, sellers, buyers, status, version]
    last_out: dict[str, float] = field(default_factory=dict)  # buyer contact -> last seller->buyer
    last_in: dict[str, float] = field(default_factory=dict)  # buyer contact -> last buyer->seller
    sellers: dict[str, float] = field(default_factory=dict)  # seller -> last touch
    intensity: float = 0.0  # decayed count of two-way interactions, as of ``decayed_at``
    inbound: float = 0.0  # decayed count of buyer-initiated interactions
    decayed_at: float = 0.0
    interactions: int = 0
    automated: int = 0
    late: int = 0
    recent: list[str] = field(default_factory=list)  # newest settled event ids, for explanations
    listed: bool = False  # an accounts row exists (from the CRM, or a provisional one written here)

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AccountState:
        return cls(**data)

    # --- the step ----------------------------------------------------------------------------

    def apply(self, envelope: Envelope, lateness_s: float, profile: Profile = DEFAULT) -> list[Row] | None:
        """Take one canonical record; return the warehouse rows it makes final.

        A record already seen (same event id within the allowed lateness) returns ``None``.
        """
        at = parse_time(envelope.occurred_at).timestamp()
        if envelope.event_id in self.seen:
            return None
        self.seen[envelope.event_id] = at
        self.watermark = max(self.watermark, at)
        if len(self.seen) > self.seen_limit:
            # Keep every id that is not yet late: anything at or after the last settled event.
            keep_from = min(self.watermark - lateness_s, self.settled_until)
            self.seen = {k: t for k, t in self.seen.items() if t >= keep_from}
            self.seen_limit = max(64, 2 * len(self.seen))
        payload = envelope.payload
        schema = envelope.schema
        rows: list[Row] = []
        if schema == "interaction/1":
            rows.append(("interactions", interaction_row(envelope)))
            if not self.listed and payload["match_method"] == "domain" and not payload["automated"]:
                rows.append(("accounts", provisional_account_row(self.account_id)))
                self.listed = True
            # Automated mail is kept and counted but contributes nothing else to the scores.
            direction = "automated" if payload["automated"] else payload["direction"]
            item = [
                at,
                envelope.event_id,
                direction,
                payload["sellers"],
                payload["buyers"],
                payload.get("status"),
                payload.get("version", 0),
            ]
            if at < self.settled_until:
                # Later than the allowed lateness: its row is kept, the settled scores are not
                # rewritten. This also makes a redelivery older than the seen-id window harmless.
                self.late += 1
            else:
                bisect.insort(self.pending, item, key=lambda i: (i[0], i[1]))
        elif schema == "crm_account/1":
            rows.append(("accounts", account_row(envelope)))
            self.listed = True
        elif schema == "crm_contact/1":
            rows.append(("contacts", contact_row(envelope)))
        elif schema == "crm_opportunity/1":
            rows.append(("opportunities", opportunity_row(envelope)))
        elif schema == "crm_seller/1":
            rows.append(("sellers", seller_row(envelope)))
        rows.extend(self.settle(self.watermark - lateness_s, profile))
        return rows

    def settle(self, horizon: float, profile: Profile = DEFAULT) -> list[Row]:
        """Settle pending events up to ``horizon`` in event-time order; their health rows."""
        rows: list[Row] = []
        due = bisect.bisect_right(self.pending, horizon, key=lambda i: i[0])
        if not due:
            return rows
        settling, self.pending = self.pending[:due], self.pending[due:]
        for n, item in enumerate(settling):
            self._settle_one(item, profile)
            self.settled_until = item[0]
            # One row per day is kept (the last version wins), so only a day's last event writes one.
            following = settling[n + 1][0] if n + 1 < due else None
            if following is None or _day(following) != _day(item[0]):
                rows.append(("account_health", account_health(self, item[0], profile)))
        return rows

    def flush(self, profile: Profile = DEFAULT) -> list[Row]:
        """Settle everything pending (end of input, or idle)."""
        return self.settle(math.inf, profile)

    def _settle_one(self, item: list[Any], profile: Profile) -> None:
        at, event_id, direction, sellers, buyers, status, version = item
        self.settled += 1
        if direction == "automated":
            self.automated += 1
            return
        if version == 0:
            self.interactions += 1
        for seller in sellers:
            self.sellers[seller] = max(self.sellers.get(seller, 0.0), at)
        if direction in ("outbound", "mutual"):
            for buyer in buyers:
                self.last_out[buyer] = max(self.last_out.get(buyer, 0.0), at)
        if direction in ("inbound", "mutual"):
            for buyer in buyers:
                self.last_in[buyer] = max(self.last_in.get(buyer, 0.0), at)
        if direction != "internal" and status != "cancelled":
            self._add_decayed(at, direction == "inbound", profile)
        self.recent = [event_id, *self.recent][: profile.evidence_ids]

    def _add_decayed(self, at: float, inbound: bool, profile: Profile) -> None:
        """Exponential decay is order-independent: a late event adds its weight decayed to now."""
        half = profile.intensity_half_life_s
        if at >= self.decayed_at:
            factor = math.pow(2.0, -(at - self.decayed_at) / half)
            self.intensity *= factor
            self.inbound *= factor
            self.decayed_at = at
            weight = 1.0
        else:
            weight = math.pow(2.0, -(self.decayed_at - at) / half)
        self.intensity += weight
        if inbound:
            self.inbound += weight


def _day(epoch: float) -> int:
    return int(epoch // 86400)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _version(updated_at: str) -> int:
    """CRM upserts: the later record wins, whatever order they arrive in (and any CRM record
    wins over a provisional row, which has version 0)."""
    return int(parse_time(updated_at).timestamp() * 1000) + 1


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
        "updated_at": parse_time("1970-01-01T00:00:00Z"),
        "version": 0,
    }


def interaction_row(envelope: Envelope) -> dict[str, Any]:
    p = envelope.payload
    return {
        "interaction_id": p["interaction_id"],
        "account_id": p["account_id"],
        "occurred_at": parse_time(p["occurred_at"]),
        "channel": p["channel"],
        "direction": p["direction"],
        "kind": p.get("kind") or p["channel"],
        "sellers": p["sellers"],
        "buyers": p["buyers"],
        "thread_id": p.get("thread_id") or "",
        "in_reply_to": p.get("in_reply_to") or "",
        "status": p.get("status") or "",
        "automated": int(p["automated"]),
        "match_method": p["match_method"],
        "match_confidence": float(p["match_confidence"]),
        "source_event_id": p["source_event_id"],
        "detail": _json(p.get("detail") or {}),
        "version": int(p.get("version") or 0),
    }


def account_row(envelope: Envelope) -> dict[str, Any]:
    p = envelope.payload
    return {
        "account_id": p["account_id"],
        "name": p["name"],
        "domains": [d.lower() for d in p["domains"]],
        "owner": p.get("owner") or "",
        "industry": p.get("industry") or "",
        "provisional": 0,
        "source": envelope.source,
        "updated_at": parse_time(p["updated_at"]),
        "version": _version(p["updated_at"]),
    }


def contact_row(envelope: Envelope) -> dict[str, Any]:
    p = envelope.payload
    return {
        "email": p["email"].lower(),
        "contact_id": p["contact_id"],
        "account_id": p["account_id"],
        "name": p.get("name") or "",
        "title": p.get("title") or "",
        "active": int(p.get("active", True)),
        "source": envelope.source,
        "updated_at": parse_time(p["updated_at"]),
        "version": _version(p["updated_at"]),
    }


def seller_row(envelope: Envelope) -> dict[str, Any]:
    p = envelope.payload
    return {
        "seller_id": p["seller_id"],
        "name": p["name"],
        "email": (p.get("email") or "").lower(),
        "manager": p.get("manager") or "",
        "team": p.get("team") or "",
        "source": envelope.source,
        "updated_at": parse_time(p["updated_at"]),
        "version": _version(p["updated_at"]),
    }


def opportunity_row(envelope: Envelope) -> dict[str, Any]:
    p = envelope.payload
    return {
        "opportunity_id": p["opportunity_id"],
        "account_id": p["account_id"],
        "stage": p["stage"],
        "status": p["status"],
        "amount": float(p.get("amount") or 0.0),
        "owner": p.get("owner") or "",
        "created_at": parse_time(p.get("created_at") or p["updated_at"]),
        "updated_at": parse_time(p["updated_at"]),
        "version": _version(p["updated_at"]),
    }
