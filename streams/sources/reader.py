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


def _read_files(path: Path, keep_subject: bool, kind: str | None) -> Iterator[SourceRecord | Rejection]:
    if kind == "calendar" or (kind is None and is_calendar(path)):
        return read_calendars(path)
    if kind == "crm" or (kind is None and is_crm(path)):
        return read_crm(path)  # the change feeds among them are read by read_sources, together
    return read_mail([path], keep_subject)


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
        streams.append(_by_time(parse_changes((feed.read_bytes(), str(feed)) for feed in feeds)))
    return heapq.merge(*streams, key=lambda i: i.envelope.occurred_at if isinstance(i, SourceRecord) else "")


@dataclass
class Tally:
    """What an ingest read: ``accepted + duplicates + automated + rejected == read``."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    automated: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set, repr=False)

    def note(
        self,
        item: SourceRecord | Rejection,
        resolver: Resolver,
        placed: list[Any] | ContractError | None = None,
    ) -> str:
        """Count one item; returns its category (``accepted``, ``duplicate``, …). ``placed`` is
        the resolver's answer for it when the caller already has one (resolved once)."""
        self.read += 1
        if isinstance(item, Rejection):
            return self._reject(item.reason)
        if item.envelope.event_id in self.seen:
            self.duplicates += 1
            return "duplicate"
        self.seen.add(item.envelope.event_id)
        if resolver.is_automated(item.envelope):
            self.automated += 1  # kept (or dead-lettered if it has no organisation), never scored
            return "automated"
        if placed is None:
            try:
                resolver.resolve(item.envelope)
            except ContractError as exc:
                placed = exc
        if isinstance(placed, ContractError):
            return self._reject(str(placed))
        self.accepted += 1
        return "accepted"

    def _reject(self, reason: str) -> str:
        self.rejected += 1
        # group reasons without the per-message id in front
        self.reasons[reason.split(": ", 1)[-1][:120]] += 1
        return "rejected"

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "automated": self.automated,
            "rejected": self.rejected,
            "rejection_reasons": dict(self.reasons.most_common()),
        }
