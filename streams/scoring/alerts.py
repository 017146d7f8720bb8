"""Disengagement alerts: raised when a rule's condition starts, resolved when it clears.

An alert is one row per ``alert_id`` (version 1 open, version 2 resolved). The state remembers
open alerts by ``kind|subject`` (so the same condition never raises twice) and when each ended
(so a flapping condition waits out the cooldown). Daily rules run when a day closes; event rules
run as their event settles; both in event-time order, so live and replay raise the same alerts.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from streams.records import AlertRow, HealthRow, HeldAccount, HeldInteraction
from streams.scoring.buyers import Buyers
from streams.scoring.health import TIERS, DayHealth, buyer_side, held_tier, touches
from streams.scoring.profile import DAY, Profile
from streams.scoring.sellers import Sellers

SEVERITY_BY_TIER = {"at_risk": "medium", "disengaged": "high"}


@dataclass(slots=True)
class AlertBook:
    """The account's alerts and what their rules remember between events and days."""

    open: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind|subject -> open alert
    ended: dict[str, float] = field(default_factory=dict)  # kind|subject -> when it resolved
    tier: str | None = None  # the held tier (health.held_tier) a drop is measured from
    outreach: list[list[Any]] = field(default_factory=list)  # [time, id] sent since a buyer wrote
    cancellations: list[list[Any]] = field(default_factory=list)  # [time, id] of recent cancels
    # buyer-side interactions decayed fast (recent) and slowly (the account's own baseline): [sum, as of]
    engagement: dict[str, list[float]] = field(
        default_factory=lambda: {"recent": [0.0, 0.0], "usual": [0.0, 0.0]}
    )
    low_days: int = 0  # consecutive closed days with recent engagement below the drop ratio
    owner_change: list[Any] = field(default_factory=list)  # [new owner, since] until they make contact


class Scored(Protocol):
    """What the alert rules read of an account (:class:`streams.scoring.account.Account`)."""

    account_id: str
    first_day: int | None
    buyers: Buyers
    sellers: Sellers
    day: DayHealth
    book: AlertBook

    def is_relationship(self) -> bool: ...


def _row(state: Scored, alert: dict[str, Any], profile: Profile, ended: float | None) -> AlertRow:
    return AlertRow(
        alert_id=alert["id"],
        account_id=state.account_id,
        raised_at=datetime.fromtimestamp(alert["raised_at"], UTC),
        kind=alert["kind"],
        severity=alert["severity"],
        reason=alert["reason"],
        explanation=orjson.dumps(alert["explanation"], option=orjson.OPT_SORT_KEYS).decode(),
        model_version=profile.model_version,
        version=1 if ended is None else 2,
        status="open" if ended is None else "resolved",
        subject=alert["subject"],
        ended_at=datetime.fromtimestamp(ended or 0.0, UTC),
    )


def raise_alert(
    state: Scored,
    kind: str,
    subject: str,
    at: float,
    severity: str,
    reason: str,
    evidence: dict[str, Any],
    profile: Profile,
) -> list[AlertRow]:
    key = f"{kind}|{subject}"
    if key in state.book.open or not state.is_relationship():
        return []  # raised once per condition, and never on traffic that is no relationship
    ended = state.book.ended.get(key)
    if ended is not None and at - ended < profile.alerts.cooldown_days * DAY:
        return []
    alert_id = hashlib.sha1(f"{state.account_id}|{key}|{at}".encode()).hexdigest()[:20]
    alert = {
        "id": alert_id,
        "raised_at": at,
        "kind": kind,
        "subject": subject,
        "severity": severity,
        "reason": reason,
        "explanation": evidence,
    }
    state.book.open[key] = alert
    return [_row(state, alert, profile, None)]


def resolve_alert(
    state: Scored, kind: str, subject: str, at: float, why: str, profile: Profile
) -> list[AlertRow]:
    alert = state.book.open.pop(f"{kind}|{subject}", None)
    if alert is None:
        return []
    state.book.ended[f"{kind}|{subject}"] = at
    alert["explanation"] = {**alert["explanation"], "resolved_because": why}
    return [_row(state, alert, profile, at)]


def resolve_kind(state: Scored, kind: str, at: float, why: str, profile: Profile) -> list[AlertRow]:
    if not state.book.open:
        return []
    rows = []
    for key in sorted(k for k in state.book.open if k.startswith(kind + "|")):
        rows.extend(resolve_alert(state, kind, key.split("|", 1)[1], at, why, profile))
    return rows


def quiet_by_own_rhythm(buyers: Buyers, end: float, profile: Profile) -> bool:
    """The buyer side has not written for ``quiet_cadence_multiple`` times its own usual gap
    between writing occasions, and at least ``quiet_min_days``, at most ``quiet_max_days``
    (eight weeks of silence is silence whatever the rhythm): a monthly correspondent six
    weeks quiet is not yet silent, a daily one three weeks quiet is (presto-k: hgp-inc.com's
    tier drop, hand-labelled debatable, came 45 days after buyers with a 23-day gap last wrote;
    it now waits for 56 days (3 × 23, capped), and no drop counted before the thread resumed:
    docs/scoring.md)."""
    last, gap = buyers.rhythm()
    if last is None:
        return True
    a = profile.alerts
    limit = max(a.quiet_cadence_multiple * (gap or 0.0), a.quiet_min_days * DAY)
    return end - last > min(limit, a.quiet_max_days * DAY)


def daily_alerts(
    state: Scored, end: float, health: HealthRow, settled_in: bool, profile: Profile
) -> list[AlertRow]:
    """Rules that look at a closed day: tier, trend, silent contacts, threading, CRM owner.
    ``settled_in``: the account has a trend's worth of history (tier and trend rules wait)."""
    a = profile.alerts
    rows: list[AlertRow] = []
    tier, score, trend = health.tier, health.score, health.trend_30d
    evidence = {"score": score, "tier": tier, "trend_30d": trend, "top_reason": health.top_reason}
    # the held tier (health.held_tier): a drop counts past the margin
    previous_tier = state.book.tier if settled_in else None
    held = held_tier(state.book.tier, tier, score, profile)
    dropped = bool(
        tier in SEVERITY_BY_TIER and previous_tier and TIERS.index(held) > TIERS.index(previous_tier)
    )
    if dropped and not quiet_by_own_rhythm(state.buyers, end, profile):
        held = state.book.tier or held  # the drop waits until the buyer side is quiet by its rhythm
    elif dropped:
        rows += raise_alert(
            state,
            "tier_drop",
            "",
            end,
            SEVERITY_BY_TIER[tier],
            f"health tier fell from {previous_tier} to {tier} ({score:.0f}); weakest: {health.top_reason}",
            {**evidence, "previous_tier": previous_tier, "events": state.day.recent},
            profile,
        )
    elif tier in ("healthy", "watch"):
        rows += resolve_kind(state, "tier_drop", end, f"tier back to {tier}", profile)
    state.book.tier = held
    if previous_tier and trend <= -a.health_drop_points:
        rows += raise_alert(
            state,
            "health_drop",
            "",
            end,
            "high",
            f"health fell {-trend:.0f} points in {profile.health.trend_days:.0f} days to {score:.0f}",
            {**evidence, "events": state.day.recent},
            profile,
        )
    elif trend > -a.health_drop_points / 2:
        rows += resolve_kind(state, "health_drop", end, "health stopped falling", profile)
    rows += _engagement_drop(state, end, profile)
    # Outreach still inside its reply window is not unanswered yet.
    window = profile.value.response_window_days * DAY
    unanswered = [o for o in state.book.outreach if o[0] + window < end]
    if len(unanswered) >= a.unanswered_streak:
        rows += raise_alert(
            state,
            "unanswered_streak",
            "",
            end,
            "medium",
            f"{len(unanswered)} seller messages in a row without a buyer answer within "
            f"{profile.value.response_window_days:.0f} days",
            {"events": [o[1] for o in unanswered[-int(a.unanswered_streak) :]]},
            profile,
        )
    buyers = state.buyers
    for contact, (first, count) in sorted(buyers.cadence.items()):
        if count < a.silent_min_replies or buyers.role(contact)[2] == 0:
            continue
        if buyers.unanswered.get(contact, 0) < a.silent_min_unanswered:
            continue  # nobody has written to them lately: their silence says nothing
        last = buyers.last_in.get(contact, end)
        gap = (last - first) / (count - 1)  # the contact's own long-run cadence
        silent = end - last
        limit = max(a.silent_cadence_multiple * gap, a.silent_min_days * DAY)
        # A main writer of an account that is not thriving: the others' silences are churn
        # (bench/quality.py, 200 accounts, dirty: precision 0.465 → 0.814, lead time 22 → 15 days).
        main_writer = count >= a.silent_key_share * max(c for _, c in buyers.cadence.values())
        if silent > limit and main_writer and score < a.silent_max_health:
            seniority = buyers.role(contact)[0]
            rows += raise_alert(
                state,
                "contact_silent",
                contact,
                end,
                "high" if seniority in ("exec", "senior") else "medium",
                f"{contact} silent for {silent / DAY:.0f} days despite {buyers.unanswered.get(contact, 0)} "
                f"messages; usually writes every {gap / DAY:.1f} days",
                {
                    "contact": contact,
                    "silent_days": round(silent / DAY, 1),
                    "cadence_days": round(gap / DAY, 2),
                },
                profile,
            )
    single = health.engaged_contacts == 1
    open_opportunities = state.sellers.open_opportunities()
    if single and open_opportunities:
        rows += raise_alert(
            state,
            "single_threaded",
            "",
            end,
            "medium",
            f"only one engaged buyer contact while {len(open_opportunities)} opportunity(ies) are open",
            {
                "engaged": orjson.loads(health.explanation)["engaged"],
                "opportunities": open_opportunities[:5],
            },
            profile,
        )
    elif not single or not open_opportunities:
        rows += resolve_kind(
            state, "single_threaded", end, "more contacts engaged or no open opportunity", profile
        )
    recent_cancels = [c for c in state.book.cancellations if end - c[0] <= a.cancellation_days * DAY]
    if not recent_cancels:
        rows += resolve_kind(state, "cancellations", end, "no recent cancellations", profile)
    if state.book.owner_change:
        owner, since = state.book.owner_change
        touched = state.sellers.touched.get(owner, 0.0) >= since
        if touched:
            rows += resolve_kind(state, "owner_no_contact", end, f"{owner} made contact", profile)
            state.book.owner_change = []
        elif end - since > a.owner_grace_days * DAY:
            rows += raise_alert(
                state,
                "owner_no_contact",
                owner,
                end,
                "low",
                f"owner changed to {owner} {(end - since) / DAY:.0f} days ago; no contact from them since",
                {"new_owner": owner, "since": since},
                profile,
            )
    return rows


def weekly_rate(decayed_sum: float, half_life_days: float) -> float:
    """An exponentially decayed count as a steady rate per week (sum × ln 2 / half-life)."""
    return decayed_sum * math.log(2) / half_life_days * 7


def _engagement_drop(state: Scored, end: float, profile: Profile) -> list[AlertRow]:
    """The buyer side's recent rate of engagement against the account's own slower baseline:
    the early warning, before the slower signals (engaged contacts, coverage) move."""
    a = profile.alerts
    if state.first_day is None or end / DAY - state.first_day < a.engagement_baseline_days:
        return []

    def rate(name: str, half_life_days: float) -> float:
        total, as_of = state.book.engagement[name]
        return weekly_rate(
            total * math.pow(2.0, -max(end - as_of, 0.0) / (half_life_days * DAY)), half_life_days
        )

    baseline = rate("usual", a.engagement_baseline_days)
    recent = rate("recent", a.engagement_recent_days)
    low = baseline >= a.engagement_min_per_week and recent < a.engagement_drop_ratio * baseline
    state.book.low_days = state.book.low_days + 1 if low else 0
    if state.book.low_days >= a.engagement_drop_days:
        return raise_alert(
            state,
            "engagement_drop",
            "",
            end,
            "medium",
            f"buyer engagement fell to {recent:.1f}/week from a usual {baseline:.1f}/week",
            {
                "recent_per_week": round(recent, 2),
                "baseline_per_week": round(baseline, 2),
                "events": state.day.recent,
            },
            profile,
        )
    if recent >= a.engagement_recover_ratio * baseline:
        return resolve_kind(state, "engagement_drop", end, "engagement back near its usual rate", profile)
    return []


def event_alerts(
    state: Scored, at: float, event_id: str, item: HeldInteraction, profile: Profile
) -> list[AlertRow]:
    """Rules that fire on an event: unanswered outreach streaks and meeting cancellations."""
    a, book = profile.alerts, state.book
    rows: list[AlertRow] = []
    outreach = item.channel in ("email", "meeting") and item.status != "cancelled"
    if item.direction == "outbound" and outreach and int(item.version) == 0:
        # unique messages (copies are removed upstream; a meeting's updates are one invitation)
        book.outreach = [*book.outreach, [at, event_id]][-int(a.unanswered_streak) * 2 :]
    elif item.direction in ("inbound", "mutual"):
        book.outreach = []
        rows += resolve_kind(state, "unanswered_streak", at, "the buyer answered", profile)
    if item.channel == "meeting" and item.status == "cancelled":
        book.cancellations = [c for c in book.cancellations if at - c[0] <= a.cancellation_days * DAY] + [
            [at, event_id]
        ]
        if len(book.cancellations) >= a.cancellations:
            rows += raise_alert(
                state,
                "cancellations",
                "",
                at,
                "medium",
                f"{len(book.cancellations)} meetings cancelled within {a.cancellation_days:.0f} days",
                {"events": [c[1] for c in book.cancellations]},
                profile,
            )
    if item.direction in ("inbound", "mutual"):
        for buyer in item.buyers:
            rows += resolve_alert(state, "contact_silent", buyer, at, "the contact wrote again", profile)
    return rows


def contact_left(state: Scored, at: float, event_id: str, contact: str, profile: Profile) -> list[AlertRow]:
    """The CRM marks an engaged buyer contact inactive: they most likely left the company."""
    since = at - profile.health.engaged_window_days * DAY
    if state.buyers.last_in.get(contact, 0.0) < since:
        return []
    seniority = state.buyers.role(contact)[0]
    return raise_alert(
        state,
        "contact_left",
        contact,
        at,
        "high" if seniority in ("exec", "senior") else "medium",
        f"engaged contact {contact} is inactive in the CRM (left or changed role)",
        {"contact": contact, "events": [event_id]},
        profile,
    )


def note_engagement(book: AlertBook, at: float, item: HeldInteraction, profile: Profile) -> None:
    """Buyer-side activity feeds the engagement-drop rule's fast and slow decayed sums."""
    if not (touches(item) and buyer_side(item)):
        return
    a = profile.alerts
    for name, days in (("recent", a.engagement_recent_days), ("usual", a.engagement_baseline_days)):
        book.engagement[name] = _decay_add(book.engagement[name], at, days * DAY)


def note_owner_change(book: AlertBook, account: HeldAccount, at: float) -> None:
    """The account has a new owner: the owner-no-contact rule waits for their first touch."""
    book.owner_change = [account.owner, at]


def _decay_add(sum_at: list[float], at: float, half_life_s: float) -> list[float]:
    """Add one to an exponentially decayed ``[sum, as of]``, in any time order."""
    total, as_of = sum_at
    if at >= as_of:
        return [total * math.pow(2.0, -(at - as_of) / half_life_s) + 1.0, at]
    return [total + math.pow(2.0, -(as_of - at) / half_life_s), as_of]
