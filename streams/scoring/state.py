"""Per-account state and the one function that advances it: :meth:`AccountState.apply`.

The state is small and bounded: per buyer contact a few timestamps and norms, decayed sums,
open value windows and alerts, and the ids seen within the allowed lateness (so a redelivered
event changes nothing). It serialises to a plain dict for faust's RocksDB table and for tests.

Every output is a warehouse row (table name + column dict, from the typed rows of
:mod:`streams.records`); the same rows come out whether events arrive through the live agents or
through ``replay``, in any order within the lateness.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from streams.contracts import Envelope, parse_time
from streams.records import (
    ACCOUNTS,
    CrmAccount,
    CrmContact,
    CrmOpportunity,
    CrmSeller,
    HealthRow,
    Held,
    HeldAccount,
    HeldContact,
    HeldInteraction,
    HeldOpportunity,
    Interaction,
    ScoreRow,
    ValueRow,
    provisional_account_row,
)
from streams.scoring import bloom
from streams.scoring.account import Account
from streams.scoring.alerts import (
    contact_left,
    daily_alerts,
    event_alerts,
    note_engagement,
    note_owner_change,
)
from streams.scoring.health import account_health
from streams.scoring.preparedness import meeting_preparedness
from streams.scoring.profile import DAY, DEFAULT, Profile
from streams.scoring.relationship import conversation_keys
from streams.scoring.titles import classify_title
from streams.scoring.value import close_windows, note_outcomes, note_stage_advanced, open_window, opens_window

Row = tuple[str, dict[str, Any]]  # (table, columns): what the sink takes


def row_of(typed: ScoreRow) -> Row:
    return typed.TABLE, typed.columns()


def rows_of(typed: Iterable[ScoreRow]) -> Iterator[Row]:
    return (row_of(row) for row in typed)


# Days closed after an account's last scored interaction, at most; after that it is dormant (no
# rows) until it interacts again. Bounds what a silent account, or a historical import scored by
# the live wall clock, writes: 400 rows per account.
MAX_GAP_DAYS = 400


class AccountState(Account):
    """What the scorer remembers about one account between events.

    Events wait in ``pending`` until the account's watermark (max event time seen) minus the
    allowed lateness passes them; they are then settled in event-time order, so the scores do
    not depend on arrival order within the lateness. :meth:`flush` settles everything (end of
    a replay, or an idle timer in live mode). A day's health row is rewritten while the day is
    open and finalised (with that day's alerts) when an event of a later day settles, or when
    stream time passes the day (:meth:`close_through`, for silent accounts): either way the
    final row depends only on the events before the day's end, so both give the same row.
    Only a relationship (:meth:`Account.is_relationship`) gets health rows and alerts.
    """

    # --- the step ----------------------------------------------------------------------------

    def apply(self, envelope: Envelope, lateness_s: float, profile: Profile = DEFAULT) -> list[Row] | None:
        """Take one canonical record; return the warehouse rows it makes final.

        A record already seen (same event id within the allowed lateness) returns ``None``.
        """
        at = parse_time(envelope.occurred_at).timestamp()
        if envelope.event_id in self.seen:
            return None
        late = at < self.settled_until or (self.open_day is not None and at < self.open_day * DAY)
        if late and bloom.may_hold(self.pruned, envelope.event_id):
            return None  # a redelivery of a record applied long ago (its row is written already)
        rows, kind, data = _record(envelope)
        self.seen[envelope.event_id] = at
        self.watermark = max(self.watermark, at)
        if len(self.seen) > self.seen_limit:
            # Keep every id that is not yet late: anything at or after the last settled event;
            # the others go into the filter of pruned ids.
            keep_from = min(self.watermark - lateness_s, self.settled_until)
            self.pruned = bloom.with_ids(self.pruned, [k for k, t in self.seen.items() if t < keep_from])
            self.seen = {k: t for k, t in self.seen.items() if t >= keep_from}
            self.seen_limit = max(64, 2 * len(self.seen))
        if kind == "account":
            self.listed = True
        if kind:
            if late:
                # Later than the allowed lateness (before what settled, or in a day stream time
                # already closed): its row is kept, the settled scores are not rewritten here (the
                # live worker rescores the account from the warehouse). A redelivery older than
                # the seen ids is known by the filter of pruned ids above.
                self.late += 1
                self.rescore = True
            else:
                bisect.insort(self.pending, [at, envelope.event_id, kind, data], key=lambda i: (i[0], i[1]))
        rows.extend(self.settle(self.watermark - lateness_s, profile))
        return rows

    def settle(self, horizon: float, profile: Profile = DEFAULT) -> list[Row]:
        """Settle pending events up to ``horizon`` in event-time order; the rows they finalise."""
        rows: list[Row] = []
        due = bisect.bisect_right(self.pending, horizon, key=lambda i: i[0])
        if not due:
            return rows
        settling, self.pending = self.pending[:due], self.pending[due:]
        for at, event_id, _kind, data in settling:
            scored = isinstance(data, HeldInteraction) and not data.automated
            # Every record closes the days before its own (not only scored ones), and before it
            # counts: a day's final row is the same whether an event or stream time closed it.
            self._advance(at, profile, rows, start=scored)
            self.settled += 1
            self.settled_until = at
            if scored:
                self.scored_until = at
            self._observe(at, data, rows)
            rows.extend(self._settle_one(at, event_id, data, profile))
        return rows

    def _observe(self, at: float, data: Held, rows: list[Row]) -> None:
        """Count the relationship rule's evidence; a domain account becomes listed (a provisional
        accounts row) when it first becomes a relationship."""
        self.evidence.observe(at, data)
        if not self.listed and self.is_relationship():
            rows.append((ACCOUNTS, provisional_account_row(self.account_id)))
            self.listed = True

    def close_through(self, day: int, profile: Profile = DEFAULT) -> list[Row]:
        """Stream time passed ``day`` plus the allowed lateness: settle what is pending up to its
        end and close every day through it (a silent account's days, its decay and its alerts).
        Depends only on the state and ``day``, so any tick timing gives the same rows."""
        rows = self.settle(math.nextafter((day + 1) * DAY, -math.inf), profile)
        self._close_days(day, profile, rows)
        return rows

    def next_due(self) -> int | None:
        """The next day to close, or ``None`` when there is none (no days yet, or dormant)."""
        if self.open_day is None or self.open_day > self._last_day():
            return None
        return self.open_day

    def _last_day(self) -> int:
        return int(self.scored_until // DAY) + MAX_GAP_DAYS

    def provisional_health(self, profile: Profile = DEFAULT) -> Row | None:
        """The still-open day's row as of now; written once per batch, rewritten until the day
        closes (its final row has the higher, odd version)."""
        if self.open_day is None or self.next_due() is None or not self.is_relationship():
            return None
        # As of the open day's last scored interaction (or its start when the day opened without
        # one): automated mail and CRM records must not date the row (batch boundaries would show).
        health = self._health(max(self.scored_until, self.open_day * DAY), profile, final=False)
        return row_of(health)

    def flush(self, profile: Profile = DEFAULT, until: float = math.inf) -> list[Row]:
        """Settle everything pending and close the value windows that ended before ``until``
        (the end of the last closed day when idle; the clock at the end of a replay)."""
        rows = self.settle(math.inf, profile)
        rows.extend(rows_of(self._close_windows(until, profile)))
        # Always the open day's row: it depends only on the state, so live and replay agree
        # whichever step last touched the account.
        if health := self.provisional_health(profile):
            rows.append(health)
        return rows

    # --- time --------------------------------------------------------------------------------

    def _advance(self, at: float, profile: Profile, rows: list[Row], start: bool) -> None:
        """Close the days before ``at``'s day (filling idle days, at most MAX_GAP_DAYS after the
        last scored interaction) and the value windows before ``at``; ``start``: a scored
        interaction, which opens the account's first day."""
        day = int(at // DAY)
        if self.open_day is None:
            if start:
                self.open_day = self.first_day = day
            return
        self._close_days(day - 1, profile, rows)
        self.open_day = max(self.open_day, day)  # dormant days are skipped
        rows.extend(rows_of(self._close_windows(at, profile)))

    def _close_windows(self, until: float, profile: Profile) -> list[ValueRow]:
        return close_windows(self.account_id, self.values, self.day, until, profile)

    def _close_days(self, last: int, profile: Profile, rows: list[Row]) -> None:
        if self.open_day is None:
            return
        last = min(last, self._last_day())
        while self.open_day <= last:
            self._close_day(self.open_day, profile, rows)
            self.open_day += 1

    def _close_day(self, day: int, profile: Profile, rows: list[Row]) -> None:
        end = (day + 1) * DAY - 0.001
        rows.extend(rows_of(self._close_windows(end, profile)))
        health = self._health(end, profile, final=True)
        if self.is_relationship():
            rows.append(row_of(health))
        # Tier and trend alerts wait until the account has a trend's worth of history.
        settled_in = self.first_day is not None and day - self.first_day >= profile.health.trend_days
        rows.extend(rows_of(daily_alerts(self, end, health, settled_in, profile)))
        self.day.note_closed(day, health.score, profile)

    def _health(self, now: float, profile: Profile, final: bool) -> HealthRow:
        # A closed day's row must replace every provisional row of that day: odd versions win.
        version = 2 * self.settled + int(final)
        return account_health(self.account_id, self.day, self.buyers, self.sellers, now, profile, version)

    # --- one settled event: each part's rule takes it ----------------------------------------

    def _settle_one(self, at: float, event_id: str, data: Held, profile: Profile) -> list[Row]:
        rows: list[Row] = []
        if isinstance(data, HeldContact):
            if self.buyers.note_contact(data):
                rows.extend(rows_of(contact_left(self, at, event_id, data.email, profile)))
        elif isinstance(data, HeldOpportunity):
            if self.sellers.note_opportunity(data):
                note_stage_advanced(self.values, at, event_id, profile)
        elif isinstance(data, HeldAccount):
            if self.sellers.note_owner(data):
                note_owner_change(self.book, data, at)
        elif data.automated:
            self.day.automated += 1
        else:
            rows.extend(self._settle_interaction(at, event_id, data, profile))
        return rows

    def _settle_interaction(
        self, at: float, event_id: str, item: HeldInteraction, profile: Profile
    ) -> list[Row]:
        """Rules that score the event from what was known before it go first (preparedness,
        value outcomes, event alerts); then each part notes it."""
        rows: list[Row] = []
        if item.channel == "meeting" and item.buyers:
            prepared = meeting_preparedness(
                self.account_id, self.buyers, self.sellers, self.meetings, at, event_id, item, profile
            )
            rows.append(row_of(prepared))
        note_outcomes(self.values, at, event_id, item, self.buyers.new(item.buyers), profile)
        rows.extend(rows_of(event_alerts(self, at, event_id, item, profile)))
        self.sellers.note_interaction(at, event_id, item)
        self.buyers.note_interaction(at, event_id, item)
        self.meetings.note_interaction(at, event_id, item, profile)
        note_engagement(self.book, at, item, profile)
        if opens_window(item):
            open_window(self.values, self.buyers, at, event_id, item, profile)
        self.day.note_interaction(at, event_id, item, profile)
        return rows


def _record(envelope: Envelope) -> tuple[list[Row], str, Held | None]:
    """The rows a record writes at once, and what scoring holds of it until it settles.

    Reads every field it needs here (a typed record: :mod:`streams.records`), so a malformed
    record fails on arrival (and is reported) instead of later inside :meth:`AccountState.settle`.
    """
    schema, source = envelope.schema, envelope.source
    if schema == "interaction/1":
        i = msgspec.convert(envelope.payload, Interaction)
        topics = conversation_keys(i.interaction_id, i.thread_id, i.in_reply_to, i.detail.get("topic"))
        return [(i.TABLE, i.row())], "interaction", i.held(topics)
    if schema == "crm_account/1":
        a = msgspec.convert(envelope.payload, CrmAccount)
        return [(a.TABLE, a.row(source))], "account", a.held()
    if schema == "crm_contact/1":
        c = msgspec.convert(envelope.payload, CrmContact)
        return [(c.TABLE, c.row(source, *classify_title(c.title)))], "contact", c.held()
    if schema == "crm_opportunity/1":
        o = msgspec.convert(envelope.payload, CrmOpportunity)
        return [(o.TABLE, o.row())], "opportunity", o.held()
    if schema == "crm_seller/1":
        seller = msgspec.convert(envelope.payload, CrmSeller)
        return [(seller.TABLE, seller.row(source))], "", None
    return [], "", None
