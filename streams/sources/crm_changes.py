"""CRM change-data-capture JSON in: change events → ``crm_*/1`` records.

Two forms are read, as a JSON file (one event, a list, or ``{"events"|"records"|"value": [...]}``)
or JSON lines (``.jsonl``/``.ndjson``, one event per line):

* **Salesforce Change Data Capture**: an object with a ``ChangeEventHeader`` (``entityName``,
  ``changeType``, ``recordIds``, ``changedFields``, ``nulledFields``, ``commitTimestamp`` in epoch
  milliseconds) beside the changed field values, at the top level, under ``payload``, or under
  ``data.payload`` (the Streaming API's message).
* **Flat**: ``{"entity", "change_type", "record_ids", "changed_fields", "commit_timestamp"
  (ISO 8601 or epoch ms), "fields": {...}}``.

Entities: Account → ``crm_account/1`` (id ``crm:<record id>``; domains from ``Website`` or
``domains``), Contact → ``crm_contact/1``, Opportunity → ``crm_opportunity/1``, Task and Event →
``crm_activity/1``, User → ``crm_seller/1``. Field names are matched without case; Salesforce
names and Rapport's own names both work (see ``FIELDS``); other fields (subjects, descriptions)
are never read. Owner ids become the owner's email when the User is in the same input.

An UPDATE carries only the changed fields, so events are folded in commit-time order onto the
record as known from earlier events in the same input (a CREATE, an UNDELETE, earlier updates).
An update of a record this input never created cannot make a full row and is rejected with what
to do; so is a record that lacks a field its row needs. DELETE of a Contact makes it inactive
(its mail then falls back to the domain rule); DELETE of anything else is rejected with the
reason ("not applied"): accounts, opportunities, activities and sellers keep their history.
GAP and OVERFLOW events carry no values and are rejected with the advice to re-read the record.
Event ids are ``<entity>:<record id>:<commit time>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.contracts import (
    MAX_AMOUNT,
    MAX_MESSAGE_BYTES,
    ContractError,
    Envelope,
    bounded,
    format_time,
    make,
    parse_time,
)
from streams.sources.crm import CHANGE_SUFFIXES as SUFFIXES
from streams.sources.dataset import (
    Rejection,
    SourceRecord,
    bounded_lines,
    json_objects,
    read_whole,
)

MAX_CHANGE_LINE = MAX_MESSAGE_BYTES  # one change event on one line: the contract's record bound

SOURCE = "crm-cdc"
KINDS = {
    "account": "account",
    "contact": "contact",
    "opportunity": "opportunity",
    "task": "activity",
    "event": "activity",
    "activity": "activity",
    "user": "seller",
    "seller": "seller",
}
# lower-cased source field name -> Rapport field
FIELDS = {
    **{name: name for name in ("name", "email", "title", "industry", "amount", "stage", "owner", "type")},
    **{name: name for name in ("domains", "website", "manager", "team", "active", "at", "status")},
    "firstname": "first_name",
    "lastname": "last_name",
    "domain": "domains",
    "ownerid": "owner",
    "accountid": "account",
    "account_id": "account",
    "account": "account",
    "stagename": "stage",
    "iswon": "is_won",
    "isclosed": "is_closed",
    "createddate": "created_at",
    "created_at": "created_at",
    "closedate": "close_date",
    "close_date": "close_date",
    "nextstep": "next_step",
    "next_step": "next_step",
    "tasksubtype": "subtype",
    "eventsubtype": "subtype",
    "activitydate": "at",
    "activitydatetime": "at",
    "startdatetime": "at",
    "whoid": "who",
    "contact_emails": "contact_emails",
    "managerid": "manager",
    "department": "team",
    "isactive": "active",
}
STATUS = {"closed won": "won", "won": "won", "closed lost": "lost", "lost": "lost"}
ACTIVITY_TYPES = ("call", "meeting", "email", "task", "note")


@dataclass(frozen=True, slots=True)
class Change:
    """One change event, read but not yet applied."""

    entity: str  # as the feed names it (Account, Contact, …)
    kind: str  # account, contact, opportunity, activity, seller
    change_type: str
    record_ids: list[str]
    changed: list[str]  # Rapport field names the event says changed
    fields: dict[str, Any]  # Rapport field -> value carried by the event
    committed: datetime
    origin: str
    kept: bytes  # what a rejection keeps: the header and field names, never the values


def _canonical(fields: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in fields.items():
        name = FIELDS.get(str(key).lower())
        if name == "name" and isinstance(value, dict):  # a compound name: FirstName, LastName
            found.update(_canonical({k: v for k, v in value.items() if str(k).lower() != "name"}))
        elif name:
            found[name] = value
    return found


def _field_names(names: Any) -> list[str]:
    """Changed-field names (``Name.LastName`` counts as ``LastName``) as Rapport fields."""
    if not isinstance(names, list):
        raise ContractError("changed fields must be a list of field names")
    found = []
    for name in names:
        known = FIELDS.get(str(name).rpartition(".")[2].lower())
        if known:
            found.append(known)
    return found


def _commit_time(value: Any) -> datetime:
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value / 1000, UTC)
        elif isinstance(value, str):
            moment = parse_time(value)
        else:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise ContractError(f"unreadable commit timestamp (a {type(value).__name__})") from None
    if not 1970 <= moment.year < 2200:
        raise ContractError(f"impossible commit timestamp {moment.isoformat()}")
    return moment


def _header_of(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The Salesforce header and the object holding the field values, wherever they sit."""
    data = event.get("data")
    for holder in (event, event.get("payload"), data.get("payload") if isinstance(data, dict) else None):
        if isinstance(holder, dict) and isinstance(holder.get("ChangeEventHeader"), dict):
            return holder["ChangeEventHeader"], holder
    return None


def read_change(event: Any, origin: str) -> Change:
    """One event object (either form) → a :class:`Change`; :class:`ContractError` if unusable."""
    if not isinstance(event, dict):
        raise ContractError("expected a JSON object per change event")
    found = _header_of(event)
    if found:
        header, holder = found
        entity, change_type = header.get("entityName"), header.get("changeType")
        record_ids, committed = header.get("recordIds"), header.get("commitTimestamp")
        changed = _field_names(header.get("changedFields") or [])
        nulled = _field_names(header.get("nulledFields") or [])
        values = {k: v for k, v in holder.items() if k != "ChangeEventHeader"}
    elif "entity" in event and "change_type" in event:
        entity, change_type = event.get("entity"), event.get("change_type")
        record_ids = event.get("record_ids") or ([event["record_id"]] if event.get("record_id") else None)
        committed = event.get("commit_timestamp")
        changed = _field_names(event.get("changed_fields") or [])
        nulled = []
        values = event.get("fields") or {}
    else:
        raise ContractError(
            "not a change event: expected a Salesforce ChangeEventHeader or the flat form "
            "(entity, change_type, record_ids, changed_fields, commit_timestamp, fields)"
        )
    if not isinstance(entity, str) or not isinstance(change_type, str):
        raise ContractError("entity and change type must be strings")
    kind = KINDS.get(entity.lower())
    if kind is None:
        raise ContractError(f"an entity Rapport does not read (it reads {', '.join(sorted(KINDS))})")
    if (
        not isinstance(record_ids, list)
        or not record_ids
        or not all(isinstance(r, str) and r for r in record_ids)
    ):
        raise ContractError(f"{entity} change without record ids")
    if not isinstance(values, dict):
        raise ContractError(f"{entity} change: fields must be a JSON object")
    fields = _canonical(values)
    fields.update(dict.fromkeys((n for n in nulled if n not in fields), None))
    kept = orjson.dumps(
        {
            "entity": entity,
            "change_type": change_type,
            "record_ids": record_ids[:50],
            "fields": sorted(values),
        }
    )
    return Change(
        entity,
        kind,
        change_type.upper(),
        record_ids,
        changed + nulled,
        fields,
        _commit_time(committed),
        origin,
        kept,
    )


# --- building rows from the folded record ------------------------------------------------------


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _required(record: dict[str, Any], key: str) -> str:
    value = _text(record, key)
    if value is None:
        raise ContractError(
            f"no {key} known for the record, which its row needs; ingest the event that sets it "
            "(its CREATE) together with this one"
        )
    return value


def _name(record: dict[str, Any]) -> str | None:
    return (
        _text(record, "name")
        or " ".join(filter(None, (_text(record, "first_name"), _text(record, "last_name"))))
        or None
    )


def _domains(record: dict[str, Any]) -> list[str]:
    value = record.get("domains")
    if value is None:
        value = record.get("website")
    items = value if isinstance(value, list) else str(value or "").split(";")
    domains = []
    for item in items:
        host = re.sub(r"^[a-z]+://", "", str(item).strip().lower()).split("/")[0].split(":")[0]
        host = host.removeprefix("www.")
        if host and "." in host and " " not in host:
            domains.append(host[:253])
    return list(dict.fromkeys(domains))[:50]


def _iso(value: Any, fallback: datetime) -> str:
    """A date or date-time field: ISO text, epoch milliseconds, or days since the epoch (Avro)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            days = abs(value) < 10**7
            moment = datetime.fromtimestamp(value * 86400 if days else value / 1000, UTC)
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            moment = parse_time(text if "T" in text else f"{text}T00:00:00+00:00")
        else:
            moment = fallback
    except (ValueError, OverflowError, OSError):
        raise ContractError(f"unreadable date (a {type(value).__name__})") from None
    return format_time(moment)


@dataclass
class Fold:
    """Records as known so far, by (kind, record id), in commit-time order."""

    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def email_of(self, kind: str, record_id: str) -> str | None:
        """The email of a User or Contact known in this input."""
        found = self.records.get((kind, record_id)) or {}
        email = _text(found, "email")
        return email if email and "@" in email else None

    def owner(self, record: dict[str, Any]) -> str | None:
        owner = _text(record, "owner")
        return self.email_of("seller", owner) or owner if owner else None

    def build(self, change: Change, record_id: str, record: dict[str, Any]) -> Envelope:
        at = format_time(change.committed)
        if change.kind == "account":
            payload: dict[str, Any] = {
                "account_id": f"crm:{record_id}",
                "name": _required({"name": _name(record)}, "name"),
                "domains": _domains(record),
                "owner": self.owner(record),
                "industry": _text(record, "industry"),
                "updated_at": at,
            }
            return make("crm_account/1", f"account:{record_id}:{at}", SOURCE, at, payload)
        if change.kind == "contact":
            payload = {
                "contact_id": record_id,
                "account_id": f"crm:{_required(record, 'account')}",
                "email": _required(record, "email"),
                "name": _name(record) or "",
                "title": _text(record, "title"),
                "active": record.get("active") is not False and not record.get("deleted"),
                "updated_at": at,
            }
            return make("crm_contact/1", f"contact:{record_id}:{at}", SOURCE, at, payload)
        if change.kind == "opportunity":
            stage = _text(record, "stage") or "unknown"
            status = STATUS.get(stage.lower(), "open")
            if record.get("is_closed") is True:
                status = "won" if record.get("is_won") is True else "lost"
            elif record.get("status") in ("open", "won", "lost"):
                status = record["status"]
            amount = record.get("amount")
            payload = {
                "opportunity_id": record_id,
                "account_id": f"crm:{_required(record, 'account')}",
                "stage": stage[:100],
                "status": status,
                "amount": bounded(amount, "amount", 0, MAX_AMOUNT)
                if isinstance(amount, int | float) and not isinstance(amount, bool)
                else None,
                "owner": self.owner(record),
                "created_at": _iso(record.get("created_at"), change.committed),
                "close_date": _iso(record["close_date"], change.committed)[:10]
                if _text(record, "close_date")
                else None,
                "next_step": (_text(record, "next_step") or "")[:1000] or None,
                "updated_at": at,
            }
            return make("crm_opportunity/1", f"opportunity:{record_id}:{at}", SOURCE, at, payload)
        if change.kind == "activity":
            owner = self.owner(record)
            if not owner or "@" not in owner:
                raise ContractError(
                    f"owner {owner or '(none)'} has no known email; include the owner's User events "
                    "(or a flat user record with an email) in the same input"
                )
            kind = (_text(record, "subtype") or _text(record, "type") or "").lower()
            if kind not in ACTIVITY_TYPES:
                kind = "meeting" if change.entity.lower() == "event" else "task"
            emails = record.get("contact_emails")
            who = _text(record, "who")
            contacts = (
                [e for e in emails if isinstance(e, str) and "@" in e] if isinstance(emails, list) else []
            )
            if who and self.email_of("contact", who):
                contacts.append(str(self.email_of("contact", who)))
            moment = _iso(record.get("at"), change.committed)
            payload = {
                "activity_id": record_id,
                "account_id": f"crm:{_required(record, 'account')}",
                "owner": owner,
                "type": kind,
                "contact_emails": list(dict.fromkeys(contacts))[:100],
                "at": moment,
            }
            return make("crm_activity/1", f"activity:{record_id}:{at}", SOURCE, moment, payload)
        payload = {
            "seller_id": record_id,
            "name": _required({"name": _name(record)}, "name"),
            "email": _text(record, "email"),
            "manager": self.email_of("seller", _text(record, "manager") or "") or _text(record, "manager"),
            "team": _text(record, "team"),
            "updated_at": at,
        }
        return make("crm_seller/1", f"seller:{record_id}:{at}", SOURCE, at, payload)

    def apply(self, change: Change, record_id: str) -> SourceRecord | Rejection:
        """One record's change → its full row, or a rejection saying what to do."""
        key = (change.kind, record_id)
        known = self.records.get(key)
        what = f"{change.change_type} of {change.entity} {record_id}"
        try:
            if change.change_type.startswith("GAP_") or change.change_type == "OVERFLOW":
                raise ContractError(
                    f"{what}: a gap event carries no field values; re-read the record and ingest it "
                    "as a CREATE event"
                )
            if change.change_type in ("CREATE", "UNDELETE"):
                record = {**(known or {}), **change.fields, "deleted": False}
                if record.get("created_at") is None:  # an opportunity's creation, if not named
                    record["created_at"] = format_time(change.committed)
            elif change.change_type == "UPDATE":
                if known is None:
                    raise ContractError(
                        f"{what}: no earlier CREATE of the record in this input, and updates carry "
                        "only changed fields; ingest its CREATE with it"
                    )
                # Feeds may send every field with null for the unchanged ones: only the fields
                # named as changed (nulled ones included) and non-null values change the record.
                changed = {name: change.fields.get(name) for name in change.changed}
                record = {**known, **changed, **{k: v for k, v in change.fields.items() if v is not None}}
            elif change.change_type == "DELETE":
                if change.kind != "contact":
                    if known is not None:
                        known["deleted"] = True
                    raise ContractError(
                        f"{what}: not applied; Rapport keeps deleted accounts, opportunities, "
                        "activities and sellers with their history (see docs/sources.md)"
                    )
                if known is None:
                    raise ContractError(
                        f"{what}: the contact is not known in this input, so there is no row to "
                        "make inactive; ingest its CREATE event together with the DELETE"
                    )
                record = {**known, "deleted": True}
            else:
                raise ContractError(f"{what}: unknown change type (CREATE, UPDATE, DELETE, UNDELETE)")
            envelope = self.build(change, record_id, record)
        except (ContractError, ValueError, TypeError, KeyError, AttributeError) as exc:  # hostile input
            reason = str(exc) if str(exc).startswith(what) else f"{what}: {exc}"
            return Rejection(change.origin, reason, change.kept)
        self.records[key] = record
        return SourceRecord("crm", envelope, envelope.to_bytes())


def _events(source: bytes | Path, origin: str) -> Iterator[tuple[str, Any] | Rejection]:
    """Every event object of one file (JSON or JSON lines), with where it came from. A file on
    disk is read as it goes: JSON lines one bounded line at a time (a 100 MB one-line file held
    its whole size, several times over, before), a JSON document whole up to the limit."""
    if origin.lower().endswith((".jsonl", ".ndjson")):
        for number, line in enumerate(_lines(source), start=1):
            if line is None:
                yield Rejection(
                    f"{origin}:{number}", f"line longer than the {MAX_CHANGE_LINE:,}-byte limit", b""
                )
            elif line.strip():
                try:
                    yield f"{origin}:{number}", orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield Rejection(f"{origin}:{number}", f"not valid JSON: {exc}", b"")
        return
    raw = read_whole(source, "CRM change feed") if isinstance(source, Path) else source
    if isinstance(raw, Rejection):
        yield raw
        return
    objects = json_objects(raw, origin, ("events", "records", "value"))
    if isinstance(objects, Rejection):
        yield objects
        return
    yield from objects


def _lines(source: bytes | Path) -> Iterator[bytes | None]:
    if isinstance(source, bytes):
        yield from (line if len(line) <= MAX_CHANGE_LINE else None for line in source.splitlines())
        return
    with source.open("rb") as handle:
        yield from bounded_lines(handle, MAX_CHANGE_LINE)


def parse_changes(files: Iterable[tuple[bytes | Path, str]]) -> Iterator[SourceRecord | Rejection]:
    """Every event of the given ``(bytes, origin)`` files folded in commit-time order; never raises."""
    changes: list[Change] = []
    for raw, origin in files:
        for item in _events(raw, origin):
            if isinstance(item, Rejection):
                yield item
                continue
            where, event = item
            try:
                changes.append(read_change(event, where))
            except (ContractError, ValueError, TypeError, AttributeError) as exc:
                yield Rejection(where, str(exc), b"")
    changes.sort(key=lambda c: c.committed)  # stable: input order within one commit time
    fold = Fold({})
    for change in changes:
        for record_id in change.record_ids:
            yield fold.apply(change, record_id)


def is_change_file(path: Path) -> bool:
    """A JSON file that looks like a CRM change feed (sniffed from its start)."""
    if path.suffix.lower() not in SUFFIXES:
        return False
    with path.open("rb") as handle:
        head = handle.read(65536)
    return b'"ChangeEventHeader"' in head or b'"change_type"' in head


def change_files(path: Path, sniff: bool) -> list[Path]:
    """The JSON files of a folder (or the file itself); with ``sniff``, only change feeds."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [f for f in files if f.suffix.lower() in SUFFIXES and (not sniff or is_change_file(f))]
