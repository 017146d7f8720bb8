"""Read any supported input paths, in event-time order, and tally what was read.

A folder holding ``email.jsonl``/``meeting.jsonl``/``crm.jsonl`` is a dataset (``rapport
generate``); ``.ics`` files (or folders of them) are calendars; ``.csv`` files and JSON change
feeds (or folders of them) are CRM exports; anything else is mail (maildir folders, mbox files,
.eml files). Records are sorted by event time so that live ingestion and replay see each
account's events in the same order.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.contracts import ContractError
from streams.identity.fingerprint import Copies
from streams.identity.relationship import Ledger
from streams.identity.resolver import Resolver
from streams.sources.calendar import read_calendars
from streams.sources.crm import read_crm
from streams.sources.crm_changes import change_files, is_change_file, parse_changes
from streams.sources.dataset import FILES, Rejection, SourceRecord, read_dataset
from streams.sources.mail import read_mail


def is_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in FILES.values())


def is_calendar(path: Path) -> bool:
    return path.suffix.lower() == ".ics" if path.is_file() else any(path.rglob("*.ics"))


def is_crm(path: Path) -> bool:
    """CSV exports, or JSON whose start looks like a change feed."""
    if path.is_file():
        return path.suffix.lower() == ".csv" or is_change_file(path)
    return any(path.glob("*.csv")) or any(is_change_file(p) for p in path.iterdir() if p.is_file())


def is_calendar_json(path: Path) -> bool:
    """Graph (``iCalUId``) or Google (``iCalUID``) calendar events, sniffed from the file's start."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    return b'"iCalUId"' in head or b'"iCalUID"' in head or b'"calendar#event' in head


def file_kind(path: Path) -> str:
    """What one file holds, from its type: ``calendar``, ``crm`` or ``email``."""
    suffix = path.suffix.lower()
    if suffix == ".ics" or (suffix == ".json" and is_calendar_json(path)):
        return "calendar"
    if suffix == ".csv" or is_change_file(path):
        return "crm"
    return "email"


def _read_files(path: Path, keep_subject: bool, kind: str | None) -> Iterator[SourceRecord | Rejection]:
    """One path; a folder without a given ``kind`` is read file by file, each by its own type (a
    folder of .eml files and one .ics reads both: before, the .ics made it a calendar folder)."""
    if kind is None and path.is_dir():
        return _read_folder(path, keep_subject)
    if kind == "calendar" or (kind is None and is_calendar(path)):
        return read_calendars(path)
    if kind == "crm" or (kind is None and is_crm(path)):
        return read_crm(path)  # the change feeds among them are read by read_sources, together
    return read_mail([path], keep_subject)


def _read_folder(folder: Path, keep_subject: bool) -> Iterator[SourceRecord | Rejection]:
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if file.parent != folder and is_change_file(file):
            # read_sources folds the change feeds at the top of a folder; deeper ones are read alone
            yield from parse_changes([(file, str(file))])
        else:
            yield from _read_files(file, keep_subject, file_kind(file))


def _by_time(items: Iterable[SourceRecord | Rejection]) -> Iterator[SourceRecord | Rejection]:
    return iter(sorted(items, key=lambda i: i.envelope.occurred_at if isinstance(i, SourceRecord) else ""))


def read_sources(
    paths: Iterable[Path], keep_subject: bool = False, kind: str | None = None
) -> Iterator[SourceRecord | Rejection]:
    """Rejections first (they have no trustworthy time), then records by event time.

    ``kind`` (``email``, ``calendar``, ``crm``) says what the paths hold; without it the kind is
    guessed from each path (JSON files are then read as mail unless they look like a CRM change
    feed). The change feeds of all paths are folded together, so an update in one file merges
    onto a record created in another.
    """
    streams: list[Iterator[SourceRecord | Rejection]] = []
    feeds: list[Path] = []
    for path in paths:
        if is_dataset(path):
            streams.append(read_dataset(path))
            continue
        if kind in (None, "crm"):
            feeds.extend(change_files(path, sniff=kind is None))
        streams.append(_by_time(_read_files(path, keep_subject, kind)))
    if feeds:
        streams.append(_by_time(parse_changes((feed, str(feed)) for feed in feeds)))
    return heapq.merge(*streams, key=lambda i: i.envelope.occurred_at if isinstance(i, SourceRecord) else "")


def reason_group(reason: str) -> str:
    """A rejection reason without the per-message id in front (how reasons are counted)."""
    return reason.split(": ", 1)[-1][:120]


@dataclass
class Tally:
    """What an ingest read: ``accepted + duplicates + automated + rejected == read``.

    The categories are what lands in the warehouse: ``accepted`` and ``automated`` are the
    interactions (``automated`` = 0 and 1), ``rejected`` the dead letters by reason (automated
    mail with no organisation among them). ``automated_reasons`` counts every automated sender
    seen, kept or rejected. (Before, automated mail that was dead-lettered counted as automated:
    presto-k said 235 automated where the warehouse held 64.)

    Duplicates are repeats of an event id and, for email, copies under a new Message-ID found by
    content fingerprint (:mod:`streams.identity.fingerprint`); ``duplicates_by`` splits them.
    The relationship ledger (:mod:`streams.identity.relationship`) adds which organisations are
    relationships, which are unconfirmed and why, and the suggested seller domains.
    """

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    automated: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    duplicates_by: Counter[str] = field(default_factory=Counter)
    automated_reasons: Counter[str] = field(default_factory=Counter)
    copies: Copies = field(default_factory=Copies, repr=False)
    ledger: Ledger | None = field(default=None, repr=False)

    def note(
        self,
        item: SourceRecord | Rejection,
        resolver: Resolver,
        placed: list[Any] | ContractError | None = None,
    ) -> str:
        """Count one item; returns its category (``accepted``, ``duplicate``, …). ``placed`` is
        the resolver's answer for it when the caller already has one (resolved once)."""
        self.read += 1
        if self.ledger is None:
            self.ledger = Ledger(resolver.seller_domains)
        if isinstance(item, Rejection):
            return self._reject(item.reason)
        original = self.copies.original_of(item.envelope)
        if original:
            self.duplicates += 1
            self.duplicates_by[original[0]] += 1
            return "duplicate"
        automated = resolver.automated_reason(item.envelope)
        if placed is None:
            try:
                placed = resolver.resolve(item.envelope)
            except ContractError as exc:
                placed = exc
        if automated:
            self.automated_reasons[automated] += 1
        if isinstance(placed, ContractError):  # a dead letter, automated or not
            self.ledger.reject(str(placed))
            return self._reject(str(placed))
        for record in placed:
            self.ledger.observe(record.envelope)
        if automated:  # kept as an interaction marked automated, never scored
            self.automated += 1
            return "automated"
        self.accepted += 1
        return "accepted"

    def _reject(self, reason: str) -> str:
        self.rejected += 1
        self.reasons[reason_group(reason)] += 1
        return "rejected"

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "automated": self.automated,
            "rejected": self.rejected,
            "rejection_reasons": dict(self.reasons.most_common()),
            "duplicates_by": dict(self.duplicates_by.most_common()),
            "automated_reasons": dict(self.automated_reasons.most_common()),
        }
        if self.ledger is not None:
            relationships = self.ledger.summary()
            summary["suggested_seller_domains"] = relationships.pop("suggested_seller_domains")
            summary["relationships"] = relationships
        return summary
