"""The record shapes: a record survives its warehouse row (what ``forget`` rebuilds from), a held
record survives its stored form, and states stored before the records were typed still load."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts import check
from streams.records import (
    CrmAccount,
    CrmContact,
    CrmOpportunity,
    Interaction,
    format_time,
    held_from_stored,
    payload_of,
)
from streams.runtime.loop import Step, run
from streams.scoring.account import FLAT_NAMES, PARTS
from streams.scoring.engine import Scoring
from streams.sinks.warehouse import TABLE_KEYS
from streams.testing import memory_ports, run_in_memory

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
address = st.builds(
    lambda a, b: f"{a}@{b}.com", st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.sampled_from("xyz")
)
moment = st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: format_time(d.replace(microsecond=d.microsecond // 1000 * 1000))
)
optional = st.none() | text

interactions = st.builds(
    Interaction,
    interaction_id=text,
    account_id=text,
    occurred_at=moment,
    channel=st.sampled_from(["email", "meeting", "crm"]),
    direction=st.sampled_from(["outbound", "inbound", "internal", "mutual"]),
    sellers=st.lists(address, max_size=3),
    buyers=st.lists(address, max_size=3),
    automated=st.booleans(),
    match_method=text,
    match_confidence=st.floats(0, 1),
    source_event_id=text,
    kind=text,
    thread_id=optional,
    in_reply_to=optional,
    status=optional,
    version=st.integers(0, 2**31),
    detail=st.dictionaries(st.sampled_from(["sender", "end", "topic", "size"]), text, max_size=3),
)


@settings(max_examples=200)
@given(interactions)
def test_an_interaction_survives_its_warehouse_row(interaction: Interaction) -> None:
    row = interaction.row()
    assert set(TABLE_KEYS["interactions"]) <= set(row)
    assert Interaction.from_row(row) == interaction
    check("interaction/1", payload_of(interaction))  # forget sends it back through its contract


@settings(max_examples=100)
@given(
    st.builds(
        CrmAccount,
        account_id=text,
        name=text,
        domains=st.lists(st.from_regex(r"[a-z]{1,8}\.com", fullmatch=True), min_size=1, max_size=3),
        updated_at=moment,
        owner=optional,
        industry=optional,
    ),
    st.builds(
        CrmContact,
        contact_id=text,
        account_id=text,
        email=address,
        updated_at=moment,
        name=text,
        title=optional,
        active=st.booleans(),
    ),
    st.builds(
        CrmOpportunity,
        opportunity_id=text,
        account_id=text,
        stage=text,
        status=st.sampled_from(["open", "won", "lost"]),
        updated_at=moment,
        amount=st.floats(0, 1e9),
        owner=optional,
        created_at=moment,
    ),
)
def test_crm_records_survive_their_warehouse_rows(
    account: CrmAccount, contact: CrmContact, opportunity: CrmOpportunity
) -> None:
    assert CrmAccount.from_row(account.row("crm")) == msgspec.structs.replace(
        account, domains=[d.lower() for d in account.domains]
    )
    assert CrmContact.from_row(contact.row("crm", "", "")) == contact
    assert CrmOpportunity.from_row(opportunity.row()) == opportunity
    assert account.row("crm")["version"] > 0  # any CRM record wins over a provisional row (0)


@settings(max_examples=200)
@given(interactions, st.lists(st.text(max_size=16), max_size=4))
def test_a_held_interaction_survives_its_stored_form(interaction: Interaction, topics: list[str]) -> None:
    held = interaction.held(topics)
    stored = msgspec.to_builtins(held)
    assert isinstance(stored, list)  # a list of values per pending record, not a dict of names
    assert held_from_stored("interaction", stored) == held


def old_pending(held: Any) -> dict[str, Any]:
    """A held record as states stored it before the records were typed (short names)."""
    named = msgspec.structs.asdict(held)
    old = {"interaction_id": "iid", "direction": "dir", "channel": "ch", "in_reply_to": "reply_to"}
    old |= {"match_method": "match", "opportunity_id": "id"}
    return {old.get(k, k): v for k, v in named.items()}


# Every field of a state as stored before it was split into the rules' parts (layout 1: flat).
FLAT_FIELDS = set(
    [
        "account_id",
        "watermark",
        "settled_until",
        "settled",
        "seen",
        "seen_limit",
        "pruned",
        "pending",
        "late",
        "rescore",
        "listed",
        "crm_listed",
        "exchanged",
        "exchange_span",
        "affiliate",
        "conversed",
        "topics",
        "contacts",
        "last_out",
        "last_in",
        "last_mail_out",
        "cadence",
        "reply_norm",
        "unanswered",
        "sellers",
        "crm_work",
        "internal_work",
        "owner",
        "owner_change",
        "opportunities",
        "last_meeting",
        "decay",
        "decayed_at",
        "low_days",
        "engagement",
        "open_values",
        "windows_due",
        "open_day",
        "scored_until",
        "first_day",
        "day_scores",
        "last_tier",
        "outreach",
        "cancellations",
        "alerts_open",
        "alerts_ended",
        "interactions",
        "automated",
        "last_touch",
        "recent",
    ]
)


def flat_layout(state: dict[str, Any]) -> dict[str, Any]:
    """A stored state as layout 1 kept it: every part's fields at the top, under their old names."""
    flat = {k: v for k, v in state.items() if k not in PARTS and k != "layout"}
    for name in PARTS:
        flat |= {FLAT_NAMES.get(name, {}).get(k, k): v for k, v in state[name].items()}
    assert set(flat) == FLAT_FIELDS
    return flat


def test_a_state_stored_before_the_records_were_typed_loads_and_scores_the_same() -> None:
    """Half the input through the loop (pending records left in the stored states), the states
    rewritten in the old forms (short-key held records, every field flat), then the rest: the
    same rows as from the states as stored."""
    from tests.scoring.test_scorer import records

    lateness = 10 * 86400.0
    first, rest = list(records()[:400]), list(records()[400:])
    now = memory_ports(through_json=True)
    asyncio.run(run([Step(first, origin="first")], Scoring(now.store, lateness), now))  # no end of input
    now.sink.rows.clear()
    pending = [held for state in now.store.values() for *_, held in state["pending"]]
    assert pending and all(isinstance(held, list) for held in pending)
    before = memory_ports(through_json=True)
    before.store.put(
        {
            account: flat_layout(state)
            | {
                "pending": [
                    [at, i, kind, old_pending(held_from_stored(kind, h))]
                    for at, i, kind, h in state["pending"]
                ]
            }
            for account, state in now.store.items()
        }
    )
    run_in_memory(rest, lateness_s=lateness, ports=now)
    run_in_memory(rest, lateness_s=lateness, ports=before)
    assert before.sink.rows == now.sink.rows and now.sink.rows["account_health"]
    assert before.store == now.store


def test_a_stored_held_record_without_conversation_keys_loads_with_none() -> None:
    stored = old_pending(Interaction.from_row(next(iter_rows())).held(["k"]))
    stored.pop("topics")
    assert held_from_stored("interaction", stored).topics == []


def iter_rows() -> Any:
    from tests.scoring.test_scorer import records

    for _, envelope in records():
        if envelope.schema == "interaction/1":
            yield msgspec.convert(envelope.payload, Interaction).row()
