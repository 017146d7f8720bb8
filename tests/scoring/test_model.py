"""The scoring model on small hand-built histories: each rule does what docs/scoring.md says."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import Envelope, format_time, make
from streams.runtime.loop import Step, run
from streams.scoring.engine import Scoring
from streams.scoring.profile import DEFAULT, Profile
from streams.sinks.warehouse import collapse
from streams.testing import memory_ports, run_in_memory

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
SELLER = "sam@seller.com"
ACCOUNT = "buyer.com"


class History:
    """Builds canonical records for one account, in the shape the resolver emits."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Envelope]] = []
        self.n = 0

    def _add(self, schema: str, at: datetime, payload: dict[str, Any]) -> str:
        self.n += 1
        event_id = f"e{self.n:04d}"
        self.records.append((ACCOUNT, make(schema, event_id, "test", format_time(at), payload)))
        return event_id

    def _interaction(self, at: datetime, interaction_id: str, **fields: Any) -> str:
        """An interaction/1 record with this history's defaults; ``fields`` override them."""
        payload = {
            "interaction_id": interaction_id,
            "account_id": ACCOUNT,
            "occurred_at": format_time(at),
            "channel": "email",
            "direction": "outbound",
            "sellers": [SELLER],
            "buyers": [],
            "automated": False,
            "match_method": "domain",
            "match_confidence": 0.8,
            "source_event_id": f"src{self.n}",
            **fields,
        }
        return self._add("interaction/1", at, payload)

    def email(self, at: datetime, sender: str, buyers: list[str], reply_to: str | None = None) -> str:
        message_id = f"<m{self.n + 1}@x>"
        self._interaction(
            at,
            f"email:{message_id}",
            direction="outbound" if sender == SELLER else "inbound",
            buyers=buyers,
            in_reply_to=reply_to,
            detail={"sender": sender},
        )
        return message_id

    def meeting(
        self, start: datetime, buyers: list[str], created: datetime, description: int = 0, **kw: Any
    ) -> str:
        uid = kw.get("uid") or f"mtg{self.n + 1}"
        self._interaction(
            start,
            f"meeting:{uid}",
            channel="meeting",
            kind="meeting",
            buyers=buyers,
            version=kw.get("sequence", 0),
            status=kw.get("status", "confirmed"),
            detail={
                "organizer": SELLER,
                "partstat": {b: kw.get("partstat", "ACCEPTED") for b in buyers},
                "end": format_time(start + timedelta(hours=1)),
                "created": format_time(created),
                "description_length": description,
            },
        )
        return f"meeting:{uid}"

    def crm_note(self, at: datetime) -> str:
        return self._interaction(
            at,
            f"crm:note{self.n + 1}",
            channel="crm",
            kind="note",
            direction="internal",
            match_method="crm",
            match_confidence=1.0,
        )

    def contact(self, at: datetime, email: str, title: str, active: bool = True) -> str:
        return self._add(
            "crm_contact/1",
            at,
            {
                "contact_id": email,
                "account_id": ACCOUNT,
                "email": email,
                "name": email,
                "title": title,
                "active": active,
                "updated_at": format_time(at),
            },
        )

    def account(self, at: datetime, owner: str) -> str:
        return self._add(
            "crm_account/1",
            at,
            {
                "account_id": ACCOUNT,
                "name": "Buyer Inc",
                "domains": [ACCOUNT],
                "owner": owner,
                "updated_at": format_time(at),
            },
        )

    def rows(self, end: float = math.inf, profile: Profile = DEFAULT) -> dict[str, list[dict[str, Any]]]:
        """The rows of the records, the input ending at the clock ``end`` (infinity: every value
        window closes, and days up to MAX_GAP_DAYS after the last interaction)."""
        ordered = sorted(self.records, key=lambda r: (r[1].occurred_at, r[1].event_id))
        ports = run_in_memory(ordered, [len(ordered)], 3600.0, profile, end=end)
        rows = ports.sink.rows
        assert "rejected_events" not in rows  # every record was usable
        return {table: collapse(table, r) for table, r in rows.items()}


def test_a_well_prepared_meeting_scores_very_prepared_and_a_bare_one_lists_what_it_lacked() -> None:
    h = History()
    h.contact(T0 - timedelta(days=30), "cfo@buyer.com", "Chief Financial Officer")
    created = T0
    start = T0 + timedelta(days=6)
    h.email(created + timedelta(hours=1), SELLER, ["cfo@buyer.com"])  # agenda mail after the invitation
    h.crm_note(start - timedelta(days=1))
    prepared = h.meeting(start, ["cfo@buyer.com"], created, description=400)
    bare = h.meeting(start + timedelta(days=20), ["new@buyer.com"], start + timedelta(days=20, hours=-2))
    scores = {r["meeting_id"]: r for r in h.rows()["meeting_preparedness"]}
    good, poor = scores[prepared], scores[bare]
    assert good["tier"] == "very_prepared" and good["score"] >= DEFAULT.preparedness.very_prepared
    assert poor["tier"] == "unprepared"
    assert {"agenda", "crm_prep", "known_attendees", "follow_up"} <= set(poor["missing"])
    signals = orjson.loads(good["explanation"])["signals"]
    assert signals["follow_up"]["applicable"] is False  # a first meeting has no predecessor to follow up
    assert signals["crm_prep"]["events"], "the CRM note is cited as evidence"


def test_value_rewards_the_buyer_answering_and_starts_high_when_the_buyer_writes_first() -> None:
    h = History()
    answered = h.email(T0, SELLER, ["ann@buyer.com"])
    h.email(T0 + timedelta(hours=3), "ann@buyer.com", ["ann@buyer.com"], reply_to=answered)
    ignored = h.email(T0 + timedelta(days=2), SELLER, ["bob@buyer.com"])
    asked = h.email(T0 + timedelta(days=20), "ann@buyer.com", ["ann@buyer.com"])
    values = {r["interaction_id"]: r for r in h.rows()["interaction_value"]}
    v = DEFAULT.value
    assert values[f"email:{answered}"]["outcomes"] == ["replied"]
    assert values[f"email:{answered}"]["score"] == v.base_outbound + v.replied
    assert (
        values[f"email:{ignored}"]["score"] == v.base_outbound
        and values[f"email:{ignored}"]["outcomes"] == []
    )
    assert values[f"email:{asked}"]["score"] >= v.base_inbound
    for row in values.values():
        assert 0 <= row["score"] <= 100 and orjson.loads(row["explanation"])["base"] in (
            v.base_outbound,
            v.base_inbound,
        )


def test_an_unanswered_streak_raises_one_alert_and_the_buyer_answering_resolves_it() -> None:
    h = History()
    streak = int(DEFAULT.alerts.unanswered_streak)
    first = h.email(T0 - timedelta(days=1), "ann@buyer.com", [])  # two-way: only relationships get alerts
    for n in range(streak + 3):
        h.email(T0 + timedelta(days=n), SELLER, ["ann@buyer.com"], reply_to=first if n == 0 else None)
    # each message counts once its reply window has passed: the alert comes 7 days after the 8th
    h.email(T0 + timedelta(days=streak + 20), "ann@buyer.com", ["ann@buyer.com"])
    alerts = [r for r in h.rows()["alerts"] if r["kind"] == "unanswered_streak"]
    assert len(alerts) == 1
    assert alerts[0]["status"] == "resolved" and alerts[0]["ended_at"] > alerts[0]["raised_at"]
    assert len(orjson.loads(alerts[0]["explanation"])["events"]) == streak


def test_an_engaged_contact_leaving_raises_an_alert_but_a_stranger_leaving_does_not() -> None:
    h = History()
    h.contact(T0, "champ@buyer.com", "VP Operations")
    h.contact(T0, "gone@buyer.com", "IT Manager")
    for n in range(4):
        h.email(T0 + timedelta(days=7 * n), SELLER, ["champ@buyer.com"])
        h.email(T0 + timedelta(days=7 * n, hours=5), "champ@buyer.com", ["champ@buyer.com"])
    h.contact(T0 + timedelta(days=40), "champ@buyer.com", "VP Operations", active=False)
    h.contact(T0 + timedelta(days=40), "gone@buyer.com", "IT Manager", active=False)
    left = [r for r in h.rows()["alerts"] if r["kind"] == "contact_left"]
    assert [r["subject"] for r in left] == ["champ@buyer.com"]
    assert left[0]["severity"] == "high"  # a senior contact


def test_health_rows_fill_idle_days_and_decay_while_the_buyer_is_silent() -> None:
    h = History()
    for n in range(10):
        sent = h.email(T0 + timedelta(days=3 * n), SELLER, ["ann@buyer.com", "bob@buyer.com"])
        h.email(T0 + timedelta(days=3 * n, hours=2), "ann@buyer.com", ["ann@buyer.com"], reply_to=sent)
        h.email(T0 + timedelta(days=3 * n, hours=4), "bob@buyer.com", ["bob@buyer.com"], reply_to=sent)
    silence_ends = T0 + timedelta(days=27 + 60)
    h.email(silence_ends, SELLER, ["ann@buyer.com"])
    health = sorted(h.rows()["account_health"], key=lambda r: r["as_of"])
    days = [r["as_of"] for r in health]
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))], "one row per day, no gaps"
    engaged = next(r for r in health if r["as_of"] == (T0 + timedelta(days=27)).date())
    silent = next(r for r in health if r["as_of"] == (silence_ends - timedelta(days=1)).date())
    assert silent["score"] < engaged["score"] - 15
    assert silent["trend_30d"] < 0
    assert any(r["kind"] in ("tier_drop", "health_drop") for r in h.rows()["alerts"])


@pytest.mark.parametrize("every_days", [4, 28])
def test_a_tier_drop_waits_until_the_buyer_is_quiet_by_its_own_rhythm(every_days: int) -> None:
    """A buyer who wrote every ``every_days`` days, answered each time, then nothing: the tier
    drop comes once the silence passes 3 times that gap, at least 21 days and at most 56, not
    before (a monthly correspondent six weeks quiet is not silent yet); without the rule it came
    earlier."""
    h = History()
    for n in range(8):
        sent = h.email(T0 + timedelta(days=every_days * n), SELLER, ["ann@buyer.com"])
        h.email(
            T0 + timedelta(days=every_days * n, hours=3), "ann@buyer.com", ["ann@buyer.com"], reply_to=sent
        )
    last_in = (T0 + timedelta(days=every_days * 7, hours=3)).timestamp()
    end = last_in + 200 * 86400

    def first_drop(profile: Profile) -> float:
        drops = [
            r["raised_at"].timestamp() for r in h.rows(end, profile)["alerts"] if r["kind"] == "tier_drop"
        ]
        assert drops, "the silence is alerted"
        return min(drops)

    a = DEFAULT.alerts
    quiet = min(max(a.quiet_cadence_multiple * every_days, a.quiet_min_days), a.quiet_max_days) * 86400
    assert (a.quiet_cadence_multiple, a.quiet_min_days, a.quiet_max_days) == (3, 21, 56)
    assert first_drop(DEFAULT) - last_in > quiet
    ungated = replace(DEFAULT, alerts=replace(a, quiet_cadence_multiple=0.0, quiet_min_days=0.0))
    if every_days == 28:
        assert first_drop(ungated) - last_in < quiet


@pytest.mark.parametrize("weight", ["weight_agenda"])
def test_a_profile_override_changes_scores_and_model_version(tmp_path: Any, weight: str) -> None:
    from streams.scoring.profile import load_profile

    path = tmp_path / "mine.toml"
    path.write_text(f'model_version = "mine-1"\n[preparedness]\n{weight} = 0\n')
    profile = load_profile(path)
    assert profile.model_version == "mine-1" and profile.preparedness.weight_agenda == 0
    assert profile.health == DEFAULT.health  # untouched sections keep the defaults


def test_a_new_owner_who_never_makes_contact_is_flagged_and_one_who_does_is_not() -> None:
    h = History()
    h.account(T0, SELLER)
    h.email(T0 + timedelta(days=1), SELLER, ["ann@buyer.com"])
    h.account(T0 + timedelta(days=2), "new@seller.com")
    for n in range(3, 40, 3):  # the old owner keeps writing; the new one never does
        h.email(T0 + timedelta(days=n), SELLER, ["ann@buyer.com"])
    alerts = [r for r in h.rows()["alerts"] if r["kind"] == "owner_no_contact"]
    assert [(r["subject"], r["status"]) for r in alerts] == [("new@seller.com", "open")]
    raised = alerts[0]["raised_at"]
    assert raised - (T0 + timedelta(days=2)) >= timedelta(days=DEFAULT.alerts.owner_grace_days)


def test_repeated_cancellations_raise_one_alert() -> None:
    h = History()
    first = h.email(T0 - timedelta(days=2), "ann@buyer.com", [])  # two-way: only relationships get alerts
    h.email(T0 - timedelta(days=1), SELLER, ["ann@buyer.com"], reply_to=first)
    for n in range(3):
        start = T0 + timedelta(days=7 * n)
        meeting = h.meeting(start, ["ann@buyer.com"], start - timedelta(days=2))
        h.meeting(
            start,
            ["ann@buyer.com"],
            start - timedelta(days=2),
            uid=meeting.removeprefix("meeting:"),
            sequence=1,
            status="cancelled",
        )
    h.email(T0 + timedelta(days=60), SELLER, ["ann@buyer.com"])
    alerts = [r for r in h.rows()["alerts"] if r["kind"] == "cancellations"]
    assert len(alerts) == 1 and alerts[0]["status"] == "resolved"
    values = [r for r in h.rows()["interaction_value"] if r["channel"] == "meeting"]
    assert values and all("cancelled" in r["outcomes"] for r in values)


@pytest.mark.parametrize("answered", [False, True])
def test_only_an_answered_exchange_makes_a_scored_relationship(answered: bool) -> None:
    """Mail both ways on unrelated messages (presto-k's miami.edu) scores nothing; once one
    message answers the other side (here by In-Reply-To) the account gets health rows."""
    h = History()
    first = h.email(T0, SELLER, ["ann@buyer.com"])
    for n in range(1, 6):
        h.email(
            T0 + timedelta(days=7 * n), "ann@buyer.com", [], reply_to=first if answered and n == 3 else None
        )
    rows = h.rows()
    assert rows["interactions"]  # kept either way
    assert bool(rows.get("account_health")) == answered


def test_records_after_the_last_interaction_close_days_as_stream_time_does() -> None:
    """A CRM record closes the days before its own, as the watermark closes a silent account's
    days; the open day's row is dated by the day, not by the record (batch boundaries must not
    show)."""
    h = History()
    first = h.email(T0 - timedelta(days=1, minutes=5), "ann@buyer.com", [])  # a relationship from T0 on
    h.email(T0, SELLER, ["ann@buyer.com"], reply_to=first)
    h.contact(T0 + timedelta(days=3), "ann@buyer.com", "IT Manager")
    # the input ends with its last record (the clock there): no days beyond stream time
    days = {r["as_of"] for r in h.rows(end=(T0 + timedelta(days=3)).timestamp())["account_health"]}
    assert days == {(T0 + timedelta(days=n)).date() for n in range(4)}


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=60))
def test_a_score_hovering_at_a_tier_boundary_drops_the_held_tier_once_past_the_margin(
    scores: list[float],
) -> None:
    """The held tier (what tier alerts compare with) follows a better tier at once and a worse
    one only once the score is ``tier_drop_margin`` points inside it."""
    from streams.scoring.health import TIERS, held_tier, tier_for

    margin = DEFAULT.alerts.tier_drop_margin
    assert margin > 0
    held: str | None = None
    for score in scores:
        before = held
        held = held_tier(held, tier_for(score, DEFAULT), score, DEFAULT)
        if before is not None and TIERS.index(held) > TIERS.index(before):
            assert TIERS.index(tier_for(score + margin, DEFAULT)) > TIERS.index(before)
        assert TIERS.index(held) <= TIERS.index(tier_for(score, DEFAULT))  # never below the score's


def test_one_point_under_a_boundary_and_back_is_no_tier_drop() -> None:
    from streams.scoring.health import held_tier, tier_for

    boundary = DEFAULT.health.tier_at_risk
    held: str | None = None
    for score in (
        boundary + 1,
        boundary - 1,
        boundary + 1,
        boundary - 1,
        boundary - 1 - DEFAULT.alerts.tier_drop_margin,
    ):
        held = held_tier(held, tier_for(score, DEFAULT), score, DEFAULT)
        if score > boundary - 1 - DEFAULT.alerts.tier_drop_margin:
            assert held == "at_risk"
    assert held == "disengaged"


def test_a_record_in_a_day_stream_time_closed_is_late_and_asks_for_a_rescore() -> None:
    """Stream time closed the account's days (a silent account); a record dated inside them is
    late: kept, not scored into closed days, and the state asks the live worker to rescore it."""
    h = History()
    h.email(T0, "ann@buyer.com", [])
    h.email(T0 + timedelta(days=2), SELLER, ["ann@buyer.com"])
    h.email(T0 + timedelta(days=9), SELLER, ["ann@buyer.com"])  # the record that comes late
    (*in_order, late) = h.records
    ports = memory_ports()
    scoring = Scoring(ports.store, 3600.0)
    closed = (T0 + timedelta(days=20)).timestamp()  # stream time closed the days through then
    asyncio.run(run([Step(in_order), Step(eof=True, now=closed)], scoring, ports))
    assert not ports.store[ACCOUNT]["rescore"] and ports.store[ACCOUNT]["late"] == 0
    before = {table: len(rows) for table, rows in ports.sink.rows.items()}
    totals = asyncio.run(run([Step([late])], scoring, ports))
    after = {table: len(rows) for table, rows in ports.sink.rows.items()}
    assert {t: n - before.get(t, 0) for t, n in after.items() if n != before.get(t, 0)} == {"interactions": 1}
    assert totals.late == 1 and ports.store[ACCOUNT]["late"] == 1 and ports.store[ACCOUNT]["rescore"]


def test_a_redelivery_older_than_the_seen_ids_is_a_duplicate_not_a_late_record() -> None:
    """A worker killed before its offsets committed redelivers records the state applied long
    ago; once pruned from ``seen`` they are known by the filter of pruned ids, so they do not
    ask for a rescore (only a new late record does)."""
    h = History()
    for n in range(0, 200, 2):
        h.email(T0 + timedelta(days=n), "ann@buyer.com" if n % 4 else SELLER, ["ann@buyer.com"])
    ports = memory_ports()
    scoring = Scoring(ports.store, 3600.0)
    asyncio.run(run([Step(h.records)], scoring, ports))
    first = h.records[0][1].event_id
    state = ports.store[ACCOUNT]
    assert first not in state["seen"] and state["pruned"]  # pruned long ago
    totals = asyncio.run(run([Step(h.records[:1])], scoring, ports))
    assert totals.duplicates == 1 and totals.applied == 0 and totals.late == 0
    assert ports.store[ACCOUNT]["late"] == 0 and not ports.store[ACCOUNT]["rescore"]
