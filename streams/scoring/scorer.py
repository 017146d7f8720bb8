"""Score a batch of canonical records against stored account states.

The live ``score`` agent and ``replay`` both call :func:`score_batch`: it reads states from any
mapping (a faust table, or a dict), applies the batch in order, and returns the rows to write
and the new states. It stores nothing: the caller persists the states only after the rows are
written, so a crash in between replays the batch instead of losing its rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.contracts import Envelope
from streams.scoring.profile import DAY, DEFAULT, Profile
from streams.scoring.state import AccountState


class StateStore(Protocol):
    """Where states are read from: a dict, or a faust table read partition by partition."""

    def get(self, key: str, /) -> Any: ...


@dataclass
class BatchResult:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    states: dict[str, AccountState] = field(default_factory=dict)
    applied: int = 0
    duplicates: int = 0
    failed: list[tuple[Envelope, str]] = field(default_factory=list)  # records scoring could not use
    late: int = 0


def score_batch(
    records: Iterable[tuple[str, Envelope]],
    stored: StateStore,
    lateness_s: float,
    profile: Profile = DEFAULT,
) -> BatchResult:
    """Apply ``(account_id, envelope)`` records in order; states come from ``stored``."""
    result = BatchResult()
    states = result.states
    settled_before: dict[str, int] = {}
    for account_id, envelope in records:
        state = states.get(account_id)
        if state is None:
            saved = stored.get(account_id)
            state = AccountState.from_dict(saved) if saved else AccountState(account_id)
            states[account_id] = state
            settled_before[account_id] = state.settled
        late_before = state.late
        try:
            rows = state.apply(envelope, lateness_s, profile)
        except Exception as exc:  # a record the core cannot use must not stop the stream
            result.failed.append((envelope, f"scoring failed: {type(exc).__name__}: {exc}"))
            continue
        result.late += state.late - late_before
        if rows is None:
            result.duplicates += 1
            continue
        result.applied += 1
        for table, row in rows:
            result.rows.setdefault(table, []).append(row)
    # The open day's health once per account and batch, not once per event.
    for account_id, state in states.items():
        if state.settled > settled_before[account_id] and (health := state.provisional_health(profile)):
            result.rows.setdefault("account_health", []).append(health[1])
    return result


def flushable(state: Mapping[str, Any], now: float, profile: Profile = DEFAULT) -> int:
    """How much a flush at ``now`` would settle: pending events plus value windows that ended."""
    window = profile.value.response_window_days * DAY
    ended = sum(1 for v in (state.get("open_values") or {}).values() if v["at"] + window < now)
    return len(state.get("pending") or []) + ended


def flush_accounts(
    account_ids: Iterable[str], stored: StateStore, profile: Profile = DEFAULT, now: float = math.inf
) -> BatchResult:
    """Settle everything pending for these accounts and close the value windows that ended
    before ``now``: the clock on the live idle timer, infinity at the end of a replay."""
    result = BatchResult()
    for account_id in account_ids:
        saved = stored.get(account_id)
        if not saved or not flushable(saved, now, profile):
            continue
        state = AccountState.from_dict(saved)
        for table, row in state.flush(profile, now):
            result.rows.setdefault(table, []).append(row)
        result.states[account_id] = state
    return result
